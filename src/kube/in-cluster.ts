/**
 * The in-cluster Kubernetes API as this pod's service account reaches it, for the pod's Events and its grace period.
 * Every call is bounded as a whole (the service account's files, the connection, the answer's body) and never
 * follows a redirect: a drain may wait on it only briefly, and the token goes to the API server alone.
 */
import { errorMessage } from "../errors.ts";
import { untilAborted } from "../wait.ts";

/** Where the in-cluster API is and who this pod is. */
export interface KubernetesTarget {
  /** `https://host:port` of the API server. */
  apiURL: string;
  token: string;
  /** The cluster's CA certificate (PEM), to verify the API server. */
  ca: string;
  namespace: string;
  pod: string;
  /** The pod's UID, when the downward API gives it (POD_UID): it ties the pod to this one and not a namesake. */
  uid: string | undefined;
}

/** Kubernetes' service-account mount: the token, the CA and the pod's namespace. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** The variable that points the service-account directory elsewhere (a runtime that mounts it elsewhere, a test). */
export const SERVICE_ACCOUNT_DIR_ENV = "ENVOY_SHUTDOWN_SERVICE_ACCOUNT_DIR";

/** How long one call to the API may take, its files included: it must never hold a drain or a process's exit for long. */
export const API_CALL_TIMEOUT_MS = 2000;

/** A service-account file is small (a token, a CA bundle, a namespace): anything larger is not one. */
const MAX_FILE_BYTES = 256 * 1024;

/** The text of a service-account file; a FIFO, a device or a huge file is refused rather than read (it may never end). */
async function readServiceAccountFile(path: string): Promise<string> {
  const file = Bun.file(path);
  const stats = await file.stat();
  if (!stats.isFile()) throw new Error(`${path} is not a regular file`);
  if (stats.size > MAX_FILE_BYTES) throw new Error(`${path} is larger than ${MAX_FILE_BYTES / 1024} KiB`);
  return (await file.text()).trim();
}

/**
 * The in-cluster target from the environment and the service-account directory; a string says what is missing.
 * Bounded by `signal`: a file that never yields (a FIFO, a hung mount) ends as the call does.
 */
export async function inClusterTarget(
  env: Record<string, string | undefined> = process.env,
  signal: AbortSignal = AbortSignal.timeout(API_CALL_TIMEOUT_MS),
): Promise<KubernetesTarget | string> {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return "KUBERNETES_SERVICE_HOST is not set: this is not a Kubernetes pod";
  const pod = env.POD_NAME ?? env.HOSTNAME;
  if (!pod) return "POD_NAME is not set: give it the pod's name through the downward API (metadata.name)";
  const dir = env[SERVICE_ACCOUNT_DIR_ENV] || SERVICE_ACCOUNT_DIR;
  try {
    const files = Promise.all(["token", "ca.crt", "namespace"].map((file) => readServiceAccountFile(`${dir}/${file}`)));
    const [token = "", ca = "", ownNamespace] = await untilAborted(files, signal);
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) return `the service account's ${dir}/ca.crt holds no PEM certificate`;
    return {
      apiURL: `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`,
      token,
      ca,
      namespace: env.POD_NAMESPACE ?? ownNamespace ?? "default",
      pod,
      uid: env.POD_UID,
    };
  } catch (error) {
    const why = signal.aborted ? `its files gave nothing within ${API_CALL_TIMEOUT_MS} ms` : errorMessage(error);
    return `the service account is not readable at ${dir} (${why})`;
  }
}

/** What the API server answered: its status, and its body's text up to the limit asked for. */
export interface ApiAnswer {
  status: number;
  text: string;
}

/** The answer's body read to `maxBytes` at most (0: not read at all, discarded); more than that is an error. */
async function readBody(response: Response, maxBytes: number): Promise<string> {
  const body = response.body;
  if (!body || maxBytes === 0) {
    await body?.cancel();
    return "";
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`the API server's answer is larger than ${maxBytes / 1024} KiB`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * One call to the API with the service account's token, bounded by `signal` as a whole: the connection, the answer
 * and its body (read to `maxBytes`). A redirect is answered as it is, never followed.
 */
export async function callApi(
  target: KubernetesTarget,
  request: { method: "GET" | "POST"; path: string; body?: string; accept?: string; maxBytes: number },
  signal: AbortSignal,
): Promise<ApiAnswer> {
  const call = async () => {
    const response = await fetch(`${target.apiURL}${request.path}`, {
      method: request.method,
      headers: {
        authorization: `Bearer ${target.token}`,
        accept: request.accept ?? "application/json",
        ...(request.body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: request.body,
      tls: { ca: target.ca },
      redirect: "manual",
      signal,
    });
    return { status: response.status, text: await readBody(response, request.maxBytes) };
  };
  return untilAborted(call(), signal);
}
