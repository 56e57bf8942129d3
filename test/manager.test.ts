import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { openClients } from "./support/clients.ts";
import { fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";


/** The admin calls the fake saw, as "METHOD /path", with consecutive stats polls collapsed. */
function adminCalls(f: FakeEnvoy): string[] {
  const calls = f.requests.map((r) => `${r.method} ${r.path}`).filter((c) => !c.endsWith("/server_info") && !c.endsWith("/ready"));
  return calls.filter((call, i) => call !== calls[i - 1]);
}

describe("shutdown-manager", () => {
  test("/healthz answers OK", async () => {
    const fake = await fakeEnvoy();
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const response = await fetch(`${manager.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("OK");
  });

  test("scripted: /shutdown answers only once the count reaches the threshold", async () => {
    const fake = await fakeEnvoy({
      connections: 5,
      timeline: [
        { afterFailMs: 200, connections: 3 },
        { afterFailMs: 600, connections: 1 },
        { afterFailMs: 900, connections: 0 },
      ],
    });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const started = Date.now();
    const response = await within(10_000, fetch(`${manager.url}/shutdown`), "/shutdown");
    const failedAt = fake.calls("/healthcheck/fail", "POST")[0]?.at ?? Number.NaN;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("OK");
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(900);
    expect(failedAt).toBeGreaterThanOrEqual(started);
    expect(adminCalls(fake)).toEqual(["POST /healthcheck/fail", "GET /stats"]);
  });

  test("live: idle keep-alive connections hold the drain until they close", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    const clients = await openClients(fake.dataPort, 3);
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    let answered = false;
    const shutdown = fetch(`${manager.url}/shutdown`).then((r) => {
      answered = true;
      return r;
    });
    await Bun.sleep(500);
    // Envoy does not close idle keep-alive connections: the drain is still waiting.
    expect(answered).toBe(false);
    expect(fake.openConnections).toBe(3);
    // Each client's next request gets `connection: close`, and its socket closes.
    for (const client of clients) expect(await client.request()).toContain("connection: close");
    await Promise.all(clients.map((client) => client.closed));
    const response = await within(5000, shutdown, "/shutdown");
    expect(response.status).toBe(200);
    expect(fake.openConnections).toBe(0);
  });

  test("20 concurrent /shutdown callers share one drain", async () => {
    const fake = await fakeEnvoy({ connections: 2, timeline: [{ afterFailMs: 300, connections: 0 }] });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const responses = await within(
      10_000,
      Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${manager.url}/shutdown`, { method: i % 2 ? "POST" : "GET" }))),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    // One poll loop: polls are spaced by the interval, not 20 at a time.
    const polls = fake.calls("/stats").map((r) => r.at);
    for (let i = 1; i < polls.length; i++) expect((polls[i] ?? 0) - (polls[i - 1] ?? 0)).toBeGreaterThanOrEqual(80);
  });

  test("a completed drain stays completed: a later /shutdown answers at once", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const manager = await startManager(fastDrain(fake.adminAddress, ["--check-delay", "1s"]).args);
    expect((await fetch(`${manager.url}/shutdown`)).status).toBe(200);
    const again = Date.now();
    expect((await fetch(`${manager.url}/shutdown`)).status).toBe(200);
    expect(Date.now() - again).toBeLessThan(500);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("a /shutdown held past Bun's 10 s idle timeout is still answered", async () => {
    const fake = await fakeEnvoy({ connections: 1, timeline: [{ afterFailMs: 12_000, connections: 0 }] });
    const manager = await startManager(fastDrain(fake.adminAddress, ["--check-interval", "500ms"]).args);
    const response = await within(20_000, fetch(`${manager.url}/shutdown`, { timeout: false }), "/shutdown");
    expect(response.status).toBe(200);
    expect(Date.now() - (fake.calls("/healthcheck/fail")[0]?.at ?? 0)).toBeGreaterThanOrEqual(11_500);
  }, 25_000);

  test("--drain-timeout releases waiters with 504 and logs the connections left", async () => {
    const fake = await fakeEnvoy({ connections: 4 });
    const manager = await startManager(fastDrain(fake.adminAddress, ["--drain-timeout", "600ms"]).args);
    const response = await within(5000, fetch(`${manager.url}/shutdown`));
    expect(response.status).toBe(504);
    const line = await manager.waitForLog((l) => l.msg === "drain timed out; connections still open");
    expect(line.open_connections).toBe(4);
  });

  test("unknown paths get 404, wrong methods 405 with Allow", async () => {
    const fake = await fakeEnvoy();
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    expect((await fetch(`${manager.url}/nope`)).status).toBe(404);
    const wrong = await fetch(`${manager.url}/healthz`, { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
    const put = await fetch(`${manager.url}/shutdown`, { method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, POST, HEAD");
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
  });

  test("removes a stale ready file on start", async () => {
    const fake = await fakeEnvoy();
    const { args, readyFile } = fastDrain(fake.adminAddress);
    writeFileSync(readyFile, "drained\n");
    await startManager(args);
    expect(existsSync(readyFile)).toBe(false);
  });

  test("the ready file written by another process releases waiters within 100 ms", async () => {
    const fake = await fakeEnvoy({ connections: 3 });
    // The manager's own drain would wait for a long time: only the hand-off can release it.
    const { args, readyFile } = fastDrain(fake.adminAddress, ["--check-delay", "1h"]);
    const manager = await startManager(args);
    const waiters = Array.from({ length: 3 }, () => fetch(`${manager.url}/shutdown`));
    await Bun.sleep(200);
    const exec = spawnCli(["shutdown", "--serve-port", "0", ...fastDrain(fake.adminAddress, ["--ready-file", readyFile]).args]);
    fake.setConnections(0);
    expect(await within(5000, exec.exited)).toBe(0);
    const written = Date.now();
    const responses = await within(2000, Promise.all(waiters));
    expect(Date.now() - written).toBeLessThan(100);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  test("SIGTERM with no drain running exits 0", async () => {
    const fake = await fakeEnvoy();
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    manager.proc.kill("SIGTERM");
    expect(await within(3000, manager.exited)).toBe(0);
  });
});
