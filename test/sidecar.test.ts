/** The sidecar as a process: its endpoints, the shared drain, the hand-off by ready file, its start-up check of Envoy. */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import type { StatusReport } from "../src/sidecar/status.ts";
import { openClients } from "./support/clients.ts";
import { drainSettings } from "./support/drain-settings.ts";
import type { FakeEnvoy } from "./support/fake-envoy.ts";
import { closesAfter, fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";
import { sidecarScenario } from "./support/scenario.ts";

/** The admin calls the fake saw, as "METHOD /path", with consecutive stats polls collapsed. */
function adminCalls(f: FakeEnvoy): string[] {
  const calls = f.requests.map((r) => `${r.method} ${r.path}`).filter((c) => !c.endsWith("/server_info") && !c.endsWith("/ready"));
  return calls.filter((call, i) => call !== calls[i - 1]);
}

/** Sends one request line as written (fetch would normalise the path) and returns the raw answer. */
async function rawRequest(url: string, line: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const answer = Promise.withResolvers<string>();
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: { data: (_, chunk) => answer.resolve(chunk.toString()), error: (_, error) => answer.reject(error) },
  });
  socket.write(`${line}\r\nhost: ${hostname}\r\nconnection: close\r\n\r\n`);
  try {
    return await within(5000, answer.promise, line);
  } finally {
    socket.end();
  }
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe("endpoints and the shared drain", () => {
  test("/healthz answers OK; unknown paths get 404, wrong methods 405 with Allow, and start nothing", async () => {
    const { fake, url } = await sidecarScenario();
    const healthz = await fetch(`${url}/healthz`);
    expect([healthz.status, await healthz.text()]).toEqual([200, "OK"]);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    const wrong = await fetch(`${url}/healthz`, { method: "DELETE" });
    expect([wrong.status, wrong.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const put = await fetch(`${url}/shutdown`, { method: "PUT" });
    expect([put.status, put.headers.get("allow")]).toEqual([405, "GET, POST"]);
    // HEAD asks about /shutdown without starting a drain; a dot segment is no route.
    expect((await fetch(`${url}/shutdown`, { method: "HEAD" })).status).toBe(405);
    const dotted = await rawRequest(url, "GET /./shutdown HTTP/1.1");
    expect(dotted).toStartWith("HTTP/1.1 404");
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
  });

  test("scripted: /shutdown answers only once the count reaches the threshold", async () => {
    const timeline = [
      { afterFailMs: 200, connections: 3 },
      { afterFailMs: 600, connections: 1 },
      { afterFailMs: 900, connections: 0 },
    ];
    const { fake, shutdown } = await sidecarScenario({ envoy: { connections: 5, timeline } });
    const started = Date.now();
    const response = await within(10_000, shutdown(), "/shutdown");
    const failedAt = fake.calls("/healthcheck/fail", "POST")[0]?.at ?? Number.NaN;
    expect([response.status, await response.text()]).toEqual([200, "OK"]);
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(900);
    expect(failedAt).toBeGreaterThanOrEqual(started);
    // From the fail on (the start-up check's own count may come before it): one POST, then polls only.
    const calls = adminCalls(fake);
    expect(calls.slice(calls.indexOf("POST /healthcheck/fail"))).toEqual(["POST /healthcheck/fail", "GET /stats"]);
  });

  test("live: idle keep-alive connections hold the drain until they close", async () => {
    const { fake, shutdown } = await sidecarScenario({ envoy: { mode: "live" } });
    const clients = await openClients(fake.dataPort, 3);
    let answered = false;
    const response = shutdown().then((r) => {
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
    expect((await within(5000, response, "/shutdown")).status).toBe(200);
    expect(fake.openConnections).toBe(0);
  });

  test("20 concurrent /shutdown callers share one drain", async () => {
    const { fake, shutdown } = await sidecarScenario({ envoy: closesAfter(2, 300) });
    const responses = await within(10_000, Promise.all(Array.from({ length: 20 }, (_, i) => shutdown({ method: i % 2 ? "POST" : "GET" }))));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("a completed drain stays completed: a later /shutdown answers at once", async () => {
    const { fake, shutdown } = await sidecarScenario({ envoy: { connections: 0 }, flags: ["--check-delay", "1s"] });
    expect((await shutdown()).status).toBe(200);
    const again = Date.now();
    expect((await shutdown()).status).toBe(200);
    expect(Date.now() - again).toBeLessThan(500);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("--drain-timeout releases waiters with 504 and logs the connections left", async () => {
    const { shutdown, sidecar } = await sidecarScenario({ envoy: { connections: 4 }, flags: ["--drain-timeout", "600ms"] });
    expect((await within(5000, shutdown())).status).toBe(504);
    const line = await sidecar.waitForLog((l) => String(l.msg).startsWith("drain timed out"));
    expect(line.msg).toBe("drain timed out; connections still open: 0.0.0.0_8080=4");
    expect(line.open_connections).toBe(4);
  });
});

describe("the ready file", () => {
  test("a stale one is removed on start", async () => {
    const fake = await fakeEnvoy();
    const { args, readyFile } = fastDrain(fake.adminAddress);
    writeFileSync(readyFile, "drained\n");
    const sidecar = await startManager(args);
    await sidecar.waitForLog((line) => line.msg === "removed a stale ready file from an earlier run", 3000);
    expect(existsSync(readyFile)).toBe(false);
  });

  test("written by the hook in another container, it releases waiters at once, not at the end of the sidecar's own drain", async () => {
    // The sidecar's own drain would wait for an hour: only the hand-off can release it.
    const { fake, shutdown, readyFile } = await sidecarScenario({ envoy: { connections: 3 }, flags: ["--check-delay", "1h"] });
    const waiters = Array.from({ length: 3 }, () => shutdown());
    await Bun.sleep(200);
    const exec = spawnCli(["shutdown", "--serve-port", "0", ...fastDrain(fake.adminAddress, ["--ready-file", readyFile]).args]);
    fake.setConnections(0);
    expect(await within(5000, exec.exited)).toBe(0);
    const written = Date.now();
    const responses = await within(2000, Promise.all(waiters));
    // A bound loose enough for a loaded machine, and far below the hour its own drain would take; the bench times it.
    expect(Date.now() - written).toBeLessThan(1000);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
  });
});

describe("the start-up check of Envoy", () => {
  test("a leftover drain is undone: /healthcheck/ok, Envoy LIVE again, counted as a heal", async () => {
    const { fake, sidecar, status } = await sidecarScenario({ envoy: { healthCheckFailed: true } });
    await sidecar.waitForLog((line) => line.msg === "Envoy is LIVE again");
    expect(fake.isHealthCheckFailed).toBe(false);
    expect(fake.calls("/healthcheck/ok", "POST")).toHaveLength(1);
    expect((await status()).heals).toBe(1);
  });

  test("a sidecar restarted alone (a failed liveness probe) mid-drain puts Envoy back to LIVE", async () => {
    const fake = await fakeEnvoy({ connections: 2 });
    const { args } = fastDrain(fake.adminAddress);
    const first = await startManager(args);
    void fetch(`${first.url}/shutdown`).catch(() => "the sidecar is killed under it");
    await first.waitForLog((line) => line.msg === "Envoy is failing health checks");
    expect(fake.isHealthCheckFailed).toBe(true);
    first.proc.kill("SIGKILL");
    await first.exited;
    const restarted = await startManager(args);
    await restarted.waitForLog((line) => line.msg === "Envoy is LIVE again");
    expect(fake.isHealthCheckFailed).toBe(false);
    expect(((await (await fetch(`${restarted.url}/status`)).json()) as { heals: number }).heals).toBe(1);
  });

  test("is left alone with --no-heal-on-start", async () => {
    const { fake, status } = await sidecarScenario({ envoy: { healthCheckFailed: true }, flags: ["--no-heal-on-start"] });
    await Bun.sleep(300);
    expect(fake.isHealthCheckFailed).toBe(true);
    expect(fake.calls("/healthcheck/ok")).toHaveLength(0);
    expect((await status()).heals).toBe(0);
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

  test("an Envoy that does not answer yet is reported in the log and /status, and cleared once it answers", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    fake.stopAdmin();
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    const warning = await manager.waitForLog((line) => String(line.msg).startsWith("Envoy's admin API does not answer"));
    expect(String(warning.msg)).toContain(`connection refused at ${fake.adminAddress}`);
    const before = (await (await fetch(`${manager.url}/status`)).json()) as {
      envoy_problem: { kind: string } | null;
      envoy_answered: boolean;
    };
    expect(before.envoy_problem?.kind).toBe("unreachable");
    expect(before.envoy_answered).toBe(false);
    expect(await (await fetch(`${manager.url}/metrics`)).text()).toContain('envoy_shutdown_manager_envoy_problem{kind="unreachable"} 1');
    fake.startAdmin();
    await manager.waitForLog((line) => line.msg === "Envoy's admin API answers", 3000);
    const after = (await (await fetch(`${manager.url}/status`)).json()) as { envoy_problem: unknown; envoy_answered: boolean };
    expect(after).toMatchObject({ envoy_problem: null, envoy_answered: true });
  });

  test("connection stats excluded by stats_matcher are reported at start, in /status and /metrics", async () => {
    const { sidecar, status, url } = await sidecarScenario({
      envoy: { connections: 1, excludeStats: /^listener\..*downstream_cx_active$/ },
    });
    const warning = await sidecar.waitForLog((line) => String(line.msg).includes("stats_matcher"));
    expect(String(warning.msg)).toContain("--connection-stat=http counts them");
    expect((await status()).envoy_problem?.kind).toBe("stats_missing");
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('envoy_shutdown_manager_envoy_problem{kind="stats_missing"} 1');
  });
});

describe("waiters that go away", () => {
  test("the drain goes on for the others, and nothing is left behind", async () => {
    const { fake, sidecar, shutdown, status, url } = await sidecarScenario({ envoy: { connections: 1 } });
    await fetch(`${url}/healthz`);
    const fdsBefore = fdCount(sidecar.proc.pid);
    const leaving = Array.from({ length: 10 }, () => new AbortController());
    const gone = leaving.map((controller) => shutdown({ signal: controller.signal }).catch(() => "aborted"));
    const staying = shutdown();
    await Bun.sleep(300);
    expect((await status()).waiters).toBe(11);
    for (const controller of leaving) controller.abort();
    expect(await Promise.all(gone)).toEqual(Array(10).fill("aborted"));
    await Bun.sleep(200);
    expect((await status()).waiters).toBe(1);
    expect((await status()).phase).toBe("draining");
    fake.setConnections(0);
    expect((await within(3000, staying)).status).toBe(200);
    await Bun.sleep(200);
    expect((await status()).waiters).toBe(0);
    // The 10 aborted requests' sockets are closed: the sidecar holds fewer than 10 descriptors more than before (the
    // few it may still hold are this test's own keep-alive connections for /status, and closes still on their way).
    for (let tries = 0; fdCount(sidecar.proc.pid) > fdsBefore + 6 && tries < 20; tries++) await Bun.sleep(50);
    expect(fdCount(sidecar.proc.pid)).toBeLessThanOrEqual(fdsBefore + 6);
  });
});

describe("a drain by anyone on the network", () => {
  test("without the bearer token /shutdown is 401 and starts nothing; /healthz stays open", async () => {
    const TOKEN = "s3cret-token-of-some-length";
    const { fake, shutdown, status, url } = await sidecarScenario({ envoy: { connections: 0 }, flags: ["--shutdown-token", TOKEN] });
    for (const authorization of [undefined, "Bearer wrong", TOKEN, `Bearer ${TOKEN}x`]) {
      const response = await shutdown({ method: "POST", headers: authorization ? { authorization } : {} });
      expect(response.status).toBe(401);
    }
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    await Bun.sleep(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    expect((await status()).phase).toBe("idle");
    // The scheme's name is case-insensitive, and more than one space may follow it, as HTTP has it.
    expect((await shutdown({ headers: { authorization: `bearer  ${TOKEN}` } })).status).toBe(200);
  });
});

describe("hostile requests", () => {
  test("oversized headers and bodies are refused, and start nothing", async () => {
    const { fake, shutdown } = await sidecarScenario({ envoy: { connections: 0 } });
    expect((await shutdown({ headers: { "x-filler": "a".repeat(64 * 1024) } })).status).toBe(431);
    expect((await shutdown({ method: "POST", body: "a".repeat(64 * 1024) })).status).toBe(413);
    await Bun.sleep(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
  });

  test("a CONNECT, whose target is no path, is a bad request, not a server error", async () => {
    const { sidecar } = await sidecarScenario({ envoy: { connections: 0 } });
    const answer = await rawRequest(sidecar.url, "CONNECT 127.0.0.1:1 HTTP/1.1");
    expect(answer).toStartWith("HTTP/1.1 400");
    expect(sidecar.lines.filter((line) => line.level === "error")).toEqual([]);
  });
});

/** What a previous release's hook posted to join: its drain settings, here ones that would loosen and unbound a drain. */
const PREVIOUS_JOIN = JSON.stringify({
  drain: drainSettings({ checkIntervalMs: 0, minOpenConnections: 1_000_000, drainTimeoutMs: 2_147_483_648 }),
});

describe("request bodies: a previous release's hook, and anything else", () => {
  test("a previous release's join body over loopback joins the drain on the sidecar's own settings, said once", async () => {
    const { fake, shutdown, sidecar, status } = await sidecarScenario({ envoy: { connections: 3 }, flags: ["--drain-timeout", "1500ms"] });
    const joins = [shutdown({ method: "POST", body: PREVIOUS_JOIN }), shutdown({ method: "POST", body: PREVIOUS_JOIN })];
    await sidecar.waitForLog((line) => line.msg === "open connections");
    // 1,000,000 connections would be "drained" at once, a deadline past 2^31 ms would end it at once: neither holds.
    expect((await status()).phase).toBe("draining");
    expect((await status()).drain_settings).toMatchObject({ min_open_connections: 0, check_interval: "100ms", drain_timeout: "1.5s" });
    const answers = await within(5000, Promise.all(joins));
    expect(answers.map((answer) => answer.status)).toEqual([504, 504]);
    expect((await status()).polls).toBeLessThan(40);
    const said = sidecar.lines.filter((line) => String(line.msg).startsWith("a previous release's hook sent its drain settings: ignored"));
    expect(said).toHaveLength(1);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test.each([
    ["not JSON", "drain now"],
    ["an array", "[1]"],
    ["no drain object", "{}"],
    ["a drain that is no object", '{"drain": 5}'],
  ])("a body that is %s is refused with 400 and starts nothing", async (_, body) => {
    const { fake, shutdown, status } = await sidecarScenario({ envoy: { connections: 0 } });
    const answer = await shutdown({ method: "POST", body });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toContain("expected no body");
    await Bun.sleep(150);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    expect((await status()).phase).toBe("idle");
  });
});

/** Contour's sidecar command line (the source run under any other name is Contour's dialect) against a fake Envoy. */
async function contourSidecar(flags: string[] = [], env: Record<string, string> = {}) {
  const fake = await fakeEnvoy({ connections: 1 });
  const { readyFile } = fastDrain(fake.adminAddress);
  const cli = spawnCli(["envoy", "shutdown-manager", "--serve-port", "0", "--serve-address", "127.0.0.1", ...flags], {
    env: { ENVOY_SHUTDOWN_ADMIN_ADDRESS: fake.adminAddress, ENVOY_SHUTDOWN_READY_FILE: readyFile, ...env },
  });
  const listening = await cli.waitForLog((line) => line.msg === "shutdown-manager listening");
  const url = `http://127.0.0.1:${listening.port}`;
  return { fake, cli, readyFile, url, shutdown: (init?: RequestInit) => fetch(`${url}/shutdown`, init) };
}

describe("on Contour's and Envoy Gateway's command lines the hook owns the drain", () => {
  test("no /shutdown starts a drain: a join body or this release's hand-off is answered 409, Envoy's GET waits for the ready file", async () => {
    const { fake, readyFile, shutdown, url } = await contourSidecar();
    const body = await shutdown({ method: "POST", body: PREVIOUS_JOIN });
    expect(body.status).toBe(409);
    expect(await body.text()).toContain("the preStop hook drains it and writes the ready file");
    expect((await shutdown({ method: "POST", headers: { "x-envoy-shutdown-handoff": "2" } })).status).toBe(409);
    let answered = false;
    const envoyHook = shutdown().then((response) => {
      answered = true;
      return response.status;
    });
    const ready = fetch(`${url}/shutdown/ready`).then((response) => response.status);
    await Bun.sleep(400);
    expect(answered).toBe(false);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    const status = (await (await fetch(`${url}/status`)).json()) as StatusReport;
    expect(status).toMatchObject({ handoff_protocol: 2, drain_owner: "hook", drain_settings: null, phase: "idle", waiters: 2 });
    // Readably: what it waits for, and none of the counts or drain settings of a drain it does not run.
    const readable = () => spawnCli(["status", "--serve-port", new URL(url).port]).stdout();
    const waiting = await readable();
    expect(waiting).toStartWith("phase:             idle: waiting for the preStop hook's ready file\nended:             -\n");
    expect(waiting).not.toMatch(/open connections|polls|check interval/);
    writeFileSync(readyFile, "drained\n");
    expect(await within(2000, Promise.all([envoyHook, ready]))).toEqual([200, 200]);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    expect(await readable()).toMatch(/^phase: +drained \(handed_off\)\nended: +\d{4}-\d\d-\d\dT/);
  });

  test("its own deadline bounds the wait for the ready file; drain flags it does not use are named at start", async () => {
    // A variable is the hook's too (they share the container's environment): not named.
    const { shutdown, cli } = await contourSidecar(["--drain-timeout", "600ms", "--check-delay", "5s", "--min-open-connections", "3"], {
      ENVOY_SHUTDOWN_DRAIN_DELAY: "2s",
    });
    const warning = await cli.waitForLog((line) => String(line.msg).includes(": ignored, the preStop hook drains Envoy"));
    expect(String(warning.msg)).toStartWith("--check-delay, --min-open-connections: ignored");
    const started = Date.now();
    expect((await within(3000, shutdown())).status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    await cli.waitForLog((line) => String(line.msg).startsWith("the preStop hook wrote no ready file within 600ms"));
    // That line says how the wait ended; this sidecar counted nothing, so no time-out line about counts follows.
    await Bun.sleep(100);
    expect(cli.lines.filter((line) => String(line.msg).startsWith("drain timed out"))).toEqual([]);
  });
});
