/**
 * Ending on traffic against the fake admin API's live data plane: the stats it reads (requests in flight, upgrades,
 * health checks) and each end condition with real connections, which the fake drains as released Envoy does.
 */
import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { options as hookCommand } from "../src/cli/commands/shutdown.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { Drain } from "../src/drain/drain.ts";
import { parseAdminAddress } from "../src/envoy/address.ts";
import { createEnvoyAdmin } from "../src/envoy/client.ts";
import { countTraffic, NON_HTTP } from "../src/envoy/stats.ts";
import { openClient, openClients, rawRequest } from "./support/clients.ts";
import { drainSettings } from "./support/drain-settings.ts";
import { DATA_PREFIX, type FakeEnvoy, HEALTH_CHECK_PATH, HTTP2_PREFACE, STREAM_PATH } from "./support/fake-envoy.ts";
import { fakeEnvoy } from "./support/fixtures.ts";
import { captureLogs } from "./support/logs.ts";
import { onTeardown } from "./support/teardown.ts";

const IGNORE = readOptions(hookCommand, [], {}).admin.ignoreListeners;

function admin(fake: FakeEnvoy) {
  return createEnvoyAdmin({
    address: parseAdminAddress(fake.adminAddress),
    timeoutMs: 1000,
    connectionStat: "listener",
    ignoreListeners: IGNORE,
  });
}

/** A raw data-plane connection that sends `head` and records whether it is still open. */
async function rawConnection(port: number, head: string) {
  let received = "";
  let open = true;
  const socket: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, chunk) => {
        received += chunk.toString();
      },
      close: () => {
        open = false;
      },
      error: () => {
        open = false;
      },
    },
  });
  onTeardown(() => socket.end());
  if (head) socket.write(head);
  return {
    get open() {
      return open;
    },
    get received() {
      return received;
    },
  };
}

const upgradeHead = "GET /chat HTTP/1.1\r\nhost: app\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n";

describe("the traffic count", () => {
  test("one stats request; exclusions as the listener count's: admin, per-thread copies, Contour's and Envoy Gateway's own", () => {
    const body = [
      "http.admin.downstream_cx_active: 1",
      "http.admin.downstream_rq_active: 1",
      "http.eg-ready-http.downstream_rq_active: 3",
      "http.ingress_http.downstream_cx_active: 7",
      "http.ingress_http.downstream_cx_http1_active: 5",
      "http.ingress_http.downstream_cx_http2_active: 2",
      "http.ingress_http.downstream_cx_total: 40",
      "http.ingress_http.downstream_cx_upgrades_active: 1",
      "http.ingress_http.downstream_rq_active: 3",
      "http.ingress_http.downstream_rq_total: 120",
      "http.ingress_http.health_check.request_total: 20",
      "http.ingress_http.user_agent.ios.downstream_rq_active: 9",
      "http.stats.downstream_cx_active: 2",
      "http.stats.downstream_rq_active: 2",
      "listener.0.0.0.0_8002.downstream_cx_active: 2",
      "listener.0.0.0.0_8002.downstream_cx_total: 9",
      "listener.0.0.0.0_8080.downstream_cx_active: 7",
      "listener.0.0.0.0_8080.downstream_cx_total: 40",
      "listener.0.0.0.0_8080.worker_0.downstream_cx_active: 4",
      "listener.0.0.0.0_8080.worker_1.downstream_cx_active: 3",
      "listener.0.0.0.0_9443.downstream_cx_active: 2",
      "listener.0.0.0.0_9443.downstream_cx_total: 6",
      "listener.admin.downstream_cx_active: 1",
      "server.live: 0",
      "",
    ].join("\n");
    const count = countTraffic(body, IGNORE);
    expect(count.total).toBe(9);
    expect(count.traffic?.nonHttp).toBe(2);
    expect(Object.fromEntries(count.traffic?.byPrefix ?? [])).toEqual({
      ingress_http: { open: 7, requests: 2, upgrades: 1, http1: 5, http2: 2, http3: 0 },
    });
    // Requests without the health-check filter's; non-HTTP connections as listeners' minus HTTP's.
    expect(Object.fromEntries(count.traffic?.arrivals ?? [])).toEqual({ ingress_http: 100, [NON_HTTP]: 6 });
  });

  test("a left-out listener whose prefix is counted never hides a TCP proxy connection; one whose prefix is left out too is no phantom", () => {
    const lines = (readinessPrefix: string) =>
      [
        `http.${readinessPrefix}.downstream_cx_active: 1`,
        `http.${readinessPrefix}.downstream_rq_active: 0`,
        "listener.0.0.0.0_19001.downstream_cx_active: 1",
        "listener.0.0.0.0_9443.downstream_cx_active: 1",
        "listener.admin.downstream_cx_active: 1",
        "",
      ].join("\n");
    // A TCP proxy connection on 9443 and a probe on the left-out 19001, whose prefix `my-ready` is counted.
    expect(countTraffic(lines("my-ready"), IGNORE).traffic?.nonHttp).toBe(1);
    // The same probe under Envoy Gateway's own prefix: left out on both sides, it explains the left-out listener.
    expect(countTraffic(lines("eg-ready-http"), IGNORE).traffic?.nonHttp).toBe(1);
    const httpOnly =
      "http.ingress_http.downstream_cx_active: 2\nhttp.ingress_http.downstream_rq_active: 0\nhttp.stats.downstream_cx_active: 1\nlistener.0.0.0.0_8002.downstream_cx_active: 1\nlistener.0.0.0.0_8080.downstream_cx_active: 2\nlistener.admin.downstream_cx_active: 1\n";
    expect(countTraffic(httpOnly, IGNORE).traffic?.nonHttp).toBe(0);
  });

  test("without any downstream_rq_active (stats_matcher), there is no traffic part: the drain counts connections", () => {
    const count = countTraffic("listener.0.0.0.0_8080.downstream_cx_active: 3\nlistener.admin.downstream_cx_active: 1\n", IGNORE);
    expect(count.total).toBe(3);
    expect(count.traffic).toBeUndefined();
  });

  test("the fake's live data plane: requests in flight, upgrades, HTTP/2 and health checks as Envoy counts them", async () => {
    const fake = await fakeEnvoy({ mode: "live", responseDelayMs: 2000 });
    await openClients(fake.dataPort, 2);
    await rawConnection(fake.dataPort, upgradeHead);
    await rawConnection(fake.dataPort, `${HTTP2_PREFACE}GET / HTTP/1.1\r\nhost: app\r\n\r\n`);
    await rawRequest(fake.dataPort, `GET ${HEALTH_CHECK_PATH} HTTP/1.1`);
    await Bun.sleep(100);
    const count = await admin(fake).traffic();
    expect(count.traffic?.byPrefix.get(DATA_PREFIX)).toEqual({ open: 4, requests: 1, upgrades: 1, http1: 3, http2: 1, http3: 0 });
    // Five requests arrived; the health check is not one of them.
    expect(count.traffic?.arrivals?.get(DATA_PREFIX)).toBe(4);
  }, 10_000);
});

describe("the fake drains as released Envoy does", () => {
  test("after /healthcheck/fail an idle keep-alive connection stays open; its next response closes it", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    const [client] = await openClients(fake.dataPort, 1);
    await admin(fake).failHealthChecks();
    await Bun.sleep(200);
    expect(client?.isClosed).toBe(false);
    expect(await client?.request()).toContain("connection: close");
    await client?.closed;
  });

  test("an upgraded connection and a streaming response are never closed by a drain; stop() (SIGTERM) resets them", async () => {
    const fake = await fakeEnvoy({ mode: "live", drainTimeMs: 100 });
    const upgraded = await rawConnection(fake.dataPort, upgradeHead);
    const stream = await rawConnection(fake.dataPort, `GET ${STREAM_PATH} HTTP/1.1\r\nhost: app\r\n\r\n`);
    const envoy = admin(fake);
    await envoy.failHealthChecks();
    await envoy.drainListeners();
    await Bun.sleep(600);
    expect([upgraded.open, stream.open]).toEqual([true, true]);
    expect(stream.received).toContain("data\n");
    await fake.stop();
    await Bun.sleep(100);
    expect([upgraded.open, stream.open]).toEqual([false, false]);
  });

  test("a graceful listener drain closes connections at their responses gradually, over the drain time", async () => {
    const fake = await fakeEnvoy({ mode: "live", drainTimeMs: 2000 });
    const clients = await openClients(fake.dataPort, 40);
    await admin(fake).drainListeners();
    const closedAt = async () =>
      (await Promise.all(clients.map((c) => (c.isClosed ? "" : c.request())))).filter((r) => r.includes("connection: close")).length;
    await Bun.sleep(300);
    const early = await closedAt();
    await Bun.sleep(1900);
    const late = await closedAt();
    expect(early).toBeLessThan(30);
    expect(early + late).toBe(40);
  });
});

describe("drains that end on traffic, on the fake's live data plane", () => {
  const settings = {
    countIdleConnections: false,
    checkIntervalMs: 100,
    quietPeriodMs: 500,
    longLivedBudgetMs: 1500,
    drainTimeoutMs: 10_000,
  };

  test("idle keep-alive connections do not hold it; a request in flight does, until answered", async () => {
    const fake = await fakeEnvoy({ mode: "live", responseDelayMs: 1200 });
    const idle = await openClients(fake.dataPort, 3);
    const busy = await openClient(fake.dataPort);
    const answered = busy.request();
    const started = performance.now();
    const outcome = await new Drain(drainSettings(settings), admin(fake), { onPoll: () => {} }).start();
    expect(outcome).toMatchObject({ phase: "drained", reason: "threshold" });
    expect(await answered).toContain("connection: close");
    expect(performance.now() - started).toBeGreaterThan(1000);
    expect(idle.map((c) => c.isClosed)).toEqual([false, false, false]);
    expect(outcome.traffic).toMatchObject({ busy: 0, idle: 3 });
  });

  test("a WebSocket holds it for the long-lived budget; then it ends, naming what it leaves, the socket still open", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    const upgraded = await rawConnection(fake.dataPort, upgradeHead);
    await Bun.sleep(50);
    const logs = captureLogs();
    const outcome = await new Drain(drainSettings(settings), admin(fake), { onPoll: () => {} }).start();
    expect(outcome).toMatchObject({ phase: "drained", reason: "long_lived" });
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(1500);
    expect(outcome.traffic?.byPrefix.get(DATA_PREFIX)?.longLived).toBe(1);
    expect(logs.some((line) => line.msg.includes(`1 long-lived session left to be cut when Envoy exits`))).toBe(true);
    expect(upgraded.open).toBe(true);
  });

  test("health checks on the data-plane port (TCP connects, GET /healthz answered 503) do not keep the quiet period from starting", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    let checking = true;
    const statuses: string[] = [];
    const checker = (async () => {
      while (checking) {
        (await rawConnection(fake.dataPort, "")).open;
        statuses.push((await rawRequest(fake.dataPort, `GET ${HEALTH_CHECK_PATH} HTTP/1.1`)).slice(9, 12));
        await Bun.sleep(100);
      }
    })();
    const outcome = await new Drain(drainSettings(settings), admin(fake), { onPoll: () => {} }).start();
    checking = false;
    await checker;
    expect(outcome).toMatchObject({ phase: "drained", reason: "threshold" });
    expect(outcome.elapsedMs).toBeLessThan(2000);
    expect(statuses).toContain("503");
  });
});
