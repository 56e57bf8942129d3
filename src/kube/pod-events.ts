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

/** Where the in-cluster API is and who this pod is. */
export interface KubernetesTarget {
  /** `https://host:port` of the API server. */
  apiURL: string;
  token: string;
  /** The cluster's CA certificate (PEM), to verify the API server. */
  ca: string;
  namespace: string;
  pod: string;
  /** The pod's UID, when the downward API gives it (POD_UID): it ties the Event to this pod and not a namesake. */
  uid: string | undefined;
}

/** Kubernetes' service-account mount: the token, the CA and the pod's namespace. */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How long one Event may take to post: it must never hold a hook or the exit of a process for long. */
export const EVENT_POST_TIMEOUT_MS = 2000;

const readText = async (path: string) => (await Bun.file(path).text()).trim();

/** The in-cluster target from the environment and the service-account mount; a string says what is missing. */
export async function inClusterTarget(env: Record<string, string | undefined> = process.env): Promise<KubernetesTarget | string> {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return "KUBERNETES_SERVICE_HOST is not set: this is not a Kubernetes pod";
  const pod = env.POD_NAME ?? env.HOSTNAME;
  if (!pod) return "POD_NAME is not set: give it the pod's name through the downward API (metadata.name)";
  try {
    const [token, ca, ownNamespace] = await Promise.all(
      ["token", "ca.crt", "namespace"].map((file) => readText(`${SERVICE_ACCOUNT_DIR}/${file}`)),
    );
    return {
      apiURL: `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`,
      token: token ?? "",
      ca: ca ?? "",
      namespace: env.POD_NAMESPACE ?? ownNamespace ?? "default",
      pod,
      uid: env.POD_UID,
    };
  } catch (error) {
    return `the service account's token is not mounted at ${SERVICE_ACCOUNT_DIR} (${errorMessage(error)})`;
  }
}

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
 * Posts the drain's Events to `target` (resolved once, when the first Event is due). Each post is bounded by
 * EVENT_POST_TIMEOUT_MS; the first failure is logged as a warning, later ones quietly.
 */
export function podEvents(target: Promise<KubernetesTarget | string>): DrainEvents {
  let warned = false;
  const warnOnce = (message: string) => {
    if (warned) return;
    warned = true;
    log.warn(`--pod-events: ${message}; the drain goes on without Events`);
  };
  async function post(reason: string, type: "Normal" | "Warning", message: string): Promise<void> {
    const resolved = await target;
    if (typeof resolved === "string") return warnOnce(resolved);
    const now = new Date().toISOString();
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${resolved.pod}.`, namespace: resolved.namespace },
      involvedObject: { apiVersion: "v1", kind: "Pod", name: resolved.pod, namespace: resolved.namespace, uid: resolved.uid },
      reason,
      message,
      type,
      source: { component: "envoy-shutdown-manager" },
      reportingComponent: "envoy-shutdown-manager",
      reportingInstance: resolved.pod,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      const response = await fetch(`${resolved.apiURL}/api/v1/namespaces/${encodeURIComponent(resolved.namespace)}/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${resolved.token}`, "content-type": "application/json" },
        body: JSON.stringify(event),
        tls: { ca: resolved.ca },
        signal: AbortSignal.timeout(EVENT_POST_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      if (!response.ok)
        warnOnce(`the API server answered HTTP ${response.status} to the ${reason} Event (is the Role allowing create on events bound?)`);
    } catch (error) {
      const timedOut = (error as { name?: string }).name === "TimeoutError";
      warnOnce(`could not post the ${reason} Event: ${timedOut ? `no answer within ${EVENT_POST_TIMEOUT_MS} ms` : errorMessage(error)}`);
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
