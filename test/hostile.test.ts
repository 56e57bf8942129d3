/** Hostile clients of the sidecar: floods of idle, slow and waiting connections, and the idle timeout that bounds them. */
import { describe, expect, test } from "bun:test";
import { options as sidecarOptions } from "../src/cli/commands/shutdown-manager.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { Drain } from "../src/drain/drain.ts";
import { createEnvoyAdmin } from "../src/envoy/client.ts";
import { IDLE_TIMEOUT_S, startServer } from "../src/sidecar/server.ts";
import { rawRequest } from "./support/clients.ts";
import { fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { within } from "./support/process.ts";
import { sidecarScenario } from "./support/scenario.ts";
import { onTeardown } from "./support/teardown.ts";

/** Whether a promise has settled by the next turn of the event loop. */
const settled = (promise: Promise<unknown>) =>
  Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    Bun.sleep(0).then(() => false),
  ]);

describe("hostile connections", () => {
  test("idle and slow connections and a /shutdown flood: /healthz keeps answering and the drain completes", async () => {
    const { fake, sidecar } = await sidecarScenario({ envoy: { connections: 1 } });
    const port = sidecar.port;
    let closed = 0;
    const sockets = await Promise.all(
      Array.from({ length: 2000 }, () =>
        Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            data() {},
            close: () => {
              closed++;
            },
          },
        }),
      ),
    );
    onTeardown(() => {
      for (const socket of sockets) socket.end();
    });
    // Slow clients: a request head trickled out one byte at a time.
    const slow = sockets.slice(0, 50);
    for (const socket of slow) socket.write("GET /healthz HTTP/1.1\r\n");
    const trickle = setInterval(() => {
      for (const socket of slow) socket.write("x");
    }, 50);
    onTeardown(() => clearInterval(trickle));
    // Raw sockets, so all 500 wait at once (fetch would queue most of them in its own pool).
    const flood = Array.from({ length: 500 }, () => rawRequest(port, "GET /shutdown HTTP/1.1").then((r) => r.slice(9, 12)));
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const response = await within(2000, rawRequest(port, "GET /healthz HTTP/1.1"), "/healthz under load");
      expect(response).toStartWith("HTTP/1.1 200");
      latencies.push(performance.now() - started);
      await Bun.sleep(25);
    }
    // Every hostile connection reached the server and is held, not shed: 500 waiters at once, the idle sockets open.
    const waiters = async () => ((await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { waiters: number }).waiters;
    for (let tries = 0; (await waiters()) < 500 && tries < 100; tries++) await Bun.sleep(50);
    expect(await waiters()).toBe(500);
    expect(closed).toBe(0);
    fake.setConnections(0);
    const statuses = await within(10_000, Promise.all(flood), "the /shutdown flood");
    expect(statuses.filter((s) => s === "200")).toHaveLength(500);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    console.log(`/healthz under 2000 idle + 50 slow connections and 500 waiters: max ${Math.max(...latencies).toFixed(1)} ms`);
  });

  test("an idle connection is closed within a tick of the idle timeout, while a /shutdown waiter is held past it", async () => {
    // The sidecar's own timeout is IDLE_TIMEOUT_S; the same server with 1 s shows the behaviour without the wait.
    // (A connection that never sends a request is closed by Bun on a schedule of its own, not tested here.)
    const idleTimeoutS = 1;
    expect(IDLE_TIMEOUT_S).toBe(10);
    const fake = await fakeEnvoy({ connections: 1 });
    const settings = readOptions(sidecarOptions, fastDrain(fake.adminAddress).args, {});
    const admin = createEnvoyAdmin(settings.admin);
    const drain = new Drain(settings.drain, admin);
    const server = startServer({
      port: 0,
      hostname: "127.0.0.1",
      token: undefined,
      drain,
      counters: { waiters: 0, heals: 0 },
      settings: { drainOwner: "sidecar", adminAddress: admin.address, envoyAnswered: () => admin.answered, readyFile: undefined },
      onShutdownRequest: () => drain.start(),
      idleTimeoutS,
    });
    onTeardown(() => server.stop(true));
    // A keep-alive connection that made one request and then sends nothing: idle from its answer on.
    let opened = 0;
    const { promise: idleClosed, resolve } = Promise.withResolvers<number>();
    const idle = await Bun.connect({
      hostname: "127.0.0.1",
      port: server.port ?? 0,
      socket: {
        data() {
          opened = Date.now();
        },
        close: () => resolve(Date.now()),
      },
    });
    onTeardown(() => idle.end());
    idle.write("GET /healthz HTTP/1.1\r\nhost: sidecar\r\n\r\n");
    const waiter = fetch(`http://127.0.0.1:${server.port}/shutdown`, { timeout: false } as RequestInit);
    // Stopped with the test if it fails early: the reset is expected then, not an error of its own.
    waiter.catch(() => undefined);
    const closedAfterMs = (await within(8000, idleClosed, "the idle connection's close")) - opened;
    console.log(`an idle connection was closed after ${closedAfterMs} ms (idle timeout ${idleTimeoutS} s)`);
    // Bun checks idle timeouts every 4 s, so a 1 s timeout closes anywhere within the first tick after it.
    expect(closedAfterMs).toBeLessThanOrEqual(idleTimeoutS * 1000 + 4000);
    expect(await settled(waiter)).toBe(false);
    fake.setConnections(0);
    expect((await within(3000, waiter)).status).toBe(200);
  });
});
