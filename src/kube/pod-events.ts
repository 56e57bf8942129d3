/**
 * Drain events on the pod (`--pod-events`): a Kubernetes Event when a drain starts and when it ends, posted to the
 * in-cluster API. A pod that drains is gone minutes later, often before Prometheus scrapes it again; its Events stay
 * in `kubectl describe pod` and reach event exporters. Best effort and bounded: a slow or refusing API server costs
 * the drain nothing but one warning.
 */
import type { DrainEvents, DrainOutcome, DrainSnapshot } from "../drain/drain.ts";
import { formatDuration } from "../duration.ts";
import { errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { API_CALL_TIMEOUT_MS, callApi, type KubernetesTarget } from "./in-cluster.ts";

/** Finds the API and this pod for one post, within the post's bound (a string says what is missing). */
export type TargetFinder = (signal: AbortSignal) => Promise<KubernetesTarget | string>;

/** The reason, type and message of the Event that says how a drain ended. */
function endEvent(outcome: DrainOutcome, snapshot: DrainSnapshot): { reason: string; type: "Normal" | "Warning"; message: string } {
  const took = formatDuration(outcome.elapsedMs);
  if (outcome.phase === "drained") {
    const drained = snapshot.firstOpenConnections === undefined ? "" : ` ${snapshot.firstOpenConnections} connection(s)`;
    const why = outcome.reason === "threshold" ? "" : ` (${outcome.reason.replace("_", " ")})`;
    return { reason: "DrainCompleted", type: "Normal", message: `drained${drained} in ${took}${why}` };
  }
  if (outcome.phase === "timed_out") {
    const open = [...snapshot.byListener].map(([id, n]) => `${id}=${n}`).join(", ");
    return {
      reason: "DrainTimedOut",
      type: "Warning",
      message: `drain timed out after ${took}${open ? `; connections still open on ${open}` : ""}`,
    };
  }
  return { reason: "DrainFailed", type: "Warning", message: `drain failed after ${took} (${outcome.reason.replace("_", " ")})` };
}

/**
 * Posts the drain's Events to the target `find` gives. Each post, finding the target included, is bounded by
 * API_CALL_TIMEOUT_MS; its answer's body is discarded and a redirect is not followed. The first failure is logged
 * as a warning, later ones quietly.
 */
export function podEvents(find: TargetFinder): DrainEvents {
  let warned = false;
  const warnOnce = (message: string) => {
    if (warned) return;
    warned = true;
    log.warn(`--pod-events: ${message}; the drain goes on without Events`);
  };
  async function post(reason: string, type: "Normal" | "Warning", message: string): Promise<void> {
    const signal = AbortSignal.timeout(API_CALL_TIMEOUT_MS);
    try {
      const target = await find(signal);
      if (typeof target === "string") return warnOnce(target);
      const now = new Date().toISOString();
      const event = {
        apiVersion: "v1",
        kind: "Event",
        metadata: { generateName: `${target.pod}.`, namespace: target.namespace },
        involvedObject: { apiVersion: "v1", kind: "Pod", name: target.pod, namespace: target.namespace, uid: target.uid },
        reason,
        message,
        type,
        source: { component: "envoy-shutdown-manager" },
        reportingComponent: "envoy-shutdown-manager",
        reportingInstance: target.pod,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/events`;
      const answer = await callApi(target, { method: "POST", path, body: JSON.stringify(event), maxBytes: 0 }, signal);
      if (answer.status >= 300 && answer.status < 400)
        warnOnce(`the API server answered HTTP ${answer.status} (a redirect, not followed) to the ${reason} Event`);
      else if (answer.status >= 300)
        warnOnce(`the API server answered HTTP ${answer.status} to the ${reason} Event (is the Role allowing create on events bound?)`);
    } catch (error) {
      warnOnce(
        `could not post the ${reason} Event: ${signal.aborted ? `no answer within ${API_CALL_TIMEOUT_MS} ms` : errorMessage(error)}`,
      );
    }
  }
  return {
    started: (settings) =>
      post(
        "DrainStarted",
        "Normal",
        `draining Envoy before it stops (${settings.drainTimeoutMs > 0 ? `timeout ${formatDuration(settings.drainTimeoutMs)}` : "no timeout"})`,
      ),
    finished: (outcome, snapshot) => {
      const { reason, type, message } = endEvent(outcome, snapshot);
      return post(reason, type, message);
    },
  };
}
