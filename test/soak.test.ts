/** 200 drains in a row in one process: no descriptor, timer or socket may accumulate. */
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { configureLogging } from "../src/log.ts";
import { startShutdownManager } from "../src/manager.ts";
import { openClients } from "./support/clients.ts";
import { tempDir } from "./support/drain-flags.ts";
import { type FakeEnvoy, startFakeEnvoy } from "./support/fake-envoy.ts";
import { within } from "./support/process.ts";

const CYCLES = 200;
const WARM_UP = 20;
let fake: FakeEnvoy | undefined;
afterAll(async () => {
  await fake?.stop();
  configureLogging({ level: "info", format: "auto" });
});

test(`${CYCLES} cycles of start, connect, /shutdown, drained, stop`, async () => {
  configureLogging({ level: "error", format: "json" });
  fake = await startFakeEnvoy({ mode: "live" });
  const flags = {
    "admin-address": fake.adminAddress,
    "serve-address": "127.0.0.1",
    "serve-port": "0",
    "check-delay": "0s",
    "check-interval": "20ms",
    "ready-file": join(tempDir(), "ready"),
  };
  const config = loadConfig(flags, {});
  const fds: number[] = [];
  const rss: number[] = [];
  const durations: number[] = [];
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const started = performance.now();
    await within(
      5000,
      (async () => {
        const manager = startShutdownManager(config);
        // The previous cycle left Envoy draining: the new manager heals it first, as after a sidecar restart.
        expect(await manager.healed).toBe(cycle > 0);
        const clients = await openClients(fake.dataPort, 3);
        const shutdown = fetch(`http://127.0.0.1:${manager.server.port}/shutdown`);
        while (!fake?.isHealthCheckFailed) await Bun.sleep(2);
        // Each client's next request is answered with `connection: close`, and the count falls to 0.
        await Promise.all(clients.map((client) => client.request()));
        expect((await shutdown).status).toBe(200);
        expect(fake?.openConnections).toBe(0);
        await manager.stop();
      })(),
      `cycle ${cycle}`,
    );
    durations.push(performance.now() - started);
    fds.push(readdirSync("/proc/self/fd").length);
    rss.push(process.memoryUsage().rss);
  }
  const baseline = fds[WARM_UP - 1] ?? 0;
  const maxAfterWarmUp = Math.max(...fds.slice(WARM_UP));
  console.log(
    `soak: ${CYCLES} cycles, fds ${fds[0]} first / ${baseline} after warm-up / ${maxAfterWarmUp} max after, ` +
      `max RSS ${(Math.max(...rss) / 2 ** 20).toFixed(1)} MiB, slowest cycle ${Math.max(...durations).toFixed(0)} ms`,
  );
  expect(maxAfterWarmUp).toBeLessThanOrEqual(baseline + 4);
}, 120_000);
