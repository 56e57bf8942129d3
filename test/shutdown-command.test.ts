import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openClients } from "./support/clients.ts";
import { fakeEnvoy, fastDrain, tempDir } from "./support/fixtures.ts";
import { TCP_LISTENER } from "./support/fake-envoy.ts";
import { spawnCli, startManager, within } from "./support/process.ts";


/** Runs `shutdown` without looking for a manager, and resolves with its exit code. */
function runAlone(args: string[]) {
  const cli = spawnCli(["shutdown", "--serve-port", "0", ...args]);
  return { cli, code: within(15_000, cli.exited, "shutdown") };
}

describe("shutdown (exec hook)", () => {
  test("scripted: drains by itself, exits 0 after the count reaches 0, writes the ready file", async () => {
    const fake = await fakeEnvoy({ connections: 4, timeline: [{ afterFailMs: 500, connections: 0 }] });
    const { args, readyFile } = fastDrain(fake.adminAddress);
    const { code } = runAlone(args);
    expect(await code).toBe(0);
    const failedAt = fake.calls("/healthcheck/fail", "POST")[0]?.at ?? Number.NaN;
    const polls = fake.calls("/stats", "GET");
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.every((poll) => poll.at >= failedAt)).toBe(true);
    expect((polls.at(-1)?.at ?? 0) - failedAt).toBeGreaterThanOrEqual(500);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });

  test("live: exits once the clients' sockets have closed", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    const clients = await openClients(fake.dataPort, 4);
    const { args } = fastDrain(fake.adminAddress);
    const { cli, code } = runAlone(args);
    await cli.waitForLog((line) => line.msg === "Envoy is failing health checks");
    let exited = false;
    void code.then(() => {
      exited = true;
    });
    await Bun.sleep(300);
    expect(exited).toBe(false);
    for (const client of clients) await client.request().catch(() => "");
    expect(await code).toBe(0);
    expect(fake.openConnections).toBe(0);
  });

  test("--min-open-connections lets an idle keep-alive connection stay", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    await openClients(fake.dataPort, 1);
    const { code } = runAlone(fastDrain(fake.adminAddress, ["--min-open-connections", "1"]).args);
    expect(await code).toBe(0);
    expect(fake.openConnections).toBe(1);
  });

  test("TCP proxy connections are counted too", async () => {
    const fake = await fakeEnvoy({
      connections: { [TCP_LISTENER]: 2 },
      timeline: [{ afterFailMs: 400, connections: { [TCP_LISTENER]: 0 } }],
    });
    const { code } = runAlone(fastDrain(fake.adminAddress).args);
    expect(await code).toBe(0);
    expect(Date.now() - (fake.calls("/healthcheck/fail")[0]?.at ?? 0)).toBeGreaterThanOrEqual(400);
  });

  test("--connection-stat=http polls /stats/prometheus", async () => {
    const fake = await fakeEnvoy({ connections: 1, timeline: [{ afterFailMs: 200, connections: 0 }] });
    const { code } = runAlone(fastDrain(fake.adminAddress, ["--connection-stat", "http"]).args);
    expect(await code).toBe(0);
    expect(fake.calls("/stats/prometheus").length).toBeGreaterThanOrEqual(1);
    expect(fake.calls("/stats")).toHaveLength(0);
  });

  test("reaches the admin API over a Unix socket", async () => {
    const socket = join(tempDir(), "admin.sock");
    const fake = await fakeEnvoy({ unixSocket: socket, connections: 1, timeline: [{ afterFailMs: 200, connections: 0 }] });
    const { code } = runAlone(fastDrain(socket).args);
    expect(await code).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("--drain-listeners also posts a graceful, skip_exit listener drain", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const { code } = runAlone(fastDrain(fake.adminAddress, ["--drain-listeners"]).args);
    expect(await code).toBe(0);
    const calls = fake.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ""}`);
    expect(calls.slice(0, 2)).toEqual(["POST /healthcheck/fail", "POST /drain_listeners?graceful&skip_exit"]);
  });

  test("a drain that times out exits 1 and writes timed_out into the ready file", async () => {
    const fake = await fakeEnvoy({ connections: 2 });
    const { args, readyFile } = fastDrain(fake.adminAddress, ["--drain-timeout", "500ms"]);
    const { code } = runAlone(args);
    expect(await code).toBe(1);
    expect(readFileSync(readyFile, "utf8")).toBe("timed_out\n");
  });

  test("joins a listening shutdown-manager's drain instead of starting a second one", async () => {
    const fake = await fakeEnvoy({ connections: 2, timeline: [{ afterFailMs: 400, connections: 0 }] });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const { args, readyFile } = fastDrain(fake.adminAddress);
    const exec = spawnCli(["shutdown", ...args, "--serve-port", String(manager.port)]);
    const managerWaiter = fetch(`${manager.url}/shutdown`);
    expect(await within(10_000, exec.exited)).toBe(0);
    expect((await managerWaiter).status).toBe(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    expect(exec.lines.some((line) => line.msg === "joined the shutdown-manager's drain")).toBe(true);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });
});
