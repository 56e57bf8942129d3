/** Undoing a drain that outlived the sidecar run that started it. */
import type { AdminClient } from "./admin-client.ts";
import type { Drain } from "./drain.ts";
import { log } from "./log.ts";

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Posts /healthcheck/ok when Envoy is DRAINING while this pod is not terminating, and reports whether it did.
 * A freshly started manager proves the pod is not terminating: Kubernetes does not restart containers of a
 * terminating pod, so the drain was left by an earlier run of this sidecar (restarted alone after a failed
 * liveness probe or an OOM kill) and would keep Envoy unready forever.
 */
export async function healLeftoverDrain(admin: AdminClient, drain: Drain): Promise<boolean> {
  let state: string;
  try {
    state = await admin.serverInfoState();
  } catch (error) {
    log.warn(`could not read Envoy's state, so a leftover drain was not checked for: ${reason(error)}`);
    return false;
  }
  // Never undo a drain this process started (a /shutdown may have arrived while we asked).
  if (state !== "DRAINING" || drain.snapshot.phase !== "idle") return false;
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
    log.error(`could not undo the leftover drain: ${reason(error)}`);
    return false;
  }
  log.info("Envoy is LIVE again");
  return true;
}
