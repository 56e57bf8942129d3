/**
 * A fake Kubernetes API server over TLS on loopback, and the service-account directory and environment a pod would
 * have to reach it: what the Events and the grace-period tests talk to.
 */
import { expect } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KubernetesTarget } from "../../src/kube/in-cluster.ts";
import { tempDir } from "./fixtures.ts";
import { onTeardown } from "./teardown.ts";

/** A self-signed certificate for 127.0.0.1, as a cluster's CA and API server certificate at once. */
function selfSignedCertificate(): { cert: string; key: string } {
  const dir = tempDir();
  const made = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"].concat([
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]),
    { stderr: "pipe" },
  );
  expect(made.exitCode).toBe(0);
  return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
}

const tls = selfSignedCertificate();

export interface ApiRequest {
  method: string;
  path: string;
  authorization: string | null;
  accept: string | null;
  /** The JSON posted, if any. */
  body: Record<string, unknown> | undefined;
}

/** A fake API server: records every request; `answer` decides the reply (201 to anything by default). */
export function fakeApiServer(answer: (request: Request) => Response | Promise<Response> = () => new Response("{}", { status: 201 })) {
  const requests: ApiRequest[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    tls,
    async fetch(request) {
      const body = request.method === "POST" ? ((await request.json()) as Record<string, unknown>) : undefined;
      const { method, headers } = request;
      requests.push({
        method,
        path: new URL(request.url).pathname,
        authorization: headers.get("authorization"),
        accept: headers.get("accept"),
        body,
      });
      return answer(request);
    },
  });
  onTeardown(() => server.stop(true));
  const target: KubernetesTarget = {
    apiURL: `https://127.0.0.1:${server.port}`,
    token: "service-account-token",
    ca: tls.cert,
    namespace: "edge",
    pod: "envoy-7d9f8-abcde",
    uid: "0b7e7f0e-1111-4222-8333-944455556666",
  };
  /** What was posted to the namespace's events. */
  const posted = () => requests.filter((request) => request.method === "POST");
  return { requests, posted, target, port: server.port as number };
}

/**
 * A service-account directory for `target` (token, CA, namespace), with the environment a pod would have to find
 * it; `fifoToken` makes the token a FIFO nobody writes to.
 */
export function podEnvironment(target: KubernetesTarget, { fifoToken = false } = {}): Record<string, string> {
  const dir = tempDir();
  // As kubelet mounts them: each file a symbolic link into the directory of the current version.
  mkdirSync(join(dir, "..data"));
  if (fifoToken) expect(Bun.spawnSync(["mkfifo", join(dir, "..data", "token")]).exitCode).toBe(0);
  else writeFileSync(join(dir, "..data", "token"), `${target.token}\n`);
  writeFileSync(join(dir, "..data", "ca.crt"), target.ca);
  writeFileSync(join(dir, "..data", "namespace"), target.namespace);
  for (const file of ["token", "ca.crt", "namespace"]) symlinkSync(`..data/${file}`, join(dir, file));
  return {
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBERNETES_SERVICE_PORT: new URL(target.apiURL).port,
    ENVOY_SHUTDOWN_SERVICE_ACCOUNT_DIR: dir,
    POD_NAME: target.pod,
    POD_UID: target.uid ?? "",
  };
}

/** The metadata of a pod deleted at `deletedAt` with a grace period of `seconds`, as the API answers a metadata-only get. */
export function podBeingDeleted(target: KubernetesTarget, seconds: number, deletedAt = Date.now()): Response {
  return Response.json({
    kind: "PartialObjectMetadata",
    apiVersion: "meta.k8s.io/v1",
    metadata: {
      name: target.pod,
      namespace: target.namespace,
      uid: target.uid,
      // The API server writes whole seconds (RFC 3339).
      deletionTimestamp: new Date(Math.floor((deletedAt + seconds * 1000) / 1000) * 1000).toISOString().replace(".000Z", "Z"),
      deletionGracePeriodSeconds: seconds,
    },
  });
}
