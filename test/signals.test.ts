/**
 * Signals to the sidecar at every moment of a pod's termination. kubelet stops each container on its own: it runs
 * that container's preStop hook, then sends SIGTERM. In the sibling httpGet wiring the sidecar has no hook, so its
 * SIGTERM and Envoy's `GET /shutdown` leave kubelet at the same moment, in either order.
 */
import { describe, expect, test } from "bun:test";
import { type KeepAliveClient, openClient } from "./support/clients.ts";
import type { FakeEnvoy } from "./support/fake-envoy.ts";
import { closesAfter, fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { startManager, within } from "./support/process.ts";
import { sidecarScenario } from "./support/scenario.ts";
import { onTeardown } from "./support/teardown.ts";

const settlesWithin = (ms: number, promise: Promise<unknown>) =>
  within(
    ms,
    promise.then(() => true),
  ).catch(() => false);

/** A request's status, or "refused" when nothing accepted the connection. */
const statusOf = (response: Promise<Response>) =>
  response.then(
    (r) => r.status,
    () => "refused" as const,
  );

describe("SIGTERM before, with and after the hook's /shutdown", () => {
  test("before: the sidecar keeps serving for --hook-wait, and a /shutdown that arrives drains Envoy to the end", async () => {
    const { fake, sidecar, shutdown } = await sidecarScenario({ envoy: { connections: 2 }, flags: ["--hook-wait", "3s"] });
    sidecar.proc.kill("SIGTERM");
    await sidecar.waitForLog((line) => String(line.msg).includes("serving up to 3s more for a preStop /shutdown"));
    await Bun.sleep(50);
    const hook = statusOf(shutdown());
    await sidecar.waitForLog((line) => line.msg === "open connections");
    expect(await settlesWithin(300, sidecar.exited)).toBe(false);
    fake.setConnections(0);
    expect(await within(3000, hook)).toBe(200);
    expect(await within(3000, sidecar.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("with: SIGTERM and /shutdown at the same moment drain Envoy", async () => {
    const { fake, sidecar, shutdown } = await sidecarScenario({
      envoy: closesAfter(1, 300),
    });
    sidecar.proc.kill("SIGTERM");
    expect(await within(5000, statusOf(shutdown()))).toBe(200);
    expect(await within(3000, sidecar.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  type Scenario = Awaited<ReturnType<typeof sidecarScenario>>;
  test.each([
    ["Envoy's httpGet /shutdown", (pod: Scenario) => pod.shutdown().then((response) => response.status), 200],
    ["a joined exec hook", (pod: Scenario) => pod.hook().exited, 0],
  ])(
    "after (the race Envoy Gateway users hit): SIGTERM while %s waits: the drain goes on, served, to its logged end",
    async (_, wait, answer) => {
      const pod = await sidecarScenario({ envoy: { connections: 2 } });
      const waiter = wait(pod);
      await pod.sidecar.waitForLog((line) => line.msg === "open connections");
      pod.sidecar.proc.kill("SIGTERM");
      await pod.sidecar.waitForLog((line) => String(line.msg).includes("finishing the drain for 1 waiting"));
      expect(await settlesWithin(600, pod.sidecar.exited)).toBe(false);
      // It still serves while it finishes: /status says how the drain goes, and a joined hook does not think it lost.
      expect((await pod.status()).phase).toBe("draining");
      pod.fake.setConnections(0);
      expect(await within(3000, waiter)).toBe(answer);
      expect(await within(3000, pod.sidecar.exited)).toBe(0);
      expect(pod.fake.calls("/healthcheck/fail")).toHaveLength(1);
      expect(pod.sidecar.lines.some((line) => line.msg === "SIGTERM: the drain ended drained (threshold); exiting")).toBe(true);
    },
  );

  test("no hook on its way: the sidecar exits 0 once --hook-wait has passed", async () => {
    const { sidecar } = await sidecarScenario({ flags: ["--hook-wait", "600ms"] });
    const signalled = Date.now();
    sidecar.proc.kill("SIGTERM");
    expect(await within(3000, sidecar.exited)).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(550);
  });

  test("--hook-wait 0, or a drain already completed, exits at once", async () => {
    const quick = await sidecarScenario({ flags: ["--hook-wait", "0"] });
    quick.sidecar.proc.kill("SIGTERM");
    expect(await within(1000, quick.sidecar.exited)).toBe(0);
    const done = await sidecarScenario({ envoy: { connections: 0 }, flags: ["--hook-wait", "1h"] });
    expect((await done.shutdown()).status).toBe(200);
    done.sidecar.proc.kill("SIGTERM");
    expect(await within(1000, done.sidecar.exited)).toBe(0);
  });

  test("SIGTERM waits no longer than --drain-timeout", async () => {
    const { sidecar, shutdown } = await sidecarScenario({ envoy: { connections: 2 }, flags: ["--drain-timeout", "1s"] });
    const waiter = shutdown();
    await sidecar.waitForLog((line) => line.msg === "open connections");
    sidecar.proc.kill("SIGTERM");
    expect((await within(3000, waiter)).status).toBe(504);
    expect(await within(3000, sidecar.exited)).toBe(0);
  });

  test("a second SIGTERM exits at once", async () => {
    const { sidecar, shutdown } = await sidecarScenario({ envoy: { connections: 2 } });
    const waiter = statusOf(shutdown());
    await sidecar.waitForLog((line) => line.msg === "open connections");
    sidecar.proc.kill("SIGTERM");
    await sidecar.waitForLog((line) => String(line.msg).includes("finishing the drain"));
    sidecar.proc.kill("SIGTERM");
    expect(await within(2000, sidecar.exited)).toBe(143);
    expect(await waiter).toBe("refused");
  });
});

/** One pod of the rollout: a live fake Envoy and its sidecar process (sibling httpGet wiring). */
async function startPod(hookWait: string) {
  const envoy = await fakeEnvoy({ mode: "live", responseDelayMs: 10 });
  const sidecar = await startManager(fastDrain(envoy.adminAddress, ["--hook-wait", hookWait]).args);
  return { envoy, sidecar, stopped: false };
}
type Pod = Awaited<ReturnType<typeof startPod>>;

/**
 * Clients that send requests back to back on keep-alive connections through a load balancer that only picks pods
 * passing health checks; a `connection: close` sends the client to another pod. A request fails when its
 * connection dies before the response (or cannot be opened).
 */
function startTraffic(pods: () => Pod[], clients: number) {
  let running = true;
  let failed = 0;
  let served = 0;
  let turn = 0;
  const pick = (): FakeEnvoy | undefined => {
    const ready = pods().filter((pod) => !pod.stopped && !pod.envoy.isHealthCheckFailed);
    return ready[turn++ % Math.max(1, ready.length)]?.envoy;
  };
  const loop = async () => {
    let client: KeepAliveClient | undefined;
    while (running) {
      try {
        if (!client || client.isClosed) {
          const envoy = pick();
          if (!envoy) throw new Error("no pod is ready");
          client = await openClient(envoy.dataPort);
        }
        const response = await client.request();
        served += 1;
        if (response.includes("connection: close")) client = undefined;
      } catch {
        failed += 1;
        client = undefined;
      }
      await Bun.sleep(2);
    }
    client?.close();
  };
  const loops = Array.from({ length: clients }, loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { failed, served };
    },
  };
}

/** Rolls `count` pods one by one, kubelet style: SIGTERM to the sidecar `leadMs` before Envoy's httpGet hook. */
async function rollingUpdate(hookWait: string, leadMs: number) {
  const pods: Pod[] = [];
  for (let i = 0; i < 3; i++) pods.push(await startPod(hookWait));
  const traffic = startTraffic(() => pods, 20);
  onTeardown(() => traffic.stop());
  await Bun.sleep(200);
  const hookAnswers: (number | string)[] = [];
  const failPosts: number[] = [];
  for (let i = 0; i < 3; i++) {
    pods.push(await startPod(hookWait)); // the new pod is ready before the old one goes (maxSurge)
    const old = pods[i] as Pod;
    old.sidecar.proc.kill("SIGTERM");
    await Bun.sleep(leadMs);
    // kubelet's httpGet hook: whatever it answers, or a refused connection, kubelet then sends SIGTERM to Envoy.
    hookAnswers.push(await statusOf(fetch(`${old.sidecar.url}/shutdown`)));
    failPosts.push(old.envoy.calls("/healthcheck/fail").length);
    old.stopped = true;
    await old.envoy.stop(); // Envoy exits on SIGTERM and closes every connection at once
  }
  await Bun.sleep(100);
  return { ...(await traffic.stop()), hookAnswers, failPosts };
}

describe("a rolling update under load, sibling httpGet wiring", () => {
  test("the sidecar signalled before Envoy's hook still drains every pod: each hook answered 200, no request fails", async () => {
    const { failed, served, hookAnswers, failPosts } = await rollingUpdate("5s", 20);
    console.log(`rolling update, --hook-wait 5s: ${served} requests served, ${failed} failed`);
    expect(hookAnswers).toEqual([200, 200, 200]);
    expect(failPosts).toEqual([1, 1, 1]);
    expect(served).toBeGreaterThan(500);
    expect(failed).toBe(0);
  }, 20_000);

  test("--hook-wait 0 does what it says: the sidecar exits at SIGTERM, so a hook that comes after finds nothing to drain Envoy", async () => {
    // What the wait is for, shown without it (the losses this causes are measured by `npm run bench:rollout`).
    const pod = await startPod("0");
    pod.sidecar.proc.kill("SIGTERM");
    expect(await within(2000, pod.sidecar.exited)).toBe(0);
    expect(await statusOf(fetch(`${pod.sidecar.url}/shutdown`))).toBe("refused");
    expect(pod.envoy.calls("/healthcheck/fail")).toHaveLength(0);
  });
});
