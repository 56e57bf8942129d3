/** The Envoy wing against the fake admin API: the client's answers and errors, and the pure stats parsers. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { options as hookCommand } from "../src/cli/commands/shutdown.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { parseAdminAddress } from "../src/envoy/address.ts";
import { AdminError, type AdminErrorKind } from "../src/envoy/admin-error.ts";
import { createEnvoyAdmin, describeMissingStats } from "../src/envoy/client.ts";
import { type ConnectionStat, countHttpConnections, countListenerConnections } from "../src/envoy/stats.ts";
import { MAIN_LISTENER, STATS_LISTENER, TCP_LISTENER } from "./support/fake-envoy.ts";
import { fakeEnvoy, tempDir } from "./support/fixtures.ts";
import { onTeardown } from "./support/teardown.ts";

const DEFAULT_IGNORE = readOptions(hookCommand, [], {}).admin.ignoreListeners;

/** A client for `address` with the defaults, as the drain makes it. */
function client(address: string, { connectionStat = "listener" as ConnectionStat, timeoutMs = 1000 } = {}) {
  return createEnvoyAdmin({ address: parseAdminAddress(address), timeoutMs, connectionStat, ignoreListeners: DEFAULT_IGNORE });
}

/** The AdminError a call rejects with. */
async function adminError(call: Promise<unknown>): Promise<AdminError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof AdminError)) throw new Error(`expected an AdminError, got ${String(error)}`);
  return error;
}

describe("counting open connections", () => {
  test("sums every listener once, TCP included, without admin, workers or the stats listener", async () => {
    const fake = await fakeEnvoy({ concurrency: 4, connections: { [MAIN_LISTENER]: 7, [TCP_LISTENER]: 2 } });
    const result = await client(fake.adminAddress).openConnections();
    expect(result.total).toBe(9);
    expect(Object.fromEntries(result.byListener)).toEqual({ [MAIN_LISTENER]: 7, [TCP_LISTENER]: 2 });
    expect(result.live).toBe(true);
  });

  test("reports server.live=0 once health checks fail", async () => {
    const fake = await fakeEnvoy({ healthCheckFailed: true });
    expect((await client(fake.adminAddress).openConnections()).live).toBe(false);
  });

  test("http: sums HTTP connection managers except admin and stats, as Contour does", async () => {
    const fake = await fakeEnvoy({ connections: { [MAIN_LISTENER]: 5, [TCP_LISTENER]: 3, [STATS_LISTENER]: 2 } });
    const result = await client(fake.adminAddress, { connectionStat: "http" }).openConnections();
    expect(Object.fromEntries(result.byListener)).toEqual({ ingress_http: 5 });
    expect(result.total).toBe(5);
  });

  test("over a Unix socket", async () => {
    const socket = join(tempDir(), "admin.sock");
    const fake = await fakeEnvoy({ connections: 3, unixSocket: socket });
    expect((await client(socket).openConnections()).total).toBe(3);
    expect(fake.calls("/stats")).toHaveLength(1);
  });
});

describe("stats excluded by Envoy's stats_matcher", () => {
  test("a well-formed answer without the counted gauges is stats_missing, naming stats_matcher and the stats", async () => {
    const fake = await fakeEnvoy({ connections: 2, excludeStats: /downstream_cx_active$/ });
    const error = await adminError(client(fake.adminAddress).openConnections());
    expect(error.kind).toBe("stats_missing");
    expect(error.message).toContain("stats_matcher");
    expect(error.message).toContain("listener.<id>.downstream_cx_active");
  });

  test("the hint says when the other --connection-stat finds its stats", async () => {
    const fake = await fakeEnvoy({ connections: 2, excludeStats: /^listener\./ });
    const admin = client(fake.adminAddress);
    const message = await describeMissingStats(admin, await adminError(admin.openConnections()));
    expect(message).toContain("--connection-stat=http counts them");
    const http = client(fake.adminAddress, { connectionStat: "http" });
    expect((await http.openConnections()).total).toBe(2);
  });
});

describe("answers that are errors, never counts", () => {
  test("nothing listening is unreachable and names the address; the address has not answered", async () => {
    const fake = await fakeEnvoy();
    fake.stopAdmin();
    const admin = client(fake.adminAddress);
    const error = await adminError(admin.openConnections());
    expect(error.kind).toBe("unreachable");
    expect(error.message).toContain(`connection refused at ${fake.adminAddress}`);
    expect(admin.answered).toBe(false);
  });

  test("a missing Unix socket says so, not 'connection refused'", async () => {
    const socket = join(tempDir(), "missing.sock");
    const error = await adminError(client(socket).failHealthChecks());
    expect(error.kind).toBe("unreachable");
    expect(error.message).toContain(`no Unix socket accepts connections at ${socket}`);
    expect(error.message).not.toContain("connection refused");
  });

  test("an answer that is not HTTP says so in this program's words, not the runtime's", async () => {
    const garbage = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (socket) => void socket.end("\u0000 not HTTP at all\r\n\r\n") },
    });
    onTeardown(() => garbage.stop(true));
    const error = await adminError(client(`127.0.0.1:${garbage.port}`).failHealthChecks());
    expect(error.message).toBe("POST /healthcheck/fail: the answer is not HTTP (Malformed_HTTP_Response)");
  });

  test("a redirect is never followed: it is an http_status error naming where it pointed", async () => {
    const other = await fakeEnvoy({ connections: 0 });
    const fake = await fakeEnvoy({ connections: 5 });
    fake.setFault("/stats", { kind: "redirect", location: `http://${other.adminAddress}/stats?format=json` });
    const admin = client(fake.adminAddress);
    const error = await adminError(admin.openConnections());
    expect(error.kind).toBe("http_status");
    expect(error.message).toContain("HTTP 302 redirect to");
    expect(other.calls("/stats")).toHaveLength(0);
    expect(admin.answered).toBe(true);
  });

  test("--admin-timeout bounds the whole exchange: a body sent a byte at a time times out", async () => {
    const fake = await fakeEnvoy({ connections: 1 });
    fake.setFault("/stats", { kind: "trickle", intervalMs: 50 });
    const started = performance.now();
    const error = await adminError(client(fake.adminAddress, { timeoutMs: 300 }).openConnections());
    expect(error.kind).toBe("timeout");
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("a hung request times out", async () => {
    const fake = await fakeEnvoy();
    fake.setFault("/healthcheck/fail", { kind: "hang" });
    expect((await adminError(client(fake.adminAddress, { timeoutMs: 200 }).failHealthChecks())).kind).toBe("timeout");
  });

  test("HTTP 503 is http_status, with Envoy's body", async () => {
    const fake = await fakeEnvoy();
    fake.setFault("/healthcheck/fail", { kind: "status", status: 503, body: "overloaded\n" });
    const error = await adminError(client(fake.adminAddress).failHealthChecks());
    expect(error.kind).toBe("http_status");
    expect(error.message).toBe("POST /healthcheck/fail: HTTP 503 overloaded");
  });

  test("a POST that does not answer OK is malformed", async () => {
    const fake = await fakeEnvoy();
    fake.setFault("/healthcheck/fail", { kind: "body", body: "sure\n", contentType: "text/plain" });
    expect((await adminError(client(fake.adminAddress).failHealthChecks())).kind).toBe("malformed");
  });

  test("/ready and /server_info read the state; the heal relies on them", async () => {
    const fake = await fakeEnvoy({ healthCheckFailed: true });
    const admin = client(fake.adminAddress);
    expect(await admin.ready()).toBe("DRAINING");
    expect(await admin.serverState()).toBe("DRAINING");
    await admin.passHealthChecks();
    expect(await admin.ready()).toBe("LIVE");
  });
});

describe("parsing stats bodies (pure)", () => {
  /** Envoy's text format: one `name: value` line per stat, each ending in a newline. */
  const textBody = (lines: [string, number | string][]) => lines.map(([name, value]) => `${name}: ${value}\n`).join("");

  test("listener ids keep their dots, including IPv6 forms; per-thread copies and admin are skipped", () => {
    const body = textBody([
      ["listener.[__]_8443.downstream_cx_active", 4],
      ["listener.[__]_8443.worker_0.downstream_cx_active", 4],
      ["listener.10.0.0.1_8080.downstream_cx_active", 1],
      ["listener.10.0.0.1_8080.main_thread.downstream_cx_active", 1],
      ["listener.admin.downstream_cx_active", 1],
      ["server.live", 0],
    ]);
    const count = countListenerConnections(body, []);
    expect(Object.fromEntries(count.byListener)).toEqual({ "[__]_8443": 4, "10.0.0.1_8080": 1 });
    expect(count).toMatchObject({ total: 5, live: false });
  });

  test("a listener whose id ends like a thread name is still a listener; --ignore-listeners applies to ids", () => {
    const body = textBody([
      ["listener.0.0.0.0_8080.downstream_cx_active", 2],
      ["listener.worker_x.downstream_cx_active", 3],
      ["listener.0.0.0.0_19001.downstream_cx_active", 5],
      ["listener.admin.downstream_cx_active", 1],
    ]);
    expect(countListenerConnections(body, [/_19001$/]).total).toBe(5);
  });

  test("values printed in exponent form still count", () => {
    const body = textBody([
      ["listener.0.0.0.0_80.downstream_cx_active", "1.23457e+06"],
      ["listener.admin.downstream_cx_active", 1],
    ]);
    expect(countListenerConnections(body, []).total).toBe(1_234_570);
  });

  const BAD_BODIES: [what: string, body: string, kind: AdminErrorKind][] = [
    ["HTML", "<html>oops</html>", "malformed"],
    ["JSON", '{"stats":[{"name":"listener.admin.downstream_cx_active","value":1}]}', "malformed"],
    ["garbage", "\u0000\u00ffnot stats at all", "malformed"],
    ["an empty body (no gauge at all, not even admin's)", "", "stats_missing"],
    // Text stats have no end marker: an answer cut short at a line may have lost the listeners still open.
    [
      "a body cut short: listeners but not the admin's, which Envoy always reports",
      textBody([
        ["listener.0.0.0.0_19001.downstream_cx_active", 1],
        ["listener.0.0.0.0_8080.downstream_cx_active", 0],
      ]),
      "malformed",
    ],
    [
      "a non-numeric value",
      textBody([
        ["listener.admin.downstream_cx_active", 1],
        ["listener.x_1.downstream_cx_active", "three"],
      ]),
      "malformed",
    ],
    [
      "a negative value",
      textBody([
        ["listener.admin.downstream_cx_active", 1],
        ["listener.x_1.downstream_cx_active", -1],
      ]),
      "malformed",
    ],
    ["a missing value", "listener.admin.downstream_cx_active: \n", "malformed"],
    ["a space before the colon", "listener.admin.downstream_cx_active: 1\nlistener.x_1.downstream_cx_active : 4\n", "malformed"],
  ];
  test.each(BAD_BODIES)("%s is an error, never a count of 0", (_, body, kind) => {
    let thrown: unknown;
    try {
      countListenerConnections(body, []);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AdminError);
    expect((thrown as AdminError).kind).toBe(kind);
  });

  test("accepted-connection counters: the same exclusions as the count (admin, per-thread, ignored), listeners at 0 open kept", () => {
    const body = textBody([
      ["listener.0.0.0.0_8080.downstream_cx_active", 0],
      ["listener.0.0.0.0_8080.downstream_cx_total", 120],
      ["listener.0.0.0.0_8080.worker_0.downstream_cx_total", 60],
      ["listener.0.0.0.0_8080.worker_1.downstream_cx_total", 60],
      ["listener.0.0.0.0_19001.downstream_cx_total", 9],
      ["listener.admin.downstream_cx_active", 1],
      ["listener.admin.downstream_cx_total", 4000],
      ["listener.admin.main_thread.downstream_cx_total", 4000],
    ]);
    const count = countListenerConnections(body, [/_19001$/]);
    expect(count.total).toBe(0);
    expect(Object.fromEntries(count.accepted ?? [])).toEqual({ "0.0.0.0_8080": 120 });
  });

  test("no counter at all (stats_matcher keeps only the gauges) is no accepted map, not an error", () => {
    const body = textBody([
      ["listener.0.0.0.0_8080.downstream_cx_active", 2],
      ["listener.admin.downstream_cx_active", 1],
    ]);
    expect(countListenerConnections(body, []).accepted).toBeUndefined();
  });

  test("the HTTP count reads envoy_http_downstream_cx_total by prefix, skipping admin and stats prefixes", () => {
    const body = [
      "# TYPE envoy_http_downstream_cx_total counter",
      'envoy_http_downstream_cx_total{envoy_http_conn_manager_prefix="admin"} 300',
      'envoy_http_downstream_cx_total{envoy_http_conn_manager_prefix="ingress_http"} 42',
      "",
      "# TYPE envoy_http_downstream_cx_active gauge",
      'envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="admin"} 1',
      'envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="ingress_http"} 3',
      "",
    ].join("\n");
    const count = countHttpConnections(body);
    expect(count.total).toBe(3);
    expect(Object.fromEntries(count.accepted ?? [])).toEqual({ ingress_http: 42 });
  });

  test("a Prometheus body that is not the exposition format, or lacks the HTTP gauges, is an error", () => {
    expect(() => countHttpConnections('{"stats":[]}')).toThrow(AdminError);
    expect(() => countHttpConnections("# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n\n")).toThrow("stats_matcher");
    const cutShort = 'envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="ingress_http"} 0\n';
    expect(() => countHttpConnections(cutShort)).toThrow("it was cut short");
  });
});
