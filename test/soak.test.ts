/** 200 drains in a row in one process: no descriptor, object (timer, promise, listener, socket) or memory may accumulate. */

import { heapStats } from "bun:jsc";
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { options as sidecarCommand } from "../src/cli/commands/shutdown-manager.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { startSidecar } from "../src/sidecar/sidecar.ts";
import { openClients } from "./support/clients.ts";
import { fakeEnvoy, tempDir } from "./support/fixtures.ts";
import { within } from "./support/process.ts";

const CYCLES = 200;
const WARM_UP = 20;
const HANDLE_KINDS = [
  "Promise",
  "AbortSignal",
  "AbortController",
  "Timeout",
  "Function",
  "JSLexicalEnvironment",
  "Map",
  "Request",
  "Response",
];

test(`${CYCLES} cycles of start, connect, /shutdown, drained, stop`, async () => {
  const fake = await fakeEnvoy({ mode: "live" });
  const flags = ["--admin-address", fake.adminAddress, "--serve-address", "127.0.0.1", "--serve-port", "0"];
  const settings = readOptions(
    sidecarCommand,
    [...flags, "--check-delay", "0s", "--check-interval", "100ms", "--quiet-period", "0s", "--ready-file", join(tempDir(), "ready")],
    {},
  );
  const fds: number[] = [];
  const rss: number[] = [];
  // Live handles after a full collection, by kind: a timer, promise, abort signal, closure or request a cycle left
  // behind would add one per cycle. (Strings and compiled code come and go with the JIT, so they are not counted.)
  const handles: Record<string, number>[] = [];
  const durations: number[] = [];
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const started = performance.now();
    await within(
      5000,
      (async () => {
        const manager = startSidecar(settings);
        // The previous cycle left Envoy draining: the new sidecar heals it first, as after a sidecar restart.
        expect(await manager.startupCheck).toBe(cycle > 0);
        const clients = await openClients(fake.dataPort, 3);
        const shutdown = fetch(`http://127.0.0.1:${manager.server.port}/shutdown`);
        while (!fake.isHealthCheckFailed) await Bun.sleep(2);
        // Each client's next request is answered with `connection: close`, and the count falls to 0.
        await Promise.all(clients.map((client) => client.request()));
        expect((await shutdown).status).toBe(200);
        expect(fake.openConnections).toBe(0);
        await manager.stop();
      })(),
      `cycle ${cycle}`,
    );
    durations.push(performance.now() - started);
    fds.push(readdirSync("/proc/self/fd").length);
    rss.push(process.memoryUsage().rss);
    // The fake Envoy records every admin request it serves: forget them, so that only the sidecar's objects count.
    fake.requests.length = 0;
    fake.servedCounts.length = 0;
    if (cycle === WARM_UP - 1 || cycle === CYCLES - 1) {
      Bun.gc(true);
      const counts = heapStats().objectTypeCounts;
      handles.push(Object.fromEntries(HANDLE_KINDS.map((kind) => [kind, counts[kind] ?? 0])));
    }
  }
  const baseline = fds[WARM_UP - 1] ?? 0;
  const maxAfterWarmUp = Math.max(...fds.slice(WARM_UP));
  console.log(
    `soak: ${CYCLES} cycles, fds ${fds[0]} first / ${baseline} after warm-up / ${maxAfterWarmUp} max after, ` +
      `max RSS ${(Math.max(...rss) / 2 ** 20).toFixed(1)} MiB, slowest cycle ${Math.max(...durations).toFixed(0)} ms`,
  );
  expect(maxAfterWarmUp).toBeLessThanOrEqual(baseline + 4);
  // 180 cycles after the warm-up: one handle of a kind left per cycle would add 180; allow the few that runtime caches hold.
  const [afterWarmUp = {}, atEnd = {}] = handles;
  console.log(`soak: live handles after warm-up ${JSON.stringify(afterWarmUp)}, at the end ${JSON.stringify(atEnd)}`);
  for (const kind of HANDLE_KINDS) expect((atEnd[kind] ?? 0) - (afterWarmUp[kind] ?? 0)).toBeLessThan(10);
  // Memory settles: RSS at the end is within 16 MiB of RSS after the warm-up (allocator noise, not 180 cycles' worth).
  expect((rss.at(-1) ?? 0) - (rss[WARM_UP - 1] ?? 0)).toBeLessThan(16 * 2 ** 20);
}, 120_000);
