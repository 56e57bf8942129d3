/** Hostile clients of the sidecar: floods of idle, slow and waiting connections, and the idle timeout that bounds them. */
import { describe, expect, test } from "bun:test";
import { IDLE_TIMEOUT_S } from "../src/sidecar/server.ts";
import { rawRequest } from "./support/clients.ts";
import { within } from "./support/process.ts";
import { sidecarScenario } from "./support/scenario.ts";
import { onTeardown } from "./support/teardown.ts";

describe("hostile connections", () => {
  test("idle and slow connections and a /shutdown flood: /healthz keeps answering and the drain completes", async () => {
    const { fake, sidecar } = await sidecarScenario({ envoy: { connections: 1 } });
    const port = sidecar.port;
    const sockets = await Promise.all(
      Array.from({ length: 2000 }, () => Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })),
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
    fake.setConnections(0);
    const statuses = await within(10_000, Promise.all(flood), "the /shutdown flood");
    expect(statuses.filter((s) => s === "200")).toHaveLength(500);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    console.log(`/healthz under 2000 idle + 50 slow connections and 500 waiters: max ${Math.max(...latencies).toFixed(1)} ms`);
  });

  test(`an idle connection is closed after ${IDLE_TIMEOUT_S} s (and at most 4 s later), while a /shutdown waiter is held past it`, async () => {
    const { fake, sidecar, shutdown } = await sidecarScenario({ envoy: { connections: 1 }, flags: ["--check-interval", "500ms"] });
    const opened = Date.now();
    const { promise: idleClosed, resolve } = Promise.withResolvers<number>();
    const idle = await Bun.connect({ hostname: "127.0.0.1", port: sidecar.port, socket: { data() {}, close: () => resolve(Date.now()) } });
    onTeardown(() => idle.end());
    const waiter = shutdown({ timeout: false } as RequestInit);
    const closedAfterMs = (await within(16_000, idleClosed, "the idle connection's close")) - opened;
    console.log(`an idle connection was closed after ${closedAfterMs} ms`);
    expect(closedAfterMs).toBeGreaterThanOrEqual(IDLE_TIMEOUT_S * 1000 - 100);
    expect(closedAfterMs).toBeLessThanOrEqual(IDLE_TIMEOUT_S * 1000 + 4000);
    fake.setConnections(0);
    expect((await within(3000, waiter)).status).toBe(200);
  }, 25_000);
});
