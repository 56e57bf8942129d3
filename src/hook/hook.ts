/**
 * The preStop exec hook: on this program's own command lines, join the drain of a sidecar that answers on loopback
 * (its settings govern), else drain Envoy from here on the hook's own; on Contour's and Envoy Gateway's, drain from here.
 */
import { Drain, type FinalPhase, type OuterDeadline, type PollReport } from "../drain/drain.ts";
import { type HandoffSettings, writeReadyFile } from "../drain/handoff.ts";
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import { createEnvoyAdmin, type EnvoyAdmin, type EnvoyAdminOptions } from "../envoy/client.ts";
import { errorMessage, networkFailure } from "../errors.ts";
import { podEventsOnDemand, podGraceDeadlineOnDemand } from "../kube/on-demand.ts";
import { log } from "../log.ts";
import {
  fetchStatus,
  HANDOFF_HEADER,
  HANDOFF_PROTOCOL,
  handoffProblem,
  SIDECAR_ANSWER_TIMEOUT_MS,
  SidecarUnavailable,
  sidecarURL,
} from "../sidecar/client.ts";
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

/** Whether a phase is a drain's end. */
const isFinal = (phase: StatusReport["phase"]): phase is FinalPhase => phase !== "idle" && phase !== "draining";

/**
 * Follows the joined sidecar's /status: reports each count it reported; when none came for a check interval (a
 * second at least), says what the drain waits on; says at once what keeps it from seeing Envoy; calls `onLost` once
 * it stops answering (or answers what this hook cannot read).
 */
function followSidecar(port: number, first: StatusReport, onPoll: (report: PollReport) => void, onLost: () => void) {
  const intervalMs = Math.max(100, first.check_interval_seconds * 1000);
  let lastReport = first.reports;
  let lastSaidAt = Date.now();
  let problem = first.envoy_problem?.message;
  let failures = 0;
  const report = async () => {
    const status = await fetchStatus(port).catch(() => undefined);
    const readable = status !== undefined && handoffProblem(status) === undefined;
    failures = readable ? 0 : failures + 1;
    if (failures >= SIDECAR_LOST_AFTER) onLost();
    if (!status || !readable) return;
    if (status.envoy_problem && status.envoy_problem.message !== problem) log.warn(`the sidecar reports: ${status.envoy_problem.message}`);
    problem = status.envoy_problem?.message;
    const poll = status.reports !== lastReport ? pollReport(status) : undefined;
    lastReport = status.reports;
    if (poll) onPoll(poll);
    else if (Date.now() - lastSaidAt >= Math.max(intervalMs, 1000) && !isFinal(status.phase))
      log.info(`waiting for the sidecar's drain: ${stillWaiting(status)}`);
    else return;
    lastSaidAt = Date.now();
  };
  const timer = setInterval(report, Math.min(intervalMs, 1000));
  return { report, stop: () => clearInterval(timer) };
}

/** What a joined drain is still waiting on, from the sidecar's /status. */
function stillWaiting(status: StatusReport): string {
  const elapsed = formatDuration((status.duration_seconds ?? 0) * 1000);
  const errors = Object.entries(status.admin_errors).filter(([, n]) => n > 0);
  const trouble = errors.length > 0 ? `; admin errors so far: ${errors.map(([kind, n]) => `${kind}=${n}`).join(" ")}` : "";
  const counted =
    status.open_connections === null
      ? `no connection count yet (the first comes after the sidecar's --check-delay, ${String(status.drain_settings?.check_delay ?? "?")})`
      : `${status.open_connections} open connections at the last count`;
  return `${counted}, ${elapsed} elapsed${trouble}`;
}

/** What ends a drain under the sidecar's settings, as a clause: "≤ 0 open connections, no new connection for 2s". */
function endCondition(status: StatusReport): string {
  const minimum = status.drain_settings?.min_drain_duration;
  return [
    `≤ ${status.min_open_connections} open connections`,
    ...(status.quiet_period !== "0s" ? [`no new connection for ${status.quiet_period}`] : []),
    ...(typeof minimum === "string" && minimum !== "0s" ? [`at least ${minimum} of draining`] : []),
  ].join(", ");
}

/** Says, as the hook joins, whose settings govern the drain, what it waits for, and what bounds the wait. */
function announceJoin(port: number, status: StatusReport, settings: HookSettings): void {
  const own = settings.drain.drainTimeoutMs;
  const theirs = status.drain_timeout === "0s" ? "none" : status.drain_timeout;
  log.info(
    `joined the sidecar's drain on port ${port}: the sidecar's flags govern it, this hook's drain flags other than --drain-timeout are not used; waiting for ${endCondition(status)}, bounded by this hook's --drain-timeout (${own > 0 ? formatDuration(own) : "none"}) and the sidecar's (${theirs})`,
    { phase: status.phase, governing_settings: status.drain_settings },
  );
  if (!status.envoy_answered)
    log.warn(`the sidecar has had no answer from Envoy's admin API yet${status.envoy_problem ? `: ${status.envoy_problem.message}` : ""}`);
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
 * Joins the drain of a sidecar on 127.0.0.1, whose settings govern it, waiting for its end bounded by the hook's own
 * deadline. Resolves with the drain's phase, or undefined when this process should drain Envoy itself: no sidecar,
 * one that does not answer in time or as this release's sidecar does, one that does not drain, or one lost.
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
    if (error instanceof SidecarUnavailable && error.refused) log.info(`no sidecar listens on 127.0.0.1:${port}; draining Envoy from here`);
    else log.warn(`${errorMessage(error)}; draining Envoy from here instead`);
    return undefined;
  }
  const problem = handoffProblem(status);
  if (problem) return void log.warn(`the sidecar on port ${port} ${problem}; draining Envoy from here instead`);
  if (status.drain_owner === "hook")
    return void log.info(`the sidecar on port ${port} leaves the drain to its preStop hook; draining Envoy from here`);
  if (isFinal(status.phase)) {
    log.warn(
      `the sidecar's drain had already ended before this hook came: ${status.phase}${status.reason ? ` (${status.reason})` : ""}; that is the outcome this hook reports`,
      { serve_port: port, elapsed: formatDuration((status.duration_seconds ?? 0) * 1000) },
    );
    return status.phase;
  }
  // The sidecar saw Envoy answer: a refusal from now on means Envoy exited, not a wrong address.
  if (status.envoy_answered) admin.markAnswered();
  announceJoin(port, status, settings);
  const lost = new AbortController();
  const follow = followSidecar(port, status, onPoll, () => lost.abort());
  try {
    const response = await fetch(sidecarURL(port, "/shutdown"), {
      method: "POST",
      headers: { [HANDOFF_HEADER]: String(HANDOFF_PROTOCOL), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.any([lost.signal, deadline]),
      // The drain may take as long as the grace period: only the hook's own deadline bounds this request.
      timeout: false,
    });
    await response.arrayBuffer();
    const phase = PHASE_BY_STATUS[response.status];
    if (phase) {
      await follow.report(); // the last count, which ended the drain
      log.info("the sidecar's drain ended", { serve_port: port, phase });
      return phase;
    }
    log.error(`the sidecar on port ${port} answered HTTP ${response.status}; draining Envoy from here instead`);
  } catch (error) {
    if (deadline.aborted) return timedOutWhileJoining(settings, deadline);
    const why = lost.signal.aborted ? `its /status stopped answering ${SIDECAR_LOST_AFTER} times in a row` : networkFailure(error);
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
