/** Fault injection: each case is a failure operators hit with other shutdown managers (issue 3). */
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { rawRequest } from "./support/clients.ts";
import { fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";


const status = async (url: string) => (await fetch(`${url}/status`)).json() as Promise<Record<string, unknown>>;
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** Resolves true if `promise` settles within `ms`, false otherwise (without failing). */
async function settlesWithin(ms: number, promise: Promise<unknown>): Promise<boolean> {
  return within(
    ms,
    promise.then(() => true),
  ).catch(() => false);
}

describe("1. a drain left behind by a sidecar restarted alone", () => {
  test("is undone on start: /healthcheck/ok, Envoy LIVE again, counted as a heal", async () => {
    const fake = await fakeEnvoy({ healthCheckFailed: true });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    await manager.waitForLog((line) => line.msg === "Envoy is LIVE again");
    expect(fake.isHealthCheckFailed).toBe(false);
    expect(fake.calls("/healthcheck/ok", "POST")).toHaveLength(1);
    expect((await status(manager.url)).heals).toBe(1);
  });

  test("is left alone with --no-heal-on-start", async () => {
    const fake = await fakeEnvoy({ healthCheckFailed: true });
    const manager = await startManager([...fastDrain(fake.adminAddress).args, "--no-heal-on-start"]);
    await Bun.sleep(300);
    expect(fake.isHealthCheckFailed).toBe(true);
    expect(fake.calls("/healthcheck/ok")).toHaveLength(0);
    expect((await status(manager.url)).heals).toBe(0);
  });

  test("a drain this process started is never undone, even when the state check is slow", async () => {
    const fake = await fakeEnvoy({ connections: 1 });
    fake.setFault("/server_info", { kind: "delay", ms: 500 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const shutdown = fetch(`${manager.url}/shutdown`);
    await Bun.sleep(900);
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(1);
    expect(fake.calls("/healthcheck/ok")).toHaveLength(0);
    expect(fake.isHealthCheckFailed).toBe(true);
    fake.setConnections(0);
    expect((await within(5000, shutdown)).status).toBe(200);
  });
});

describe("2. Envoy gone", () => {
  test("refused connections end the drain after --admin-unreachable-threshold polls", async () => {
    const fake = await fakeEnvoy({ connections: 3 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const shutdown = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => line.msg === "open connections");
    fake.stopAdmin();
    const response = await within(5000, shutdown, "/shutdown after Envoy exited");
    expect(response.status).toBe(200);
    expect((await status(manager.url)).reason).toBe("envoy_gone");
  });

  test("an Envoy that was never there does not hold the pod", async () => {
    const fake = await fakeEnvoy();
    fake.stopAdmin();
    const exec = spawnCli(["shutdown", "--serve-port", "0", ...fastDrain(fake.adminAddress).args]);
    expect(await within(10_000, exec.exited)).toBe(0);
  });

  test.each([
    ["HTTP 500", { kind: "status", status: 500 }],
    ["a hung request", { kind: "hang" }],
  ] as const)("%s is not gone: polling goes on", async (_, fault) => {
    const fake = await fakeEnvoy({ connections: 0 });
    fake.setFault("/stats", fault);
    const { args } = fastDrain(fake.adminAddress, ["--admin-timeout", "200ms", "--admin-unreachable-threshold", "2"]);
    const manager = await startManager(args);
    const shutdown = fetch(`${manager.url}/shutdown`);
    expect(await settlesWithin(1500, shutdown)).toBe(false);
    expect(fake.calls("/stats").length).toBeGreaterThanOrEqual(3);
    fake.setFault("/stats", undefined);
    expect((await within(3000, shutdown)).status).toBe(200);
    expect((await status(manager.url)).reason).toBe("threshold");
  });
});

describe("3. a slow or misbehaving admin API", () => {
  test("a hung poll times out after --admin-timeout and the loop keeps its pace", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    fake.setFault("/stats", { kind: "hang" });
    const manager = await startManager(fastDrain(fake.adminAddress, ["--admin-timeout", "300ms"]).args);
    void fetch(`${manager.url}/shutdown`).catch(() => "the manager is stopped after the test");
    await Bun.sleep(2000);
    // Each poll costs at most the timeout plus the interval: about 400 ms, so 4 or 5 in 2 s.
    expect(fake.calls("/stats").length).toBeGreaterThanOrEqual(3);
    expect(((await status(manager.url)).admin_errors as Record<string, number>).timeout).toBeGreaterThanOrEqual(3);
  });

  test("a slow answer within the timeout is used", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    fake.setFault("/stats", { kind: "delay", ms: 300 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    expect((await within(5000, fetch(`${manager.url}/shutdown`))).status).toBe(200);
  });

  test.each([
    ["garbage", { kind: "body", body: "\u0000\u00ffnot json at all", contentType: "application/octet-stream" }],
    ["JSON of the wrong shape", { kind: "body", body: '{"stats":{"listener.0.0.0.0_8080.downstream_cx_active":0}}' }],
    ["an empty stats list", { kind: "body", body: '{"stats":[]}' }],
  ] as const)("%s is a failed poll, never a count of 0", async (_, fault) => {
    const fake = await fakeEnvoy({ connections: 0 });
    fake.setFault("/stats", fault);
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const shutdown = fetch(`${manager.url}/shutdown`);
    expect(await settlesWithin(1000, shutdown)).toBe(false);
    expect(((await status(manager.url)).admin_errors as Record<string, number>).malformed).toBeGreaterThanOrEqual(3);
    fake.setFault("/stats", undefined);
    expect((await within(3000, shutdown)).status).toBe(200);
  });

  test("/healthcheck/fail answering 503 is retried with backoff", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    fake.setFault("/healthcheck/fail", { kind: "status", status: 503 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const shutdown = fetch(`${manager.url}/shutdown`);
    await Bun.sleep(1400);
    fake.setFault("/healthcheck/fail", undefined);
    expect((await within(8000, shutdown)).status).toBe(200);
    const attempts = fake.calls("/healthcheck/fail").map((r) => r.at);
    // Three refused attempts 200 ms and 1 s apart; the fourth, 5 s later, succeeds.
    expect(attempts).toHaveLength(4);
    expect((attempts[1] ?? 0) - (attempts[0] ?? 0)).toBeGreaterThanOrEqual(180);
    expect((attempts[2] ?? 0) - (attempts[1] ?? 0)).toBeGreaterThanOrEqual(950);
    expect((attempts[3] ?? 0) - (attempts[2] ?? 0)).toBeGreaterThanOrEqual(4900);
    expect(fake.isHealthCheckFailed).toBe(true);
  });
});

describe("4. Envoy restarted mid-drain", () => {
  test("health checks are failed again, once, and the drain follows the new Envoy", async () => {
    const fake = await fakeEnvoy({ connections: 5 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const shutdown = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => line.open_connections === 5);
    fake.restart({ "0.0.0.0_8080": 2 });
    await manager.waitForLog((line) => String(line.msg).startsWith("Envoy is passing health checks again"));
    await Bun.sleep(400);
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(2);
    expect(fake.isHealthCheckFailed).toBe(true);
    expect(await settlesWithin(200, shutdown)).toBe(false);
    fake.setConnections(0);
    expect((await within(3000, shutdown)).status).toBe(200);
  });
});

describe("5. waiters that go away", () => {
  test("the drain goes on for the others, and nothing is left behind", async () => {
    const fake = await fakeEnvoy({ connections: 1 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    await fetch(`${manager.url}/healthz`);
    const fdsBefore = fdCount(manager.proc.pid);
    const leaving = Array.from({ length: 10 }, () => new AbortController());
    const gone = leaving.map((controller) => fetch(`${manager.url}/shutdown`, { signal: controller.signal }).catch(() => "aborted"));
    const staying = fetch(`${manager.url}/shutdown`);
    await Bun.sleep(300);
    expect((await status(manager.url)).waiters).toBe(11);
    for (const controller of leaving) controller.abort();
    expect(await Promise.all(gone)).toEqual(Array(10).fill("aborted"));
    await Bun.sleep(200);
    expect((await status(manager.url)).waiters).toBe(1);
    expect((await status(manager.url)).phase).toBe("draining");
    fake.setConnections(0);
    expect((await within(3000, staying)).status).toBe(200);
    await Bun.sleep(200);
    expect((await status(manager.url)).waiters).toBe(0);
    // The aborted requests' sockets are closed: the manager holds no more descriptors than before.
    expect(fdCount(manager.proc.pid)).toBeLessThanOrEqual(fdsBefore + 2);
  });

  test("the exec command still completes when a kubelet gives up on /shutdown", async () => {
    const fake = await fakeEnvoy({ connections: 1, timeline: [{ afterFailMs: 800, connections: 0 }] });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const kubelet = new AbortController();
    const abandoned = fetch(`${manager.url}/shutdown`, { signal: kubelet.signal }).catch(() => "aborted");
    const exec = spawnCli(["shutdown", ...fastDrain(fake.adminAddress).args, "--serve-port", String(manager.port)]);
    await Bun.sleep(200);
    kubelet.abort();
    expect(await abandoned).toBe("aborted");
    expect(await within(5000, exec.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });
});

describe("6. a drain by anyone on the network", () => {
  const TOKEN = "s3cret-token-of-some-length";

  test("without the bearer token /shutdown is 401 and starts nothing; /healthz stays open", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const manager = await startManager([...fastDrain(fake.adminAddress).args, "--shutdown-token", TOKEN]);
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer wrong" },
      { authorization: TOKEN },
      { authorization: `Bearer ${TOKEN}x` },
    ]) {
      const response = await fetch(`${manager.url}/shutdown`, { method: "POST", headers });
      expect(response.status).toBe(401);
    }
    expect((await fetch(`${manager.url}/healthz`)).status).toBe(200);
    await Bun.sleep(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    expect((await status(manager.url)).phase).toBe("idle");
    const ok = await fetch(`${manager.url}/shutdown`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
  });

  test("the exec command sends the token from its environment", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const env = { ENVOY_SHUTDOWN_SHUTDOWN_TOKEN: TOKEN };
    const manager = await startManager(fastDrain(fake.adminAddress).args, { env });
    const exec = spawnCli(["shutdown", ...fastDrain(fake.adminAddress).args, "--serve-port", String(manager.port)], { env });
    expect(await within(5000, exec.exited)).toBe(0);
    expect(exec.lines.some((line) => line.msg === "joined the shutdown-manager's drain")).toBe(true);
  });
});

describe("7. hostile requests to the sidecar", () => {
  test("oversized headers and bodies are refused, and start nothing", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const bigHeader = await fetch(`${manager.url}/shutdown`, { headers: { "x-filler": "a".repeat(64 * 1024) } });
    expect(bigHeader.status).toBe(431);
    const bigBody = await fetch(`${manager.url}/shutdown`, { method: "POST", body: "a".repeat(64 * 1024) });
    expect(bigBody.status).toBe(413);
    await Bun.sleep(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
  });

  test("idle and slow connections and a /shutdown flood: /healthz keeps answering and the drain completes", async () => {
    const fake = await fakeEnvoy({ connections: 1 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const port = manager.port;
    const sockets = await Promise.all(
      Array.from({ length: 2000 }, () => Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })),
    );
    // Slow clients: a request head trickled out one byte at a time.
    const slow = sockets.slice(0, 50);
    for (const socket of slow) socket.write("GET /healthz HTTP/1.1\r\n");
    const trickle = setInterval(() => {
      for (const socket of slow) socket.write("x");
    }, 50);
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
    clearInterval(trickle);
    for (const socket of sockets) socket.end();
    expect(statuses.filter((s) => s === "200")).toHaveLength(500);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    console.log(`/healthz under 2000 idle + 50 slow connections and 500 waiters: max ${Math.max(...latencies).toFixed(1)} ms`);
  });
});

describe("8. signals mid-drain", () => {
  test("SIGTERM finishes the drain for the current waiters, then exits 0", async () => {
    const fake = await fakeEnvoy({ connections: 2 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const waiter = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => line.msg === "open connections");
    manager.proc.kill("SIGTERM");
    await manager.waitForLog((line) => String(line.msg).includes("finishing the drain for 1 waiting"));
    expect(await settlesWithin(500, manager.exited)).toBe(false);
    // No new connections while it finishes.
    expect(
      await fetch(`${manager.url}/healthz`).then(
        () => "answered",
        () => "refused",
      ),
    ).toBe("refused");
    fake.setConnections(0);
    expect((await within(3000, waiter)).status).toBe(200);
    expect(await within(3000, manager.exited)).toBe(0);
  });

  test("SIGTERM waits no longer than --drain-timeout", async () => {
    const fake = await fakeEnvoy({ connections: 2 });
    const manager = await startManager(fastDrain(fake.adminAddress, ["--drain-timeout", "1s"]).args);
    const waiter = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => line.msg === "open connections");
    manager.proc.kill("SIGTERM");
    expect((await within(3000, waiter)).status).toBe(504);
    expect(await within(3000, manager.exited)).toBe(0);
  });

  test("a second SIGTERM exits at once", async () => {
    const fake = await fakeEnvoy({ connections: 2 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const waiter = fetch(`${manager.url}/shutdown`).then(
      (r) => r.status,
      () => "connection closed",
    );
    await manager.waitForLog((line) => line.msg === "open connections");
    manager.proc.kill("SIGTERM");
    await manager.waitForLog((line) => String(line.msg).includes("finishing the drain"));
    manager.proc.kill("SIGTERM");
    expect(await within(2000, manager.exited)).toBe(143);
    expect(await waiter).toBe("connection closed");
  });
});
