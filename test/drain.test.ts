/** The drain sequence in process, on a virtual clock against an in-memory Envoy: every decision, in milliseconds. */
import { describe, expect, test } from "bun:test";
import { Drain, logPoll, type PollReport } from "../src/drain/drain.ts";
import type { DrainSettings } from "../src/drain/settings.ts";
import { drainSettings } from "./support/drain-settings.ts";
import { captureLogs, oneWarning } from "./support/logs.ts";
import { MemoryEnvoy } from "./support/memory-envoy.ts";
import { VirtualClock } from "./support/virtual-clock.ts";

const ADMIN_TIMEOUT_MS = 2000;

/** A drain against a fresh in-memory Envoy holding `connections`, on its own virtual clock. */
function setup(overrides: Partial<DrainSettings> = {}, connections = 0) {
  const clock = new VirtualClock();
  const envoy = new MemoryEnvoy(clock, ADMIN_TIMEOUT_MS, connections);
  const polls: PollReport[] = [];
  const drain = new Drain(drainSettings(overrides), envoy, { clock, onPoll: (report) => polls.push(report) });
  /** Sets Envoy's open connections at a moment of the virtual clock. */
  const connectionsAt = (at: number, connections: number) =>
    clock.at(at, () => {
      envoy.connections = connections;
    });
  return { clock, envoy, drain, polls, connectionsAt, run: () => clock.run(drain.start()) };
}

const times = (envoy: MemoryEnvoy, operation: string) => envoy.calls.filter((c) => c.operation === operation).map((c) => c.at);

describe("the sequence", () => {
  test("waits, fails health checks, waits, then counts until the threshold, one reported count per interval", async () => {
    const { connectionsAt, envoy, run, polls } = setup({ drainDelayMs: 500, checkDelayMs: 3000, checkIntervalMs: 1000 }, 5);
    connectionsAt(4600, 2);
    connectionsAt(6250, 0);
    const outcome = await run();
    // Near the threshold the drain counts ten times a second: it notices the end within 100 ms, not at 6500.
    expect(outcome).toEqual({ phase: "drained", reason: "threshold", openConnections: 0, elapsedMs: 6300 });
    expect(times(envoy, "fail")).toEqual([500]);
    expect(times(envoy, "count")[0]).toBe(3500);
    expect(polls.map((p) => [p.elapsedMs, p.openConnections])).toEqual([
      [3500, 5],
      [4500, 5],
      [5500, 2],
      [6300, 0],
    ]);
    expect(times(envoy, "drain_listeners")).toEqual([]);
  });

  test("--min-open-connections: done at or below it", async () => {
    const { connectionsAt, run } = setup({ minOpenConnections: 2 }, 4);
    connectionsAt(1500, 2);
    expect((await run()).openConnections).toBe(2);
  });

  test("--drain-listeners also starts Envoy's graceful listener drain, once", async () => {
    const { envoy, run } = setup({ drainListeners: true });
    await run();
    expect(times(envoy, "drain_listeners")).toEqual([0]);
  });

  test("joiners share one drain: one /healthcheck/fail, one poll loop", async () => {
    const { connectionsAt, clock, envoy, drain } = setup({}, 1);
    connectionsAt(2500, 0);
    const outcomes = await clock.run(Promise.all([drain.start(), drain.start(), drain.start()]));
    expect(new Set(outcomes).size).toBe(1);
    expect(envoy.failPosts).toBe(1);
    const counts = times(envoy, "count");
    expect(new Set(counts).size).toBe(counts.length);
    expect(outcomes[0]?.elapsedMs).toBe(2500);
  });

  test("a finished drain answers at once and leaves no timer behind", async () => {
    const { clock, drain, run } = setup({ drainTimeoutMs: 60_000 });
    await run();
    expect(clock.pendingSleeps).toBe(0);
    expect((await drain.start()).phase).toBe("drained");
  });

  test("the ready file's phase ends the drain at once, handed off", async () => {
    const { clock, drain } = setup({}, 3);
    clock.at(1500, () => void drain.endWith("drained", "handed_off"));
    const outcome = await clock.run(drain.start());
    expect(outcome).toMatchObject({ phase: "drained", reason: "handed_off", elapsedMs: 1500 });
  });
});

describe("Envoy Gateway's orderings and minimum", () => {
  test("--min-drain-duration: a count at the threshold completes the drain only once the minimum has passed", async () => {
    const { run } = setup({ minDrainMs: 3450 });
    expect(await run()).toMatchObject({ phase: "drained", elapsedMs: 3500 });
  });

  test("--health-check-fail-delay: the listener drain starts first, health checks fail after the delay", async () => {
    const { envoy, run } = setup({ healthCheckFailDelayMs: 2000 });
    await run();
    expect(times(envoy, "drain_listeners")).toEqual([0]);
    expect(times(envoy, "fail")).toEqual([2000]);
  });
});

describe("POST /healthcheck/fail", () => {
  test("is retried with Contour's backoff: 200 ms, 1 s, 5 s", async () => {
    const { envoy, run } = setup();
    envoy.fault("fail", { kind: "http_status" }, 3);
    await run();
    expect(times(envoy, "fail")).toEqual([0, 200, 1200, 6200]);
    expect(envoy.live).toBe(false);
  });

  test("a count taken while Envoy passes health checks is never 'drained': fail them again, then count anew", async () => {
    const { clock, envoy, run } = setup();
    envoy.fault("fail", { kind: "http_status" }, 5);
    const outcome = await run();
    // Four attempts fail, so the first count (0 connections) is taken while Envoy is live: not done yet.
    const counts = envoy.calls.filter((c) => c.operation === "count" && !c.error);
    expect(counts[0]).toMatchObject({ total: 0, live: true });
    expect(outcome.phase).toBe("drained");
    expect(counts.at(-1)).toMatchObject({ total: 0, live: false });
    expect(envoy.failPosts).toBe(1);
    expect(clock.now()).toBeGreaterThan(6200);
  });
});

describe("Envoy restarted mid-drain", () => {
  test("health checks are failed again, once, and the drain follows the new Envoy's count", async () => {
    const { connectionsAt, clock, envoy, run } = setup({}, 5);
    clock.at(2500, () => envoy.restart(2));
    connectionsAt(5500, 0);
    const logs = captureLogs();
    const outcome = await run();
    expect(envoy.failPosts).toBe(2);
    expect(times(envoy, "fail")).toEqual([0, 2500]);
    expect(outcome).toMatchObject({ phase: "drained", reason: "threshold", elapsedMs: 5500 });
    expect(logs.filter((l) => l.msg.startsWith("Envoy is passing health checks"))).toHaveLength(1);
  });
});

describe("Envoy restarted mid-drain, listener-first order", () => {
  test("with --health-check-fail-delay, a restarted Envoy gets its listeners drained again too, not only its health checks failed", async () => {
    const { connectionsAt, clock, envoy, run } = setup({ healthCheckFailDelayMs: 1000 }, 5);
    clock.at(2500, () => envoy.restart(2));
    connectionsAt(4000, 0);
    await run();
    expect(times(envoy, "fail")).toEqual([1000, 2500]);
    expect(times(envoy, "drain_listeners")).toEqual([0, 2500]);
  });
});

describe("Envoy gone", () => {
  test("refusals from an Envoy that answered end the drain after --admin-unreachable-threshold in a row", async () => {
    const { clock, envoy, run } = setup({ adminUnreachableThreshold: 3 }, 3);
    clock.at(1500, () => envoy.exit());
    // Counts that fail keep --check-interval's pace: 1500, 2500, 3500.
    expect(await run()).toMatchObject({ phase: "drained", reason: "envoy_gone", openConnections: 3, elapsedMs: 3500 });
  });

  test("an address that never answered is not 'gone': it fails at --drain-timeout, naming the address", async () => {
    const { envoy, drain, run } = setup({ drainTimeoutMs: 10_000 });
    envoy.up = false;
    const logs = captureLogs();
    const outcome = await run();
    expect(outcome).toMatchObject({ phase: "failed", reason: "envoy_unreachable", elapsedMs: 10_000 });
    expect(times(envoy, "fail")).toEqual([0, 200, 1200, 6200]);
    expect(times(envoy, "count")).toEqual([6200, 7200, 8200, 9200]);
    expect(drain.snapshot.problem?.kind).toBe("unreachable");
    expect(logs.filter((l) => l.msg.includes("has never answered") && l.msg.includes("--admin-address"))).toHaveLength(1);
    expect(logs.at(-1)?.msg).toContain("never answered at memory-envoy");
  });

  test("a hook whose sidecar saw Envoy answer may conclude it is gone", async () => {
    const { envoy, run } = setup({ adminUnreachableThreshold: 2 });
    envoy.up = false;
    envoy.markAnswered();
    expect(await run()).toMatchObject({ phase: "drained", reason: "envoy_gone" });
  });

  test.each([
    ["HTTP 500", { kind: "http_status" }],
    ["a hung request", { kind: "hang" }],
  ] as const)("%s is not gone: polling goes on", async (_, fault) => {
    const { envoy, drain, run } = setup({ adminUnreachableThreshold: 1 });
    envoy.fault("count", fault, 4);
    const outcome = await run();
    expect(outcome.reason).toBe("threshold");
    expect(drain.snapshot.polls).toBe(5);
  });

  test("a refusal streak broken by another error starts again", async () => {
    const { envoy, clock, run } = setup({ adminUnreachableThreshold: 2 }, 1);
    clock.at(500, () => envoy.exit());
    clock.at(1500, () => {
      envoy.up = true;
      envoy.fault("count", { kind: "http_status" });
    });
    clock.at(2500, () => envoy.exit());
    // Refused at 500, HTTP 500 at 1500, refused at 2500 and 3500: without the reset it would end at 2500.
    expect(await run()).toMatchObject({ reason: "envoy_gone", elapsedMs: 3500 });
  });
});

describe("a slow or misbehaving admin API", () => {
  test("a hung poll costs one --admin-timeout and the loop keeps its pace", async () => {
    const { envoy, run } = setup({ checkIntervalMs: 1000 });
    envoy.fault("count", { kind: "hang" }, 2);
    await run();
    expect(times(envoy, "count")).toEqual([0, 3000, 6000]);
  });

  test("a slow answer within the timeout is used", async () => {
    const { envoy, run } = setup();
    envoy.fault("count", { kind: "slow", ms: 1500 });
    expect(await run()).toMatchObject({ reason: "threshold", elapsedMs: 1500 });
  });

  test.each(["malformed", "http_status", "network"] as const)("%s is a failed poll, never a count of 0", async (kind) => {
    const { envoy, drain, run } = setup();
    envoy.fault("count", { kind }, 3);
    const outcome = await run();
    expect(drain.snapshot.adminErrors[kind]).toBe(3);
    expect(outcome.elapsedMs).toBe(3000);
  });
});

describe("stats Envoy's stats_matcher excludes", () => {
  test("the problem is noted once, and the drain never reports drained", async () => {
    const { envoy, drain, run } = setup({ drainTimeoutMs: 20_000 });
    envoy.fault("count", { kind: "stats_missing" }, 1000);
    const logs = captureLogs();
    const outcome = await run();
    expect(outcome).toMatchObject({ phase: "timed_out", reason: "timeout", openConnections: undefined });
    expect(drain.snapshot.problem?.kind).toBe("stats_missing");
    expect(logs.filter((l) => l.msg.includes("injected stats_missing"))).toHaveLength(1);
  });
});

describe("--drain-timeout", () => {
  test("bounds the drain exactly, even with a hung call in flight", async () => {
    const { envoy, clock, run } = setup({ drainTimeoutMs: 2500 }, 4);
    envoy.fault("count", { kind: "hang" }, 10);
    const outcome = await run();
    expect(outcome).toMatchObject({ phase: "timed_out", elapsedMs: 2500 });
    expect(clock.now()).toBe(2500);
  });

  test("counts from the start of the drain delay", async () => {
    const { run } = setup({ drainDelayMs: 10_000, drainTimeoutMs: 3000 });
    expect(await run()).toMatchObject({ phase: "timed_out", elapsedMs: 3000 });
  });

  test("a time-out before any count says no count was read; after one, it names the listeners", async () => {
    let logs = captureLogs();
    await setup({ checkDelayMs: 60_000, drainTimeoutMs: 1000 }).run();
    expect(logs.at(-1)?.msg).toBe("drain timed out; no connection count was read");
    logs = captureLogs();
    await setup({ drainTimeoutMs: 1500 }, 2).run();
    expect(logs.at(-1)?.msg).toBe("drain timed out; connections still open: 0.0.0.0_8080=2");
  });
});

/** A load balancer that keeps sending a new connection every `everyMs` until `untilMs` (each one short: the count stays). */
function lagging(clock: VirtualClock, envoy: MemoryEnvoy, everyMs: number, untilMs: number) {
  for (let at = everyMs; at <= untilMs; at += everyMs)
    clock.at(at, () => {
      if (envoy.accepted !== undefined) envoy.accepted += 1;
    });
}

describe("--quiet-period: the drain waits for the load balancer to stop sending", () => {
  test("new connections hold the drain at 0 open; it ends one quiet period after the last, within 100 ms", async () => {
    const { clock, envoy, run } = setup({ quietPeriodMs: 2000 });
    lagging(clock, envoy, 250, 3000);
    const outcome = await run();
    expect(outcome).toMatchObject({ phase: "drained", reason: "threshold" });
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(5000);
    expect(outcome.elapsedMs).toBeLessThanOrEqual(5100);
  });

  test("a load balancer that stopped during --check-delay has already been quiet that long: the first count ends it", async () => {
    const { clock, envoy, run } = setup({ quietPeriodMs: 2000, checkDelayMs: 3000 });
    lagging(clock, envoy, 250, 500);
    expect(await run()).toMatchObject({ phase: "drained", elapsedMs: 3000 });
  });

  test("through a long --check-delay it counts quietly only in the delay's last quiet period, a few times", async () => {
    const { envoy, run } = setup({ quietPeriodMs: 2000, checkDelayMs: 60_000 });
    expect(await run()).toMatchObject({ phase: "drained", elapsedMs: 60_000 });
    const quietCounts = times(envoy, "count").filter((at) => at < 60_000);
    expect(quietCounts).toEqual([58_000, 58_500, 59_000, 59_500]);
  });

  test("--drain-timeout still ends it, and the time-out line says who was still sending, as text and as a field", async () => {
    const { clock, envoy, run } = setup({ quietPeriodMs: 2000, drainTimeoutMs: 4000 });
    lagging(clock, envoy, 250, 60_000);
    const logs = captureLogs();
    expect(await run()).toMatchObject({ phase: "timed_out", elapsedMs: 4000 });
    const last = logs.at(-1);
    expect(last?.msg).toMatch(/new connections were still arriving: [\d.]+ new connections\/s on 0\.0\.0\.0_8080/);
    expect(last?.fields.new_connections).toEqual({ "0.0.0.0_8080": expect.any(Number) });
  });

  test("counters Envoy does not report (stats_matcher): one warning naming the stat, then the count alone decides", async () => {
    const { envoy, run } = setup({ quietPeriodMs: 2000 });
    envoy.accepted = undefined;
    const logs = captureLogs();
    expect(await run()).toMatchObject({ phase: "drained", elapsedMs: 0 });
    expect(oneWarning(logs, "listener.<id>.downstream_cx_total")).toContain("include listener.<id>.downstream_cx_total in stats_matcher");
  });

  test("a counter that goes down (Envoy restarted) starts the quiet period again; it never ends the drain", async () => {
    const { clock, envoy, run } = setup({ quietPeriodMs: 2000 });
    clock.at(0, () => {
      envoy.accepted = 50;
    });
    clock.at(1500, () => {
      envoy.restart(0);
      envoy.live = false;
    });
    const outcome = await run();
    expect(outcome.phase).toBe("drained");
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(3500);
  });

  test("--quiet-connections tolerates a load balancer's health checks that reach a data-plane listener", async () => {
    const strict = setup({ quietPeriodMs: 2000, drainTimeoutMs: 10_000 });
    lagging(strict.clock, strict.envoy, 1000, 60_000);
    expect((await strict.run()).phase).toBe("timed_out");
    const tolerant = setup({ quietPeriodMs: 2000, quietConnections: 2, drainTimeoutMs: 10_000 });
    lagging(tolerant.clock, tolerant.envoy, 1000, 60_000);
    expect(await tolerant.run()).toMatchObject({ phase: "drained", elapsedMs: 2000 });
  });

  test("each reported count names the listeners holding connections and those still receiving new ones", async () => {
    const { connectionsAt, clock, envoy, run, polls } = setup({ quietPeriodMs: 1000, checkIntervalMs: 1000 }, 3);
    lagging(clock, envoy, 100, 1500);
    connectionsAt(2500, 0);
    await run();
    expect(Object.fromEntries(polls[0]?.byListener ?? [])).toEqual({ "0.0.0.0_8080": 3 });
    expect(polls[1]).toMatchObject({ newConnectionsOverMs: 1000 });
    expect(Object.fromEntries(polls[1]?.newConnections ?? [])).toEqual({ "0.0.0.0_8080": 10 });
    const logs = captureLogs();
    if (polls[1]) logPoll(polls[1]);
    expect(logs[0]?.msg).toBe("open connections; still receiving 10.0 new connections/s on 0.0.0.0_8080 (10)");
    expect(logs[0]?.fields).toMatchObject({ listeners: { "0.0.0.0_8080": 3 }, new_connections: { "0.0.0.0_8080": 10 } });
  });
});

describe("polling pace", () => {
  test("far from the threshold it keeps --check-interval; near it, ten counts a second", async () => {
    const { connectionsAt, envoy, run } = setup({ checkIntervalMs: 5000 }, 500);
    connectionsAt(9000, 4);
    connectionsAt(10_650, 0);
    const outcome = await run();
    const counts = times(envoy, "count");
    expect(counts.slice(0, 3)).toEqual([0, 5000, 10_000]);
    expect(counts[3]).toBe(10_100);
    expect(outcome.elapsedMs).toBe(10_700);
  });

  test("a slow count sets a slower pace: at most a tenth of the time goes to answering the drain", async () => {
    const { connectionsAt, envoy, run } = setup({ checkIntervalMs: 5000 }, 1);
    envoy.fault("count", { kind: "slow", ms: 30 }, 1000);
    connectionsAt(2000, 0);
    await run();
    const counts = times(envoy, "count");
    const gaps = counts.slice(1).map((at, i) => at - (counts[i] ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(300);
  });
});

describe("ending on traffic (the default of this program's own command lines)", () => {
  const traffic = (overrides: Partial<DrainSettings> = {}, connections = 0) =>
    setup({ countIdleConnections: false, longLivedBudgetMs: 5000, ...overrides }, connections);

  test("idle HTTP connections do not hold the drain; a request in flight does, until it is answered", async () => {
    const { clock, envoy, run, polls } = traffic({}, 5);
    envoy.requests = 2;
    clock.at(1500, () => {
      envoy.requests = 0;
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ phase: "drained", reason: "threshold", openConnections: 5 });
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(1500);
    expect(outcome.elapsedMs).toBeLessThanOrEqual(1600);
    expect(outcome.traffic).toMatchObject({ busy: 0, idle: 5, longLived: 0, nonHttp: 0 });
    expect(polls[0]?.traffic).toMatchObject({ busy: 2, idle: 3 });
  });

  test("connections that are not HTTP (TCP proxy) hold it as any connection does", async () => {
    const { clock, envoy, run } = traffic({ minOpenConnections: 0 }, 3);
    envoy.nonHttp = 2;
    clock.at(2500, () => {
      envoy.nonHttp = 0;
    });
    const outcome = await run();
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(2500);
    expect(outcome.elapsedMs).toBeLessThanOrEqual(2600);
  });

  test("upgraded connections hold it for --long-lived-budget, then it ends and says how many it leaves, where", async () => {
    const { envoy, run } = traffic({ longLivedBudgetMs: 5000 }, 3);
    envoy.upgrades = 2;
    envoy.requests = 0;
    const logs = captureLogs();
    const outcome = await run();
    expect(outcome).toMatchObject({ phase: "drained", reason: "long_lived" });
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(5000);
    expect(outcome.elapsedMs).toBeLessThanOrEqual(5100);
    expect(outcome.traffic?.byPrefix.get("ingress_http")).toEqual({ busy: 0, idle: 1, longLived: 2 });
    expect(oneWarning(logs, "long-lived")).toBe(
      "drain complete; 2 long-lived sessions left to be cut when Envoy exits (upgraded, or in flight for over 5s): ingress_http=2",
    );
  });

  test("with --long-lived-budget=0s they hold it until --drain-timeout", async () => {
    const { envoy, run } = traffic({ longLivedBudgetMs: 0, drainTimeoutMs: 8000 }, 1);
    envoy.upgrades = 1;
    expect(await run()).toMatchObject({ phase: "timed_out", elapsedMs: 8000 });
  });

  test("a request in flight for longer than the budget is long-lived; a request that arrived since is never cut by it", async () => {
    const old = traffic({ longLivedBudgetMs: 5000 }, 1);
    old.envoy.requests = 1;
    expect(await old.run()).toMatchObject({ reason: "long_lived", elapsedMs: 5000 });

    const { clock, envoy, run } = traffic({ longLivedBudgetMs: 5000 }, 2);
    envoy.requests = 1;
    clock.at(4000, () => {
      envoy.requests = 2;
      envoy.requestsArrived = (envoy.requestsArrived ?? 0) + 1;
    });
    // The new request is still in flight when the budget is spent: nothing is cut while it may be short.
    clock.at(7000, () => {
      envoy.requests = 1;
    });
    const outcome = await run();
    expect(outcome.reason).toBe("long_lived");
    // Only once no request has arrived for a whole budget can the one left be older than it.
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(9000);
    expect(outcome.elapsedMs).toBeLessThanOrEqual(9100);
  });

  test("new connections without requests (a load balancer's connect checks) do not break the quiet period; requests do", async () => {
    const checks = traffic({ quietPeriodMs: 2000, drainTimeoutMs: 20_000 });
    lagging(checks.clock, checks.envoy, 250, 60_000);
    expect(await checks.run()).toMatchObject({ phase: "drained", elapsedMs: 2000 });

    const { clock, envoy, run } = traffic({ quietPeriodMs: 2000, drainTimeoutMs: 20_000 });
    for (let at = 250; at <= 3000; at += 250)
      clock.at(at, () => {
        envoy.requestsArrived = (envoy.requestsArrived ?? 0) + 1;
      });
    const outcome = await run();
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(5000);
    expect(outcome.elapsedMs).toBeLessThanOrEqual(5100);
  });

  test("a request counter that goes down (Envoy restarted) starts the quiet period again; it never ends the drain", async () => {
    const { clock, envoy, run } = traffic({ quietPeriodMs: 2000 });
    envoy.requestsArrived = 80;
    clock.at(1500, () => {
      envoy.requestsArrived = 3;
    });
    const logs = captureLogs();
    const outcome = await run();
    expect(outcome.phase).toBe("drained");
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(3500);
    expect(oneWarning(logs, "counters went down")).toContain("the quiet period starts again");
  });

  test("request stats Envoy does not report (stats_matcher): one warning, then every open connection counts, as before", async () => {
    const { connectionsAt, envoy, run } = traffic({}, 3);
    envoy.requestStats = false;
    connectionsAt(2000, 0);
    const logs = captureLogs();
    const outcome = await run();
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(2000);
    expect(outcome.traffic).toBeUndefined();
    expect(oneWarning(logs, "http.<prefix>.downstream_rq_active")).toContain("every open connection holds the drain");
  });

  test("a time-out with nothing open says so, and what was still arriving, never 'connections still open'", async () => {
    const { clock, envoy, run } = traffic({ quietPeriodMs: 2000, drainTimeoutMs: 4000 });
    for (let at = 250; at <= 60_000; at += 250)
      clock.at(at, () => {
        envoy.requestsArrived = (envoy.requestsArrived ?? 0) + 1;
      });
    const logs = captureLogs();
    expect(await run()).toMatchObject({ phase: "timed_out", openConnections: 0 });
    expect(logs.at(-1)?.msg).toMatch(
      /^drain timed out; no connection open; traffic was still arriving: [\d.]+ arrivals\/s on ingress_http/,
    );
  });

  test("each poll line splits open connections into busy, idle, long-lived and non-HTTP, by HTTP prefix", async () => {
    const { clock, envoy, run, polls } = traffic({}, 6);
    Object.assign(envoy, { requests: 1, upgrades: 2, nonHttp: 1 });
    clock.at(500, () => Object.assign(envoy, { requests: 0, upgrades: 0, nonHttp: 0 }));
    await run();
    const logs = captureLogs();
    if (polls[0]) logPoll(polls[0]);
    expect(logs[0]?.msg).toBe("open connections: busy 1, idle 3, long-lived 2, non-HTTP 1");
    expect(logs[0]?.fields).toMatchObject({
      busy: 1,
      idle: 3,
      long_lived: 2,
      non_http: 1,
      http: { ingress_http: { busy: 1, idle: 3, long_lived: 2 } },
    });
  });
});
