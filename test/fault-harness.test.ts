/**
 * A randomized fault harness: seeded, reproducible schedules of faults, after each of which the program's promises
 * must still hold. Two rings:
 * - the drain on a virtual clock against an in-memory Envoy: hundreds of schedules in well under a second;
 * - the sidecar and the hook in process, over real HTTP to the fake Envoy, with real time and short intervals.
 * HARNESS_SCHEDULES=N runs N schedules of each ring instead of the default; HARNESS_SEED=S replays one schedule.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { options as sidecarCommand } from "../src/cli/commands/shutdown-manager.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { Drain, type DrainOutcome } from "../src/drain/drain.ts";
import type { DrainSettings } from "../src/drain/settings.ts";
import { runShutdownHook } from "../src/hook/hook.ts";
import { startSidecar } from "../src/sidecar/sidecar.ts";
import type { Fault } from "./support/fake-envoy.ts";
import { fakeEnvoy, tempDir } from "./support/fixtures.ts";
import { MemoryEnvoy, type MemoryFault, type Operation } from "./support/memory-envoy.ts";
import { within } from "./support/process.ts";
import { onTeardown } from "./support/teardown.ts";
import { VirtualClock } from "./support/virtual-clock.ts";

const REQUESTED = Number(process.env.HARNESS_SCHEDULES) || undefined;
const REPLAY = process.env.HARNESS_SEED === undefined ? undefined : Number(process.env.HARNESS_SEED);

/** The seeds a ring runs: the replayed one, or `count` (or HARNESS_SCHEDULES) of them from `first`. */
function seeds(first: number, count: number): number[] {
  if (REPLAY !== undefined) return [REPLAY];
  return Array.from({ length: REQUESTED ?? count }, (_, i) => first + i);
}

/** A small seeded generator (mulberry32): the same seed gives the same schedule on every machine. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return { chance: (p: number) => next() < p, int, pick: <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T };
}

/** Runs `check`; a failure names the seed and the command that replays it. */
async function withSeed(seed: number, file: string, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (error) {
    const replay = `HARNESS_SEED=${seed} npx bun test ${file}`;
    throw new Error(`schedule ${seed} broke a promise (replay: ${replay}): ${(error as Error).message}`);
  }
}

describe("ring 1: the drain on a virtual clock", () => {
  const FAULTS: MemoryFault[] = [
    { kind: "hang" },
    { kind: "slow", ms: 300 },
    { kind: "slow", ms: 5000 },
    { kind: "http_status" },
    { kind: "malformed" },
    { kind: "network" },
    { kind: "stats_missing" },
  ];
  const OPERATIONS: Operation[] = ["fail", "count", "count", "drain_listeners"];

  /** One random schedule: settings, a starting Envoy, and timed events; returns what the invariants need. */
  async function runSchedule(seed: number) {
    const r = random(seed);
    const neverThere = r.chance(0.1);
    const settings: DrainSettings = {
      drainDelayMs: r.chance(0.5) ? 0 : r.int(1, 2000),
      checkDelayMs: r.int(0, 5000),
      checkIntervalMs: r.int(100, 3000),
      minOpenConnections: r.int(0, 3),
      // A schedule whose Envoy is never there needs a deadline: nothing else ends it, by design.
      drainTimeoutMs: !neverThere && r.chance(0.25) ? 0 : r.int(1000, 30_000),
      drainListeners: r.chance(0.3),
      countIdleConnections: true,
      longLivedBudgetMs: 0,
      adminUnreachableThreshold: r.int(1, 4),
      minDrainMs: r.chance(0.2) ? r.int(1, 5000) : 0,
      healthCheckFailDelayMs: r.chance(0.2) ? r.int(1, 3000) : 0,
      quietPeriodMs: r.chance(0.3) ? r.int(1, 3000) : 0,
      quietConnections: 0,
    };
    const adminTimeoutMs = r.int(500, 3000);
    const clock = new VirtualClock();
    const envoy = new MemoryEnvoy(clock, adminTimeoutMs, r.int(0, 20));
    envoy.up = !neverThere;
    const drain = new Drain(settings, envoy, { clock, onPoll: () => {} });
    let handedOff = false;
    for (let i = r.int(3, 12); i > 0; i--) {
      const at = r.int(0, 40_000);
      const event = r.int(0, 9);
      clock.at(at, () => {
        if (neverThere) return;
        if (event <= 2) envoy.connections = r.int(0, 20);
        else if (event === 3) envoy.restart(r.int(0, 20));
        else if (event === 4) envoy.exit();
        else if (event === 5) envoy.up = true;
        else if (event === 6 && r.chance(0.2)) {
          handedOff = true;
          void drain.endWith(r.pick(["drained", "timed_out", "failed"] as const), "handed_off");
        } else envoy.fault(r.pick(OPERATIONS), r.pick(FAULTS), r.int(1, 3));
      });
    }
    // Without a deadline, the schedule settles so that the drain can end: Envoy back, no connections left.
    if (settings.drainTimeoutMs === 0) {
      clock.at(45_000, () => {
        envoy.up = true;
        envoy.connections = 0;
      });
    }
    const outcome: DrainOutcome = await clock.run(drain.start(), 10 * 60_000);
    return { settings, adminTimeoutMs, envoy, clock, outcome, handedOff, neverThere };
  }

  test(`${REQUESTED ?? 300} schedules keep every promise`, async () => {
    const started = performance.now();
    const outcomes = new Map<string, number>();
    for (const seed of seeds(1, 300)) {
      await withSeed(seed, "test/fault-harness.test.ts", async () => {
        const { settings, envoy, clock, outcome, handedOff, neverThere } = await runSchedule(seed);
        const key = `${outcome.phase}/${outcome.reason}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        const counts = envoy.calls.filter((call) => call.operation === "count" && !call.error);
        // "drained" only if the last good count was at or below the threshold while health checks failed,
        // or an Envoy that had answered then refused enough times in a row; or another process said so.
        if (outcome.phase === "drained" && outcome.reason === "threshold") {
          const last = counts.at(-1);
          expect(last?.total).toBeLessThanOrEqual(settings.minOpenConnections);
          expect(last?.live).toBe(false);
        }
        if (outcome.reason === "envoy_gone") {
          expect(envoy.answered).toBe(true);
          const tail = envoy.calls.slice(-settings.adminUnreachableThreshold);
          expect(tail.every((call) => call.error === "unreachable")).toBe(true);
        }
        if (outcome.reason === "handed_off") expect(handedOff).toBe(true);
        // An address that never answered is a failed drain, never "drained" (unless the deadline came before any try).
        if (neverThere && !handedOff && envoy.calls.length > 0)
          expect(outcome).toMatchObject({ phase: "failed", reason: "envoy_unreachable" });
        if (neverThere) expect(outcome.phase).not.toBe("drained");
        // Every run ends by its deadline (exactly: the deadline aborts whatever is in flight).
        if (settings.drainTimeoutMs > 0) expect(outcome.elapsedMs).toBeLessThanOrEqual(settings.drainTimeoutMs);
        // One POST /healthcheck/fail per drain, plus one per Envoy restart.
        expect(envoy.failPosts).toBeLessThanOrEqual(1 + envoy.restarts);
        // Nothing left waiting.
        expect(clock.pendingSleeps).toBe(0);
      });
    }
    console.log(
      `ring 1: ${seeds(1, 300).length} schedules in ${(performance.now() - started).toFixed(0)} ms; outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`,
    );
  });
});

describe("ring 2: sidecar and hook over real HTTP", () => {
  const FAULTS: Fault[] = [
    { kind: "hang" },
    { kind: "delay", ms: 60 },
    { kind: "status", status: 503 },
    { kind: "body", body: "\u0000garbage" },
    { kind: "body", body: '{"stats":{}}' },
    { kind: "redirect", location: "http://127.0.0.1:1/stats" },
    { kind: "trickle", intervalMs: 40 },
  ];
  const PATHS = ["/stats", "/stats", "/healthcheck/fail", "/server_info", "*"];
  const fdCount = () => readdirSync("/proc/self/fd").length;

  /** One schedule: a fake Envoy, an in-process sidecar, waiters and maybe a hook, and faults at random moments. */
  async function runSchedule(seed: number) {
    const r = random(seed);
    const fake = await fakeEnvoy({ connections: r.int(0, 6) });
    const intervalMs = r.int(100, 200);
    const adminTimeoutMs = r.int(100, 200);
    const drainTimeoutMs = r.int(300, 800);
    const readyFile = join(tempDir(), "ready");
    const flags = [
      ...["--admin-address", fake.adminAddress, "--serve-address", "127.0.0.1", "--serve-port", "0", "--ready-file", readyFile],
      ...["--check-delay", "0s", "--check-interval", `${intervalMs}ms`, "--admin-timeout", `${adminTimeoutMs}ms`],
      ...["--drain-timeout", `${drainTimeoutMs}ms`, "--min-open-connections", String(r.int(0, 2)), "--hook-wait", "100ms"],
      ...["--admin-unreachable-threshold", String(r.int(1, 3))],
    ];
    const settings = readOptions(sidecarCommand, flags, {});
    const sidecar = startSidecar(settings);
    onTeardown(() => sidecar.stop());
    const url = `http://127.0.0.1:${sidecar.server.port}`;

    // /healthz, probed throughout as kubelet would, more often, while the sidecar is meant to serve.
    let slowestProbeMs = 0;
    let failedProbes = 0;
    let probing = true;
    let serving = true;
    const prober = (async () => {
      while (probing) {
        const sent = performance.now();
        const ok = await fetch(`${url}/healthz`).then(
          (response) => response.ok,
          () => false,
        );
        if (serving && probing && !ok) failedProbes += 1;
        if (serving) slowestProbeMs = Math.max(slowestProbeMs, performance.now() - sent);
        await Bun.sleep(10);
      }
    })();
    onTeardown(() => {
      probing = false;
      return prober;
    });

    const events: Promise<unknown>[] = [];
    const later = (ms: number, action: () => unknown) => events.push(Bun.sleep(ms).then(action));
    for (let i = r.int(2, 6); i > 0; i--) {
      const at = r.int(0, drainTimeoutMs);
      const event = r.int(0, 5);
      if (event === 0) later(at, () => fake.setConnections(r.int(0, 6)));
      else if (event === 1) later(at, () => fake.restart(r.int(0, 6)));
      else if (event === 2) later(at, () => fake.stopAdmin());
      else if (event === 3) later(at, () => fake.startAdmin());
      else {
        const path = r.pick(PATHS);
        const fault = r.pick(FAULTS);
        later(at, () => fake.setFault(path, fault));
        later(at + r.int(20, 300), () => fake.setFault(path, undefined));
      }
    }
    // Waiters, some of which go away.
    const waiters = Array.from({ length: r.int(1, 4) }, () => {
      const leave = new AbortController();
      if (r.chance(0.4)) later(r.int(0, drainTimeoutMs), () => leave.abort());
      return fetch(`${url}/shutdown`, { signal: leave.signal }).then(
        (response) => response.status,
        () => "left",
      );
    });
    const started = Date.now();
    // A hook that joins; sometimes its sidecar dies or gets SIGTERM under it, or its port is a black hole.
    const fate = r.int(0, 4);
    const blackHole = fate === 2 ? Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }) : undefined;
    if (blackHole) onTeardown(() => blackHole.stop(true));
    const servePort = blackHole?.port ?? settings.handoff.servePort;
    const hookStarted = Date.now();
    const hook = r.chance(0.5)
      ? runShutdownHook({ admin: settings.admin, drain: settings.drain, handoff: { ...settings.handoff, servePort } }, () => {}).then(
          (code) => ({ code, afterMs: Date.now() - hookStarted }),
        )
      : undefined;
    const dieAt = r.int(0, drainTimeoutMs);
    if (fate === 0 || fate === 1) later(dieAt, () => (serving = false));
    if (fate === 0) later(dieAt, () => sidecar.server.stop(true));
    if (fate === 1) later(dieAt, () => sidecar.terminate("SIGTERM"));

    const outcome = await within(drainTimeoutMs + 3000, sidecar.drain.start(), "the sidecar's drain");
    const endedAfterMs = Date.now() - started;
    const hookEnd = hook ? await within(drainTimeoutMs + 3000, hook, "the hook") : undefined;
    await Promise.all(waiters);
    await Promise.all(events);
    probing = false;
    await prober;
    await sidecar.stop();
    await fake.stop();
    blackHole?.stop(true);
    return {
      fake,
      outcome,
      endedAfterMs,
      hookEnd,
      slowestProbeMs,
      failedProbes,
      drainTimeoutMs,
      intervalMs,
      adminTimeoutMs,
      readyFile,
      settings,
    };
  }

  test(`${REQUESTED ?? 16} schedules keep every promise`, async () => {
    const fdsBefore = fdCount();
    const started = performance.now();
    let slowest = 0;
    const list = seeds(1001, 16);
    // Two at a time: each schedule is mostly waiting, and /healthz latency is measured in this same process.
    for (let i = 0; i < list.length; i += 2) {
      await Promise.all(
        list.slice(i, i + 2).map((seed) =>
          withSeed(seed, "test/fault-harness.test.ts", async () => {
            const run = await runSchedule(seed);
            const { fake, outcome, settings } = run;
            if (outcome.phase === "drained" && outcome.reason === "threshold") {
              const last = fake.servedCounts.at(-1);
              expect(last?.open).toBeLessThanOrEqual(settings.drain.minOpenConnections);
              expect(last?.live).toBe(false);
            }
            expect(["threshold", "envoy_gone", "timeout", "handed_off", "envoy_unreachable"]).toContain(outcome.reason);
            expect(run.endedAfterMs).toBeLessThanOrEqual(run.drainTimeoutMs + run.intervalMs + run.adminTimeoutMs + 300);
            // The hook's own deadline bounds it in every mode, joined or alone.
            if (run.hookEnd) {
              expect([0, 1]).toContain(run.hookEnd.code);
              expect(run.hookEnd.afterMs).toBeLessThanOrEqual(run.drainTimeoutMs + 300);
            }
            // One POST /healthcheck/fail per drain (the sidecar's, and the hook's if it had to drain alone), plus one per restart.
            expect(fake.failPosts).toBeLessThanOrEqual((1 + fake.restarts) * (run.hookEnd ? 2 : 1));
            expect(run.failedProbes).toBe(0);
            // The promise is kubelet's: a liveness probe answered within its timeoutSeconds (1 s in the examples), with
            // room to spare on a loaded test machine. How fast it answers is a figure of the benchmark, not a test.
            expect(run.slowestProbeMs).toBeLessThanOrEqual(500);
            expect(readdirSync(dirname(run.readyFile)).filter((name) => name.endsWith(".partial"))).toEqual([]);
            slowest = Math.max(slowest, run.slowestProbeMs);
          }),
        ),
      );
    }
    // Sockets of finished schedules may take a moment to close.
    await Bun.sleep(100);
    expect(fdCount()).toBeLessThanOrEqual(fdsBefore + 6);
    console.log(
      `ring 2: ${list.length} schedules in ${(performance.now() - started).toFixed(0)} ms; slowest /healthz ${slowest.toFixed(1)} ms`,
    );
  }, 60_000);
});
