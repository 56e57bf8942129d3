/**
 * `--pod-events`: a drain posts DrainStarted and its end (DrainCompleted, DrainTimedOut, DrainFailed) on the pod,
 * as Events the Kubernetes API accepts, to a fake API server over TLS; one that hangs or refuses neither delays nor
 * fails the drain, and is said once.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Event } from "kubernetes-models/v1/Event";
import { Drain } from "../src/drain/drain.ts";
import type { DrainSettings } from "../src/drain/settings.ts";
import { podEventsOnDemand } from "../src/kube/on-demand.ts";
import { EVENT_POST_TIMEOUT_MS, inClusterTarget, type KubernetesTarget, podEvents } from "../src/kube/pod-events.ts";
import { drainSettings } from "./support/drain-settings.ts";
import { tempDir } from "./support/fixtures.ts";
import { captureLogs, oneWarning } from "./support/logs.ts";
import { MemoryEnvoy } from "./support/memory-envoy.ts";
import { within } from "./support/process.ts";
import { onTeardown } from "./support/teardown.ts";
import { VirtualClock } from "./support/virtual-clock.ts";

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

/** A fake API server: records what is posted to a namespace's events; `answer` decides the reply. */
function fakeApiServer(answer: (request: Request) => Response | Promise<Response> = () => new Response("{}", { status: 201 })) {
  const posted: { path: string; authorization: string | null; event: Record<string, unknown> }[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    tls,
    async fetch(request) {
      const event = (await request.json()) as Record<string, unknown>;
      posted.push({ path: new URL(request.url).pathname, authorization: request.headers.get("authorization"), event });
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
  return { posted, target };
}

/** A drain of an in-memory Envoy holding `connections`, in real time, with its Events going to `target`. */
function drainWithEvents(target: KubernetesTarget, connections: number, settings: Partial<DrainSettings> = {}) {
  const envoy = new MemoryEnvoy(new VirtualClock(), 2000, connections);
  const drain = new Drain(drainSettings({ checkIntervalMs: 50, ...settings }), envoy, {
    onPoll: () => {},
    events: podEvents(Promise.resolve(target)),
  });
  return { envoy, drain };
}

describe("drain events on the pod", () => {
  test("a drain posts DrainStarted and DrainCompleted with its figures, each a valid Event about this pod", async () => {
    const { posted, target } = fakeApiServer();
    const { envoy, drain } = drainWithEvents(target, 12);
    setTimeout(() => {
      envoy.connections = 0;
    }, 200);
    expect((await within(5000, drain.start())).phase).toBe("drained");
    await within(5000, drain.eventsSettled());
    expect(posted.map((p) => p.event.reason)).toEqual(["DrainStarted", "DrainCompleted"]);
    expect(posted[1]?.event.message).toMatch(/^drained 12 connection\(s\) in \d+ms$/);
    for (const { path, authorization, event } of posted) {
      expect(path).toBe("/api/v1/namespaces/edge/events");
      expect(authorization).toBe("Bearer service-account-token");
      expect(() => new Event(event as never).validate()).not.toThrow();
      expect(event).toMatchObject({
        type: "Normal",
        involvedObject: { kind: "Pod", name: target.pod, namespace: "edge", uid: target.uid },
        source: { component: "envoy-shutdown-manager" },
      });
    }
  });

  test("a drain that times out posts DrainTimedOut, a Warning naming the listeners still open", async () => {
    const { posted, target } = fakeApiServer();
    const { drain } = drainWithEvents(target, 2, { drainTimeoutMs: 300 });
    expect((await within(5000, drain.start())).phase).toBe("timed_out");
    await within(5000, drain.eventsSettled());
    expect(posted[1]?.event).toMatchObject({ reason: "DrainTimedOut", type: "Warning" });
    expect(posted[1]?.event.message).toMatch(/^drain timed out after 3\d\dms; connections still open on 0\.0\.0\.0_8080=2$/);
  });

  test("an API server that hangs neither delays nor fails the drain: one warning, and the Events give up in time", async () => {
    const { target } = fakeApiServer(() => new Promise<Response>(() => {}));
    const logs = captureLogs();
    const { drain } = drainWithEvents(target, 0);
    const started = performance.now();
    expect((await within(2000, drain.start())).phase).toBe("drained");
    expect(performance.now() - started).toBeLessThan(1000);
    await within(EVENT_POST_TIMEOUT_MS * 2 + 2000, drain.eventsSettled());
    expect(oneWarning(logs, "--pod-events")).toContain(`no answer within ${EVENT_POST_TIMEOUT_MS} ms`);
  });

  test("an API server that refuses (no Role bound) is said once; the drain is drained all the same", async () => {
    const { target } = fakeApiServer(() => new Response('{"kind":"Status","code":403}', { status: 403 }));
    const logs = captureLogs();
    const { drain } = drainWithEvents(target, 0);
    expect((await within(2000, drain.start())).phase).toBe("drained");
    await within(5000, drain.eventsSettled());
    expect(oneWarning(logs, "--pod-events")).toContain("HTTP 403");
  });

  test("as the commands load it (on demand), outside a pod: one warning saying why, and the drain drained", async () => {
    const logs = captureLogs();
    const drain = new Drain(drainSettings(), new MemoryEnvoy(new VirtualClock(), 2000, 0), {
      onPoll: () => {},
      events: podEventsOnDemand(),
    });
    expect((await within(2000, drain.start())).phase).toBe("drained");
    await within(5000, drain.eventsSettled());
    // Whatever this machine lacks of a pod (the API's address, the pod's name, the token) is what the line names.
    expect(oneWarning(logs, "--pod-events")).toMatch(/KUBERNETES_SERVICE_HOST is not set|POD_NAME is not set|service account/);
  });

  test("outside a pod, the target says what is missing instead of guessing", async () => {
    expect(await inClusterTarget({})).toContain("KUBERNETES_SERVICE_HOST is not set");
    expect(await inClusterTarget({ KUBERNETES_SERVICE_HOST: "10.96.0.1" })).toContain("POD_NAME is not set");
  });
});
