/**
 * `--pod-events`: a drain posts DrainStarted and its end (DrainCompleted, DrainTimedOut, DrainFailed) on the pod,
 * as Events the Kubernetes API accepts, to a fake API server over TLS; one that hangs or refuses neither delays nor
 * fails the drain, and is said once. Each post is bounded as a whole: the service account's files, the connection,
 * the answer (its body discarded, a redirect not followed).
 */
import { describe, expect, test } from "bun:test";
import { Event } from "kubernetes-models/v1/Event";
import { Drain } from "../src/drain/drain.ts";
import type { DrainSettings } from "../src/drain/settings.ts";
import { API_CALL_TIMEOUT_MS, inClusterTarget, type KubernetesTarget } from "../src/kube/in-cluster.ts";
import { podEventsOnDemand } from "../src/kube/on-demand.ts";
import { podEvents } from "../src/kube/pod-events.ts";
import { drainSettings } from "./support/drain-settings.ts";
import { fakeApiServer, podEnvironment } from "./support/fake-kube-api.ts";
import { captureLogs, oneWarning } from "./support/logs.ts";
import { MemoryEnvoy } from "./support/memory-envoy.ts";
import { within } from "./support/process.ts";
import { onTeardown } from "./support/teardown.ts";
import { VirtualClock } from "./support/virtual-clock.ts";

/** A drain of an in-memory Envoy holding `connections`, in real time, with its Events going to `target`. */
function drainWithEvents(target: KubernetesTarget, connections: number, settings: Partial<DrainSettings> = {}) {
  const envoy = new MemoryEnvoy(new VirtualClock(), 2000, connections);
  const drain = new Drain(drainSettings({ checkIntervalMs: 50, ...settings }), envoy, {
    onPoll: () => {},
    events: podEvents(async () => target),
  });
  return { envoy, drain };
}

describe("drain events on the pod", () => {
  test("a drain posts DrainStarted and DrainCompleted with its figures, each a valid Event about this pod", async () => {
    const api = fakeApiServer();
    const { target } = api;
    const { envoy, drain } = drainWithEvents(target, 12);
    setTimeout(() => {
      envoy.connections = 0;
    }, 200);
    expect((await within(5000, drain.start())).phase).toBe("drained");
    await within(5000, drain.eventsSettled());
    const posted = api.posted();
    expect(posted.map((p) => p.body?.reason)).toEqual(["DrainStarted", "DrainCompleted"]);
    expect(posted[1]?.body?.message).toMatch(/^drained 12 connection\(s\) in \d+ms$/);
    for (const { path, authorization, body: event } of posted) {
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
    const api = fakeApiServer();
    const { target } = api;
    const { drain } = drainWithEvents(target, 2, { drainTimeoutMs: 300 });
    expect((await within(5000, drain.start())).phase).toBe("timed_out");
    await within(5000, drain.eventsSettled());
    const posted = api.posted();
    expect(posted[1]?.body).toMatchObject({ reason: "DrainTimedOut", type: "Warning" });
    expect(posted[1]?.body?.message).toMatch(/^drain timed out after 3\d\dms; connections still open on 0\.0\.0\.0_8080=2$/);
  });

  test("an API server that hangs neither delays nor fails the drain: one warning, and the Events give up in time", async () => {
    const { target } = fakeApiServer(() => new Promise<Response>(() => {}));
    const logs = captureLogs();
    const { drain } = drainWithEvents(target, 0);
    const started = performance.now();
    expect((await within(2000, drain.start())).phase).toBe("drained");
    expect(performance.now() - started).toBeLessThan(1000);
    await within(API_CALL_TIMEOUT_MS * 2 + 2000, drain.eventsSettled());
    expect(oneWarning(logs, "--pod-events")).toContain(`no answer within ${API_CALL_TIMEOUT_MS} ms`);
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

  test("an answer whose body never ends is not read: the post settles at once, having taken a few KiB", async () => {
    let sent = 0;
    const endless = () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            sent += 64 * 1024;
            controller.enqueue(new Uint8Array(64 * 1024));
          },
        }),
        { status: 201, headers: { "content-type": "application/json" } },
      );
    const { target } = fakeApiServer(endless);
    const logs = captureLogs();
    const events = podEvents(async () => target);
    const started = performance.now();
    await within(API_CALL_TIMEOUT_MS + 2000, events.started(drainSettings()));
    expect(performance.now() - started).toBeLessThan(API_CALL_TIMEOUT_MS / 2);
    expect(logs.filter((line) => line.msg.includes("--pod-events"))).toEqual([]);
    await Bun.sleep(200);
    // Read whole for 2 s, as before, this is hundreds of MiB; discarded, only what the sockets' buffers took.
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });

  test("a redirect is not followed, least of all to plain HTTP: the token never leaves for it, and it is said", async () => {
    const plain: string[] = [];
    const elsewhere = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(request) {
        plain.push(`${request.method} ${new URL(request.url).pathname} ${request.headers.get("authorization")}`);
        return new Response("{}", { status: 201 });
      },
    });
    onTeardown(() => elsewhere.stop(true));
    const { target } = fakeApiServer(
      () => new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${elsewhere.port}/api/v1/namespaces/edge/events` } }),
    );
    const logs = captureLogs();
    await within(API_CALL_TIMEOUT_MS + 2000, podEvents(async () => target).started(drainSettings()));
    expect(plain).toEqual([]);
    expect(oneWarning(logs, "--pod-events")).toContain("HTTP 307 (a redirect, not followed)");
  });

  test("a token file that is a FIFO nobody writes to is refused, not waited on: the post settles within its bound", async () => {
    const { requests, target } = fakeApiServer();
    const env = podEnvironment(target, { fifoToken: true });
    const logs = captureLogs();
    const events = podEvents((signal) => inClusterTarget(env, signal));
    const started = performance.now();
    await within(API_CALL_TIMEOUT_MS + 1000, events.started(drainSettings()));
    expect(performance.now() - started).toBeLessThan(API_CALL_TIMEOUT_MS + 500);
    expect(oneWarning(logs, "--pod-events")).toContain(`${env.ENVOY_SHUTDOWN_SERVICE_ACCOUNT_DIR}/token is not a regular file`);
    expect(requests).toEqual([]);
  });

  test("the service-account directory comes from ENVOY_SHUTDOWN_SERVICE_ACCOUNT_DIR, the API from KUBERNETES_SERVICE_*", async () => {
    const { target } = fakeApiServer();
    expect(await inClusterTarget(podEnvironment(target))).toEqual({ ...target, ca: target.ca.trim() });
  });

  test("outside a pod, the target says what is missing instead of guessing", async () => {
    expect(await inClusterTarget({})).toContain("KUBERNETES_SERVICE_HOST is not set");
    expect(await inClusterTarget({ KUBERNETES_SERVICE_HOST: "10.96.0.1" })).toContain("POD_NAME is not set");
  });
});
