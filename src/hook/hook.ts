/** The preStop exec hook: join the sidecar's drain if one answers on loopback, else drain Envoy from here. */
import { Drain, type FinalPhase, type OuterDeadline, type PollReport } from "../drain/drain.ts";
import { type HandoffSettings, writeReadyFile } from "../drain/handoff.ts";
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import { createEnvoyAdmin, type EnvoyAdmin, type EnvoyAdminOptions } from "../envoy/client.ts";
import { errorMessage } from "../errors.ts";
import { podEventsOnDemand, podGraceDeadlineOnDemand } from "../kube/on-demand.ts";
import { log } from "../log.ts";
import { fetchStatus, SIDECAR_ANSWER_TIMEOUT_MS, SidecarUnavailable, sidecarURL } from "../sidecar/client.ts";
import type { StatusReport } from "../sidecar/status.ts";

export interface HookSettings {
  admin: EnvoyAdminOptions;
  drain: DrainSettings;
  handoff: HandoffSettings;
  /**
   * Post the drain's Events on the pod, when this hook drains Envoy itself (joined, the sidecar does); end by the pod's
   * grace period, before kubelet's SIGKILL, whether joined or not.
   */
  events?: { podEvents: boolean; podGracePeriod?: boolean };
}

/** Exit codes of the `shutdown` command. */
const EXIT = { drained: 0, failed: 1 } as const;

const PHASE_BY_STATUS: Record<number, FinalPhase> = { 200: "drained", 504: "timed_out", 500: "failed" };

/** Status reads in a row that may fail before the joined sidecar counts as lost (dead or wedged). */
const SIDECAR_LOST_AFTER = 3;

/** The count a sidecar's /status reports, as a poll report of this process. */
function pollReport(status: StatusReport): PollReport | undefined {
  if (status.open_connections === null) return undefined;
  const elapsedMs = (status.duration_seconds ?? 0) * 1000;
  const timeoutMs = status.drain_timeout_seconds * 1000;
  return {
    openConnections: status.open_connections,
    minOpenConnections: status.min_open_connections,
    elapsedMs,
    remainingMs: timeoutMs > 0 ? Math.max(0, timeoutMs - elapsedMs) : undefined,
    byListener: new Map(Object.entries(status.connections_by_listener)),
    newConnections: new Map(Object.entries(status.new_connections_by_listener)),
    // The sidecar reports new connections within its last check interval.
    newConnectionsOverMs: status.check_interval_seconds * 1000,
  };
}

/** Follows the joined sidecar's /status: reports each count it reported, and calls `onLost` once it stops answering. */
function followSidecar(port: number, intervalMs: number, onPoll: (report: PollReport) => void, onLost: () => void) {
  let lastReport = 0;
  let failures = 0;
  const report = async () => {
    const status = await fetchStatus(port).catch(() => undefined);
    failures = status ? 0 : failures + 1;
    if (failures >= SIDECAR_LOST_AFTER) onLost();
    if (!status || status.reports === lastReport) return;
    lastReport = status.reports;
    const poll = pollReport(status);
    if (poll) onPoll(poll);
  };
  const timer = setInterval(report, intervalMs);
  return { report, stop: () => clearInterval(timer) };
}

/** The hook's deadline (its own, or the pod's grace period: the signal's reason) passed while it was joining or joined. */
function timedOutWhileJoining(settings: HookSettings, deadline: AbortSignal): FinalPhase {
  const outer = (deadline.reason as { what?: unknown } | undefined)?.what;
  const when = typeof outer === "string" ? outer : `after ${formatDuration(settings.drain.drainTimeoutMs)}`;
  log.error(`drain timed out ${when} while joined to the sidecar's drain`);
  return "timed_out";
}

/** Aborts `deadline` at the outer deadline too, once learnt (the reason says which); returns what cancels it. */
function abortAtOuterDeadline(outer: Promise<OuterDeadline | undefined> | undefined, deadline: AbortController): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cancelled = false;
  void outer?.then((found) => {
    if (found && !cancelled) timer = setTimeout(() => deadline.abort(found), Math.max(0, found.endsAt - Date.now()));
  });
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/**
 * Joins the drain of a sidecar on 127.0.0.1, sending this hook's drain settings so that they hold there too, bounded
 * by the hook's deadline. Resolves with the drain's phase, or undefined when this process should drain Envoy itself:
 * no sidecar, one that does not answer in time, or one lost.
 */
async function joinSidecarDrain(
  settings: HookSettings,
  admin: EnvoyAdmin,
  onPoll: (report: PollReport) => void,
  deadline: AbortSignal,
): Promise<FinalPhase | undefined> {
  const { servePort: port, shutdownToken: token } = settings.handoff;
  let status: StatusReport;
  try {
    status = await fetchStatus(port, SIDECAR_ANSWER_TIMEOUT_MS, deadline);
  } catch (error) {
    if (deadline.aborted) return timedOutWhileJoining(settings, deadline);
    if (!(error instanceof SidecarUnavailable && error.refused)) log.warn(`${errorMessage(error)}; draining Envoy from here instead`);
    return undefined;
  }
  // The sidecar saw Envoy answer: a refusal from now on means Envoy exited, not a wrong address.
  if (status.envoy_answered) admin.markAnswered();
  const lost = new AbortController();
  const follow = followSidecar(port, Math.min(settings.drain.checkIntervalMs, 1000), onPoll, () => lost.abort());
  try {
    const response = await fetch(sidecarURL(port, "/shutdown"), {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ drain: settings.drain }),
      signal: AbortSignal.any([lost.signal, deadline]),
      // The drain may take as long as the grace period: only the hook's own deadline bounds this request.
      timeout: false,
    });
    await response.arrayBuffer();
    const phase = PHASE_BY_STATUS[response.status];
    if (phase) {
      await follow.report(); // the last count, which ended the drain
      log.info("joined the sidecar's drain", { serve_port: port, phase });
      return phase;
    }
    log.error(`the sidecar on port ${port} answered HTTP ${response.status}; draining Envoy from here instead`);
  } catch (error) {
    if (deadline.aborted) return timedOutWhileJoining(settings, deadline);
    const why = lost.signal.aborted ? `its /status stopped answering ${SIDECAR_LOST_AFTER} times in a row` : errorMessage(error);
    log.warn(`lost the sidecar on port ${port} (${why}); draining Envoy from here instead`);
  } finally {
    follow.stop();
  }
  return undefined;
}

/** Runs the whole hook within --drain-timeout and returns the exit code: 0 drained, 1 timed out or failed. */
export async function runShutdownHook(settings: HookSettings, onPoll: (report: PollReport) => void): Promise<number> {
  const admin = createEnvoyAdmin(settings.admin);
  const { drainTimeoutMs } = settings.drain;
  const startedAt = Date.now();
  const deadline = new AbortController();
  const timer = drainTimeoutMs > 0 ? setTimeout(() => deadline.abort(), drainTimeoutMs) : undefined;
  // Asked at once, never awaited: the pod's grace period caps this hook's wait and its own drain alike.
  const outer = settings.events?.podGracePeriod ? podGraceDeadlineOnDemand(startedAt) : undefined;
  const stopOuter = abortAtOuterDeadline(outer, deadline);
  try {
    let phase = settings.handoff.servePort > 0 ? await joinSidecarDrain(settings, admin, onPoll, deadline.signal) : undefined;
    let drain: Drain | undefined;
    if (!phase) {
      // Whatever time joining took comes off the drain's own deadline.
      const remainingMs = drainTimeoutMs > 0 ? Math.max(1, drainTimeoutMs - (Date.now() - startedAt)) : 0;
      const events = settings.events?.podEvents ? podEventsOnDemand() : undefined;
      drain = new Drain({ ...settings.drain, drainTimeoutMs: remainingMs }, admin, {
        onPoll,
        events,
        outerDeadline: outer && (() => outer),
      });
      phase = (await drain.start()).phase;
    }
    if (settings.handoff.readyFile) writeReadyFile(settings.handoff.readyFile, phase);
    // The ready file is written first: Envoy's hook is released before this one waits (bounded) for its Events.
    await drain?.eventsSettled();
    return phase === "drained" ? EXIT.drained : EXIT.failed;
  } finally {
    clearTimeout(timer);
    stopOuter();
  }
}
