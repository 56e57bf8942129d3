/**
 * The grace period kubelet really gives (docs/kubernetes.md): read from the pod's own metadata when a drain starts,
 * it becomes a deadline that ends the drain a margin before kubelet's SIGKILL, whatever --drain-timeout says, so the
 * outcome is logged, the ready file written and Envoy still stopped by its SIGTERM. Reading it is bounded and never
 * holds the drain: without it, the drain runs on its flags alone, and says so once.
 */
import type { OuterDeadline } from "../drain/drain.ts";
import { formatDuration } from "../duration.ts";
import { errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { API_CALL_TIMEOUT_MS, callApi, inClusterTarget, type KubernetesTarget } from "./in-cluster.ts";

/** How long before kubelet's SIGKILL the drain ends: time to log, write the ready file, post the last Event, exit. */
export const GRACE_MARGIN_MS = 3000;

/**
 * Asks for the pod's metadata alone (what client-go's metadata client asks for): `get` on pods, as for the whole
 * Pod, but a smaller answer. An API server that ignores it answers the whole Pod, which has the same metadata.
 */
const METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

/** The longest a timer waits (2^31 - 1 ms, about 24.8 days): a grace period that ends later bounds nothing a drain does. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** The pod's metadata is at most this large (annotations alone may take 256 KiB). */
const MAX_POD_BYTES = 1024 * 1024;

/** When the drain ends, and from what: the grace period (when the API gave it) and the margin kept before its end. */
export interface GraceDeadline {
  endsAt: number;
  gracePeriodMs: number | undefined;
  marginMs: number;
}

/** The metadata fields the deadline comes from. */
interface PodDeletion {
  uid?: string;
  deletionTimestamp?: string | null;
  deletionGracePeriodSeconds?: number;
}

/** Reads the pod's deletion fields; a string says why they are not known. */
async function readPodDeletion(target: KubernetesTarget, signal: AbortSignal): Promise<PodDeletion | string> {
  const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}`;
  const answer = await callApi(target, { method: "GET", path, accept: METADATA_ONLY, maxBytes: MAX_POD_BYTES }, signal);
  if (answer.status === 401 || answer.status === 403)
    return `the API server answered HTTP ${answer.status} to reading pod ${target.namespace}/${target.pod} (is a Role allowing get on pods bound?)`;
  if (answer.status >= 300 && answer.status < 400) return `the API server answered HTTP ${answer.status} (a redirect, not followed)`;
  if (answer.status !== 200) return `the API server answered HTTP ${answer.status} to reading pod ${target.namespace}/${target.pod}`;
  const metadata = (JSON.parse(answer.text) as { metadata?: PodDeletion } | null)?.metadata;
  if (typeof metadata !== "object" || metadata === null) return "the API server's answer has no metadata";
  return metadata;
}

/**
 * When the drain must end: a margin before the earlier of the API's deletion time and the drain's start plus the
 * grace period (kubelet counts the grace period from when it starts stopping the container, which is when the preStop
 * hook, and so the drain, starts). A grace period shorter than twice the margin keeps half of it for the drain.
 */
export function deadlineFrom(deletion: PodDeletion, startedAt: number): GraceDeadline | string {
  if (deletion.deletionTimestamp === undefined || deletion.deletionTimestamp === null)
    return "the pod is not being deleted (a container restart, or kubelet evicting it on its own): its grace period is not in the API";
  const deletionAt = typeof deletion.deletionTimestamp === "string" ? Date.parse(deletion.deletionTimestamp) : Number.NaN;
  if (Number.isNaN(deletionAt)) return `the pod's deletionTimestamp ${JSON.stringify(deletion.deletionTimestamp)} is not a time`;
  const seconds = deletion.deletionGracePeriodSeconds;
  // Whole seconds, as the API writes them; anything else is not taken for a grace period.
  const gracePeriodMs = typeof seconds === "number" && Number.isSafeInteger(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
  const killAt = gracePeriodMs === undefined ? deletionAt : Math.min(deletionAt, startedAt + gracePeriodMs);
  const margin = gracePeriodMs === undefined ? GRACE_MARGIN_MS : Math.min(GRACE_MARGIN_MS, gracePeriodMs / 2);
  return { endsAt: killAt - margin, gracePeriodMs, marginMs: margin };
}

/** The deadline of a drain that started at `startedAt`, from this pod's metadata; a string says why there is none. */
async function findDeadline(
  env: Record<string, string | undefined>,
  startedAt: number,
  signal: AbortSignal,
): Promise<GraceDeadline | string> {
  const target = await inClusterTarget(env, signal);
  if (typeof target === "string") return target;
  const deletion = await readPodDeletion(target, signal);
  if (typeof deletion === "string") return deletion;
  if (target.uid && deletion.uid && deletion.uid !== target.uid)
    return `pod ${target.namespace}/${target.pod} in the API is another pod of that name (uid ${deletion.uid}, not POD_UID ${target.uid})`;
  return deadlineFrom(deletion, startedAt);
}

/**
 * The outer deadline of a drain that started at `startedAt`, from the pod's grace period; undefined, said once, when
 * it cannot be known. Settles within API_CALL_TIMEOUT_MS whatever the API server does.
 */
export async function podGraceDeadline(
  startedAt: number,
  env: Record<string, string | undefined> = process.env,
): Promise<OuterDeadline | undefined> {
  const signal = AbortSignal.timeout(API_CALL_TIMEOUT_MS);
  const found = await findDeadline(env, startedAt, signal).catch(
    (error) => `could not read the pod: ${signal.aborted ? `no answer within ${API_CALL_TIMEOUT_MS} ms` : errorMessage(error)}`,
  );
  if (typeof found === "string") {
    log.warn(`the pod's grace period is not known: ${found}; the drain runs on its flags alone (--no-pod-grace-period: do not ask)`);
    return undefined;
  }
  if (found.endsAt - Date.now() > LONGEST_TIMER_MS) return undefined;
  const grace =
    found.gracePeriodMs === undefined ? "the pod's deletion time" : `its grace period of ${formatDuration(found.gracePeriodMs)}`;
  const what = `${formatDuration(found.marginMs)} before kubelet's SIGKILL (${grace})`;
  log.info(`the pod is being deleted: the drain ends at the latest ${what}`, {
    ends_in: formatDuration(Math.max(0, found.endsAt - Date.now())),
  });
  return { endsAt: found.endsAt, what };
}
