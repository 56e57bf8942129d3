import { afterEach, describe, expect, test } from "bun:test";
import { AdminError, createAdminClient } from "../src/admin-client.ts";
import { loadConfig } from "../src/config.ts";
import { connectionStatsPath, countHttpConnections, countListenerConnections } from "../src/connections.ts";
import { type FakeEnvoy, MAIN_LISTENER, STATS_LISTENER, startFakeEnvoy, TCP_LISTENER } from "./support/fake-envoy.ts";

const DEFAULT_IGNORE = loadConfig({}, {}).ignoreListeners;
let fake: FakeEnvoy | undefined;
afterEach(async () => {
  await fake?.stop();
  fake = undefined;
});

/** Asks the fake exactly what the drain asks, and counts it. */
async function count(stat: "listener" | "http") {
  const admin = createAdminClient({ address: { baseURL: `http://${fake?.adminAddress}`, display: "fake" }, timeoutMs: 1000 });
  const body = await admin.stats(connectionStatsPath(stat));
  return stat === "listener" ? countListenerConnections(body, DEFAULT_IGNORE) : countHttpConnections(body);
}

describe("counting from Envoy's JSON stats", () => {
  test("sums every listener once, TCP included, without admin, workers or the stats listener", async () => {
    fake = await startFakeEnvoy({ concurrency: 4, connections: { [MAIN_LISTENER]: 7, [TCP_LISTENER]: 2 } });
    const result = await count("listener");
    expect(result.total).toBe(9);
    expect(Object.fromEntries(result.byListener)).toEqual({ [MAIN_LISTENER]: 7, [TCP_LISTENER]: 2 });
    expect(result.live).toBe(true);
  });

  test("reports server.live=0 once health checks fail", async () => {
    fake = await startFakeEnvoy({ healthCheckFailed: true });
    expect((await count("listener")).live).toBe(false);
  });

  test("listener ids keep their dots, including IPv6 forms", () => {
    const body = JSON.stringify({
      stats: [
        { name: "listener.[__]_8443.downstream_cx_active", value: 4 },
        { name: "listener.[__]_8443.worker_0.downstream_cx_active", value: 4 },
        { name: "listener.10.0.0.1_8080.downstream_cx_active", value: 1 },
        { name: "listener.admin.downstream_cx_active", value: 1 },
        { histograms: { supported_quantiles: [0], computed_quantiles: [] } },
      ],
    });
    expect(Object.fromEntries(countListenerConnections(body, []).byListener)).toEqual({ "[__]_8443": 4, "10.0.0.1_8080": 1 });
  });

  test("values printed in exponent form still count", () => {
    const body =
      '{"stats":[{"name":"listener.0.0.0.0_80.downstream_cx_active","value":1.23457e+06},{"name":"listener.admin.downstream_cx_active","value":1}]}';
    expect(countListenerConnections(body, []).total).toBe(1_234_570);
  });

  test.each([
    ["not JSON", "<html>oops</html>"],
    ["no stats array", '{"status":"ok"}'],
    ["an empty list (no admin listener)", '{"stats":[]}'],
    [
      "a non-numeric value",
      '{"stats":[{"name":"listener.admin.downstream_cx_active","value":1},{"name":"listener.x_1.downstream_cx_active","value":"3"}]}',
    ],
    [
      "a negative value",
      '{"stats":[{"name":"listener.admin.downstream_cx_active","value":1},{"name":"listener.x_1.downstream_cx_active","value":-1}]}',
    ],
    ["null", "null"],
  ])("%s is an error, never a count of 0", (_, body) => {
    expect(() => countListenerConnections(body, [])).toThrow(AdminError);
  });
});

describe("counting from Prometheus output (--connection-stat=http)", () => {
  test("sums HTTP connection managers except admin and stats, as Contour does", async () => {
    fake = await startFakeEnvoy({ connections: { [MAIN_LISTENER]: 5, [TCP_LISTENER]: 3, [STATS_LISTENER]: 2 } });
    const result = await count("http");
    expect(Object.fromEntries(result.byListener)).toEqual({ ingress_http: 5 });
    expect(result.total).toBe(5);
  });

  test("a body that is not the exposition format is an error", () => {
    expect(() => countHttpConnections('{"stats":[]}')).toThrow(AdminError);
    expect(() => countHttpConnections("# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n\n")).toThrow("admin");
  });
});
