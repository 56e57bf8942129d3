/** The sidecar's start-up look at Envoy: does it answer, can its connections be counted, was a drain left behind. */

import type { Drain } from "../drain/drain.ts";
import { AdminError } from "../envoy/admin-error.ts";
import { describeMissingStats, type EnvoyAdmin, type ServerState } from "../envoy/client.ts";
import { errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { realClock } from "../wait.ts";

/** How often the check asks again while Envoy does not answer yet (a native sidecar starts before Envoy): soon, then every second. */
const retryDelayMs = (attempt: number) => Math.min(1000, 100 * 2 ** attempt);

export interface StartupCheckOptions {
  heal: boolean;
  /** How long an Envoy that does not answer is only recorded, not logged (the supervisor has just started it). */
  quietMs?: number;
  /** Ends the check early: the sidecar is stopping. */
  signal: AbortSignal;
}

/**
 * Waits until Envoy answers (noting it in the drain's problem while it does not), checks that its connection stats
 * exist, and heals a leftover drain. Resolves true when it undid one.
 */
export async function checkEnvoyOnStart(admin: EnvoyAdmin, drain: Drain, options: StartupCheckOptions): Promise<boolean> {
  const clock = realClock;
  const startedAt = clock.now();
  let state: ServerState | undefined;
  for (let attempt = 0; state === undefined; attempt++) {
    try {
      state = await admin.serverState(options.signal);
    } catch (error) {
      if (!(error instanceof AdminError) || error.kind !== "unreachable") {
        log.warn(`could not read Envoy's state at start: ${errorMessage(error)}`);
        return false;
      }
      const announce = clock.now() - startedAt >= (options.quietMs ?? 0);
      drain.noteProblem({ kind: "unreachable", message: `Envoy's admin API does not answer: ${error.message}` }, announce);
      if (drain.snapshot.phase !== "idle") return false;
      await clock.sleep(retryDelayMs(attempt), options.signal).catch(() => {});
      if (options.signal.aborted) return false;
    }
  }
  if (drain.snapshot.problem?.kind === "unreachable") drain.noteProblem(undefined);
  log.info("Envoy's admin API answers", { admin_address: admin.address });
  await checkConnectionStats(admin, drain, options.signal);
  return options.heal && state === "DRAINING" ? healLeftoverDrain(admin, drain) : false;
}

/** Counts once, so that stats excluded by Envoy's stats_matcher are reported before any drain needs them. */
async function checkConnectionStats(admin: EnvoyAdmin, drain: Drain, cancel: AbortSignal): Promise<void> {
  try {
    await admin.openConnections(undefined, cancel);
  } catch (error) {
    if (error instanceof AdminError && error.kind === "stats_missing")
      drain.noteProblem({ kind: "stats_missing", message: await describeMissingStats(admin, error, cancel) });
  }
}

/**
 * Posts /healthcheck/ok when Envoy is DRAINING while this pod is not terminating, and reports whether it did.
 * A freshly started sidecar proves the pod is not terminating: Kubernetes does not restart containers of a
 * terminating pod, so the drain was left by an earlier run of this sidecar (restarted alone after a failed
 * liveness probe or an OOM kill) and would keep Envoy unready forever.
 */
async function healLeftoverDrain(admin: EnvoyAdmin, drain: Drain): Promise<boolean> {
  // Never undo a drain this process started (a /shutdown may have arrived while we asked).
  if (drain.snapshot.phase !== "idle") return false;
  log.warn(
    "Envoy is failing health checks but this pod is not terminating: an earlier run of this sidecar drained it and was restarted alone. Posting /healthcheck/ok so Envoy serves again",
    { admin_address: admin.address },
  );
  try {
    await admin.passHealthChecks();
    const ready = await admin.ready();
    if (ready !== "LIVE") {
      log.warn(`Envoy still reports ${ready} after /healthcheck/ok`);
      return false;
    }
  } catch (error) {
    log.error(`could not undo the leftover drain: ${errorMessage(error)}`);
    return false;
  }
  log.info("Envoy is LIVE again");
  return true;
}
