/** The long-running sidecar: serves the hook endpoints, checks Envoy on start, and hands off cleanly on SIGTERM. */
import type { Server } from "bun";
import { Drain, type DrainOutcome, type FinalPhase } from "../drain/drain.ts";
import { type HandoffSettings, removeStaleReadyFile, watchReadyFile } from "../drain/handoff.ts";
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import { createEnvoyAdmin, type EnvoyAdminOptions } from "../envoy/client.ts";
import { errorMessage } from "../errors.ts";
import { podEventsOnDemand, podGraceDeadlineOnDemand } from "../kube/on-demand.ts";
import { log } from "../log.ts";
import { realClock } from "../wait.ts";
import { type ShutdownCaller, startServer } from "./server.ts";
import { checkEnvoyOnStart } from "./startup-check.ts";
import type { DrainOwner, SidecarCounters } from "./status.ts";

export interface SidecarSettings {
  admin: EnvoyAdminOptions;
  drain: DrainSettings;
  handoff: HandoffSettings;
  sidecar: {
    serveAddress: string;
    healOnStart: boolean;
    /** After SIGTERM with no drain started, how long to keep serving for a /shutdown on its way. */
    hookWaitMs: number;
    /**
     * Who drains Envoy. The sidecar (this program's own command lines): a /shutdown starts or joins its drain, on its
     * flags. The hook (Contour's and Envoy Gateway's, whose hook carries the drain flags): a /shutdown never starts
     * a drain, it waits for the hook's ready file, bounded by this sidecar's --drain-timeout.
     */
    drainOwner?: DrainOwner;
  };
  /** Post the drain's Events on the pod; end the drain before kubelet's SIGKILL by the pod's grace period. */
  events?: { podEvents: boolean; podGracePeriod?: boolean };
}

export interface Sidecar {
  server: Server<undefined>;
  drain: Drain;
  counters: SidecarCounters;
  /** Settles once the start-up check of Envoy is done: true when it undid a leftover drain. */
  startupCheck: Promise<boolean>;
  /** Handles the first SIGTERM/SIGINT: waits for a hook on its way, finishes the drain for waiters, then stops. */
  terminate(signal: string): Promise<void>;
  /** Stops accepting, waits for in-flight responses (the /shutdown waiters), and releases every resource. */
  stop(): Promise<void>;
}

export interface SidecarOptions {
  /** How long an Envoy that does not answer yet goes unlogged (it is being started next to us). */
  quietStartMs?: number;
}

/** Starts the sidecar: serves, removes a stale ready file, watches the ready file, checks Envoy in the background. */
export function startSidecar(settings: SidecarSettings, { quietStartMs = 0 }: SidecarOptions = {}): Sidecar {
  const admin = createEnvoyAdmin(settings.admin);
  const drain = new Drain(settings.drain, admin, {
    events: settings.events?.podEvents ? podEventsOnDemand() : undefined,
    outerDeadline: settings.events?.podGracePeriod ? () => podGraceDeadlineOnDemand() : undefined,
  });
  const clock = realClock;
  const counters: SidecarCounters = { waiters: 0, heals: 0 };
  // Wakes a SIGTERM that waits for a hook: a /shutdown arrived, or another process finished the drain.
  const handoff = Promise.withResolvers<void>();
  const stopped = new AbortController();
  const { readyFile } = settings.handoff;
  const { drainOwner = "sidecar" } = settings.sidecar;
  // A drain finished by the hook in another container releases our waiters too. The file is looked for only while
  // someone waits on the drain: an idle sidecar does no work at all.
  let stopWatching: (() => void) | undefined;
  // A ready file left by an earlier run is removed once the server listens, so a start that fails touches nothing;
  // the file is read only after that. False when it could not be removed: then it is never read.
  let readyFileUsable: Promise<boolean> = Promise.resolve(true);
  let watching = false;
  const watchForHandoff = () => {
    if (!readyFile || watching) return;
    watching = true;
    void readyFileUsable.then((usable) => {
      if (usable && !stopped.signal.aborted) stopWatching = watchReadyFile(readyFile, onReadyFile);
    });
  };
  const onReadyFile = (phase: FinalPhase) => {
    // A hook that gave up (its own deadline, shorter than ours) does not end the drain this sidecar owns.
    if (drainOwner === "sidecar" && phase !== "drained") {
      if (drain.snapshot.phase === "draining")
        log.warn(`ready file says ${phase}: the hook's drain ended, this sidecar's own goes on to its end or deadline`, {
          ready_file: readyFile,
        });
      return;
    }
    log.info(`ready file appeared: the preStop hook's drain ended ${phase}`, { ready_file: readyFile, phase });
    void drain.endWith(phase, "handed_off");
    handoff.resolve();
  };
  let waitBounded = false;
  /** Waits for the hook's ready file, bounded by this sidecar's own deadline: the drain is the hook's. */
  const readyFileWait = (): Promise<DrainOutcome> => {
    const { drainTimeoutMs } = settings.drain;
    if (!waitBounded && drainTimeoutMs > 0) {
      waitBounded = true;
      void clock.sleep(drainTimeoutMs, stopped.signal).then(
        () => {
          if (drain.snapshot.phase !== "idle") return; // the ready file came first
          log.warn(`the preStop hook wrote no ready file within ${formatDuration(drainTimeoutMs)}: releasing the waiters`);
          void drain.endWith("timed_out", "timeout");
        },
        () => {},
      );
    }
    return drain.whenFinished();
  };
  let previousHookSaid = false;
  /** The drain a /shutdown waits for (this sidecar's, started now or before), or the answer that refuses it. */
  const drainFor = (caller: ShutdownCaller): Promise<DrainOutcome> | Response => {
    if (drainOwner === "hook" && caller !== "plain") return NOT_THE_OWNER();
    watchForHandoff();
    handoff.resolve();
    if (drainOwner === "hook") return readyFileWait();
    if (caller === "previous-hook" && !previousHookSaid) {
      previousHookSaid = true;
      log.info("a previous release's hook sent its drain settings: ignored, this sidecar's flags govern the drain it joins");
    }
    return drain.start();
  };
  const server = startServer({
    port: settings.handoff.servePort,
    hostname: settings.sidecar.serveAddress,
    token: settings.handoff.shutdownToken,
    drain,
    counters,
    onShutdownRequest: drainFor,
    settings: { drainOwner, adminAddress: admin.address, envoyAnswered: () => admin.answered, readyFile },
  });
  log.info("shutdown-manager listening", { address: server.hostname, port: server.port, admin_address: admin.address });
  if (readyFile)
    readyFileUsable = removeStaleReadyFile(readyFile).then(
      () => true,
      (error) => {
        log.error(`${errorMessage(error)}: the hook's ready file cannot be told from it, so it is not read`, { ready_file: readyFile });
        return false;
      },
    );
  // In the background: /healthz must answer at once, even while Envoy is slow to tell its state or not up yet.
  const startupCheck = checkEnvoyOnStart(admin, drain, {
    heal: settings.sidecar.healOnStart,
    signal: stopped.signal,
    quietMs: quietStartMs,
  });
  void startupCheck.then((healed) => {
    if (healed) counters.heals += 1;
  });

  async function stop() {
    stopped.abort();
    stopWatching?.();
    await server.stop();
    await drain.eventsSettled();
  }

  /** Whether the hook of another container already finished the drain (its ready file is there). */
  const handedOff = async () => readyFile !== undefined && (await readyFileUsable) && (await Bun.file(readyFile).exists());

  return {
    server,
    drain,
    counters,
    startupCheck,
    stop,
    async terminate(signal) {
      const { hookWaitMs } = settings.sidecar;
      // kubelet signals this container while Envoy's preStop hook may still be on its way here: give it time to arrive.
      if (drain.snapshot.phase === "idle" && counters.waiters === 0 && hookWaitMs > 0 && !(await handedOff())) {
        log.info(`${signal}: no drain started; serving up to ${formatDuration(hookWaitMs)} more for a preStop /shutdown on its way`);
        const waited = new AbortController();
        await Promise.race([handoff.promise, clock.sleep(hookWaitMs, waited.signal).catch(() => {})]);
        waited.abort();
      }
      // A drain that runs (or waiters for the hook's) goes on to its end, /status and waiters served, before the exit.
      if (drain.snapshot.phase === "draining" || counters.waiters > 0) {
        log.info(`${signal}: finishing the drain for ${counters.waiters} waiting /shutdown request(s), still serving, then exiting`);
        const outcome = await drain.whenFinished();
        log.info(`${signal}: the drain ended ${outcome.phase} (${outcome.reason}); exiting`);
      } else log.info(`${signal}: exiting`);
      await stop();
    },
  };
}

/**
 * The answer to a hook that joins a sidecar which does not drain: any status but 200, 504 and 500 makes a hook of
 * this release, or of the previous one, drain Envoy itself.
 */
const NOT_THE_OWNER = () =>
  new Response("this sidecar does not drain Envoy on this command line: the preStop hook drains it and writes the ready file\n", {
    status: 409,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });

const EXIT_CODE_BY_SIGNAL: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** Runs the sidecar until a signal stops it; resolves with the exit code. A second signal exits at once. */
export async function runSidecar(settings: SidecarSettings): Promise<number> {
  let sidecar: Sidecar | undefined;
  let terminating = false;
  const exit = Promise.withResolvers<number>();
  // Installed before the server starts, so a signal that arrives early is never handled by the default action.
  const onSignal = (signal: NodeJS.Signals) => {
    if (terminating) {
      log.warn(`second ${signal}: exiting now`);
      return exit.resolve(EXIT_CODE_BY_SIGNAL[signal] ?? 1);
    }
    terminating = true;
    if (!sidecar) return exit.resolve(0);
    void sidecar.terminate(signal).then(() => exit.resolve(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  sidecar = startSidecar(settings);
  return exit.promise;
}
