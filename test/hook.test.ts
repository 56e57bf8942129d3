/** The preStop exec hook as a process: draining alone, joining a sidecar, and every way the join can go wrong. */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { freePort, openClients } from "./support/clients.ts";
import { TCP_LISTENER } from "./support/fake-envoy.ts";
import { closesAfter, fakeEnvoy, fastDrain, tempDir } from "./support/fixtures.ts";
import { spawnCli, within } from "./support/process.ts";
import { sidecarScenario } from "./support/scenario.ts";
import { onTeardown } from "./support/teardown.ts";

/** Runs `shutdown` without looking for a manager, and resolves with its exit code. */
function runAlone(args: string[]) {
  const cli = spawnCli(["shutdown", "--serve-port", "0", ...args]);
  return { cli, code: within(15_000, cli.exited, "shutdown") };
}

describe("draining alone", () => {
  test("no sidecar on its --serve-port: one line says so before it drains Envoy itself", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const port = freePort();
    const cli = spawnCli(["shutdown", "--serve-port", String(port), ...fastDrain(fake.adminAddress).args]);
    expect(await within(15_000, cli.exited)).toBe(0);
    expect(cli.lines.map((line) => line.msg).slice(0, 2)).toEqual([
      `no sidecar listens on 127.0.0.1:${port}; draining Envoy from here`,
      "drain started",
    ]);
  });

  test("scripted: drains by itself, exits 0 after the count reaches 0, writes the ready file", async () => {
    const fake = await fakeEnvoy(closesAfter(4, 500));
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
    const fake = await fakeEnvoy(closesAfter(1, 200));
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

  test("an address that never answered is a failed drain at --drain-timeout, naming the address", async () => {
    const fake = await fakeEnvoy();
    fake.stopAdmin();
    const { args, readyFile } = fastDrain(fake.adminAddress, ["--drain-timeout", "700ms"]);
    const { cli, code } = runAlone(args);
    expect(await code).toBe(1);
    expect(readFileSync(readyFile, "utf8")).toBe("failed\n");
    expect(cli.stderrText()).toContain(`connection refused at ${fake.adminAddress}`);
    expect(cli.lines.at(-1)?.msg).toBe(`drain failed: Envoy's admin API never answered at ${fake.adminAddress}; check --admin-address`);
  });

  test("a missing Unix socket says so", async () => {
    const socket = join(tempDir(), "admin.sock");
    const { cli, code } = runAlone(fastDrain(socket, ["--drain-timeout", "500ms"]).args);
    expect(await code).toBe(1);
    expect(cli.stderrText()).toContain(`no Unix socket accepts connections at ${socket}`);
  });

  test("hooks finishing together each write the ready file whole, and leave no temporary file", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const { args, readyFile } = fastDrain(fake.adminAddress);
    const hooks = Array.from({ length: 6 }, () => runAlone(args).code);
    expect(await Promise.all(hooks)).toEqual(Array(6).fill(0));
    expect(readdirSync(dirname(readyFile))).toEqual(["ready"]);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });
});

describe("joining the sidecar", () => {
  test("joins the sidecar's drain instead of starting a second one", async () => {
    const { fake, hook, shutdown, readyFile } = await sidecarScenario({
      envoy: closesAfter(2, 400),
    });
    const exec = hook();
    const sidecarWaiter = shutdown();
    expect(await within(10_000, exec.exited)).toBe(0);
    expect((await sidecarWaiter).status).toBe(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    expect(exec.lines.some((line) => line.msg === "the sidecar's drain ended")).toBe(true);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });

  test("the sidecar's settings govern a joined drain; the hook says so at once, and which they are", async () => {
    const { fake, hook, status } = await sidecarScenario({ envoy: { connections: 0 } });
    const started = Date.now();
    // A merge would hold the drain for the longer minimum, delay and quiet period: the sidecar's own hold instead.
    const exec = hook(["--min-drain-duration", "3s", "--drain-delay", "3s", "--quiet-period", "2s", "--drain-timeout", "9s"]);
    const joined = await exec.waitForLog((line) => String(line.msg).startsWith("joined the sidecar's drain"));
    expect(String(joined.msg)).toContain("the sidecar's flags govern it, this hook's drain flags other than --drain-timeout are not used");
    expect(String(joined.msg)).toContain(
      "waiting for ≤ 0 open connections, bounded by this hook's --drain-timeout (9s) and the sidecar's (none)",
    );
    expect(joined.governing_settings).toMatchObject({ min_drain_duration: "0s", drain_delay: "0s", quiet_period: "0s" });
    expect(await within(5000, exec.exited)).toBe(0);
    expect(Date.now() - started).toBeLessThan(2500);
    expect((await status()).drain_settings).toMatchObject({ min_drain_duration: "0s", drain_delay: "0s", check_interval: "100ms" });
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("a hook without --drain-timeout cannot unbound the sidecar: its deadline ends the drain, both are told", async () => {
    const { hook, shutdown, sidecar } = await sidecarScenario({ envoy: { connections: 2 }, flags: ["--drain-timeout", "800ms"] });
    const exec = hook();
    await exec.waitForLog((line) => String(line.msg).startsWith("joined the sidecar's drain"));
    const envoyHook = shutdown();
    expect((await within(3000, envoyHook)).status).toBe(504);
    expect(await within(3000, exec.exited)).toBe(1);
    await sidecar.waitForLog((line) => String(line.msg).startsWith("drain timed out"));
  });

  test("a drain that already ended: the hook reports its real outcome, and says it came too late to wait", async () => {
    const { hook, shutdown, readyFile } = await sidecarScenario({ envoy: { connections: 2 }, flags: ["--drain-timeout", "400ms"] });
    expect((await within(3000, shutdown())).status).toBe(504);
    const exec = hook(["--min-open-connections", "5"]);
    expect(await within(3000, exec.exited)).toBe(1);
    const said = exec.lines.find((line) => String(line.msg).startsWith("the sidecar's drain had already ended"));
    expect(String(said?.msg)).toContain("timed_out (timeout)");
    expect(readFileSync(readyFile, "utf8")).toBe("timed_out\n");
  });

  test("while it waits, a line per check interval says on what; an admin address that never answered is said at once", async () => {
    const { fake, hook } = await sidecarScenario({ envoy: { connections: 0 }, flags: ["--check-delay", "5s", "--check-interval", "1s"] });
    fake.stopAdmin();
    const exec = hook(["--check-delay", "0s", "--drain-timeout", "4500ms"]);
    const joinedAt = Date.now();
    await exec.waitForLog((line) => String(line.msg).includes("the sidecar has had no answer from Envoy's admin API yet"), 3000);
    // What the sidecar found comes with it, or at its first attempt.
    await exec.waitForLog((line) => line.level === "warn" && String(line.msg).includes(`connection refused at ${fake.adminAddress}`), 3000);
    expect(Date.now() - joinedAt).toBeLessThan(2000);
    const waiting = await exec.waitForLog((line) => String(line.msg).startsWith("waiting for the sidecar's drain"), 3000);
    expect(String(waiting.msg)).toContain("no connection count yet (the first comes after the sidecar's --check-delay, 5s)");
    expect(await within(7000, exec.exited)).toBe(1);
    // A line a second at most over a wait of a few seconds: more than one, never one per poll.
    const lines = exec.lines.filter((line) => String(line.msg).startsWith("waiting for the sidecar's drain")).length;
    expect(lines).toBeGreaterThanOrEqual(2);
    expect(lines).toBeLessThanOrEqual(5);
  });

  test("--drain-timeout bounds the hook while it is joined: exit 1, said in the log", async () => {
    const { hook, readyFile } = await sidecarScenario({ envoy: { connections: 2 } });
    const started = Date.now();
    const exec = hook(["--drain-timeout", "700ms"]);
    expect(await within(5000, exec.exited)).toBe(1);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(exec.stderrText()).toContain("drain timed out after 700ms while joined to the sidecar's drain");
    expect(readFileSync(readyFile, "utf8")).toBe("timed_out\n");
  });

  test("a joined hook that gives up first does not end the sidecar's drain: Envoy's /shutdown waits for its real end", async () => {
    const { hook, shutdown, sidecar } = await sidecarScenario({
      envoy: { connections: 2, timeline: [{ afterFailMs: 1500, connections: 0 }] },
    });
    const envoyHook = shutdown();
    const exec = hook(["--drain-timeout", "500ms"]);
    expect(await within(5000, exec.exited)).toBe(1);
    const answered = await within(5000, envoyHook);
    expect(answered.status).toBe(200);
    await sidecar.waitForLog((line) => String(line.msg).startsWith("ready file says timed_out: the hook's drain ended"));
    expect(sidecar.lines.some((line) => line.msg === "drain complete")).toBe(true);
  });

  test("a port that accepts but never answers: the hook drains Envoy itself and says why", async () => {
    const fake = await fakeEnvoy(closesAfter(1, 300));
    const wedged = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    onTeardown(() => wedged.stop(true));
    const started = Date.now();
    const exec = spawnCli(["shutdown", ...fastDrain(fake.adminAddress).args, "--serve-port", String(wedged.port)]);
    expect(await within(5000, exec.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    expect((fake.calls("/healthcheck/fail")[0]?.at ?? 0) - started).toBeLessThan(2500);
    const why = exec.lines.filter((line) => String(line.msg).includes("draining Envoy from here instead"));
    expect(why).toHaveLength(1);
    expect(String(why[0]?.msg)).toContain("no answer within 1000 ms");
  });

  test("another server on the port: the hook drains Envoy itself", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("hello from something else") });
    onTeardown(() => other.stop(true));
    const exec = spawnCli(["shutdown", ...fastDrain(fake.adminAddress).args, "--serve-port", String(other.port)]);
    expect(await within(5000, exec.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("a sidecar that dies mid-drain: the hook finishes the drain itself", async () => {
    const { fake, hook, sidecar } = await sidecarScenario({ envoy: { connections: 2 } });
    const exec = hook();
    await exec.waitForLog((line) => line.msg === "open connections");
    sidecar.proc.kill("SIGKILL");
    await exec.waitForLog((line) => String(line.msg).startsWith("lost the sidecar"));
    fake.setConnections(0);
    expect(await within(5000, exec.exited)).toBe(0);
  });

  test("the hook sends the token from its environment", async () => {
    const env = { ENVOY_SHUTDOWN_SHUTDOWN_TOKEN: "s3cret-token-of-some-length" };
    const { hook } = await sidecarScenario({ envoy: { connections: 0 }, env });
    const exec = hook();
    expect(await within(5000, exec.exited)).toBe(0);
    expect(exec.lines.some((line) => line.msg === "the sidecar's drain ended")).toBe(true);
  });

  test("the hook still completes when kubelet gives up on Envoy's /shutdown", async () => {
    const { fake, hook, shutdown } = await sidecarScenario({ envoy: closesAfter(1, 800) });
    const kubelet = new AbortController();
    const abandoned = shutdown({ signal: kubelet.signal }).catch(() => "aborted");
    const exec = hook();
    await Bun.sleep(200);
    kubelet.abort();
    expect(await abandoned).toBe("aborted");
    expect(await within(5000, exec.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });
});

/** A server on loopback that answers /status with `status` and every /shutdown with 200 at once, counting them. */
function previousSidecar(status: unknown) {
  let shutdowns = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    routes: {
      "/status": () => Response.json(status),
      "/shutdown": () => {
        shutdowns += 1;
        return new Response("OK");
      },
    },
    fetch: () => new Response("not found\n", { status: 404 }),
  });
  onTeardown(() => server.stop(true));
  return { port: String(server.port), shutdowns: () => shutdowns };
}

/** The previous release's /status, as its sidecar served it mid-drain: no hand-off protocol, no drain owner. */
const PREVIOUS_STATUS = {
  version: "0.0.9",
  phase: "draining",
  reason: null,
  started_at: new Date().toISOString(),
  finished_at: null,
  duration_seconds: 1,
  open_connections: 3,
  min_open_connections: 0,
  connections_by_listener: { "0.0.0.0_8080": 3 },
  new_connections: 0,
  new_connections_by_listener: {},
  seconds_since_last_new_connection: null,
  polls: 4,
  reports: 2,
  health_check_fail_posts: 1,
  admin_errors: { unreachable: 0, timeout: 0, http_status: 0, network: 0, malformed: 0, stats_missing: 0 },
  envoy_answered: true,
  envoy_problem: null,
  waiters: 1,
  heals: 0,
  admin_address: "127.0.0.1:9001",
  check_interval: "5s",
  check_interval_seconds: 5,
  drain_timeout: "0s",
  drain_timeout_seconds: 0,
  quiet_period: "2s",
  ready_file: "/admin/ok",
};

describe("a sidecar of another release, or something that looks like one", () => {
  test.each([
    ["a previous release's /status", PREVIOUS_STATUS, "speaks no hand-off protocol of this release"],
    ["a JSON answer with only a phase", { phase: "draining" }, "speaks no hand-off protocol of this release"],
    ["a newer protocol", { ...PREVIOUS_STATUS, handoff_protocol: 3 }, "speaks hand-off protocol 3, not 2"],
    [
      "this protocol with a field of another form",
      { ...PREVIOUS_STATUS, handoff_protocol: 2, drain_owner: "sidecar", drain_settings: null, connections_by_listener: [3] },
      "answers /status without a valid connections_by_listener",
    ],
  ])("%s: the hook drains Envoy itself, says why in one line, and shows no stack", async (_, status, why) => {
    const fake = await fakeEnvoy(closesAfter(1, 200));
    const sidecar = previousSidecar(status);
    const { args, readyFile } = fastDrain(fake.adminAddress);
    const exec = spawnCli(["shutdown", ...args, "--serve-port", sidecar.port]);
    expect(await within(5000, exec.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    expect(sidecar.shutdowns()).toBe(0);
    const said = exec.lines.filter((line) => String(line.msg).includes("draining Envoy from here instead"));
    expect(said).toHaveLength(1);
    expect(String(said[0]?.msg)).toContain(why);
    expect(exec.stderrText()).not.toMatch(/TypeError|\n\s+at /);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });
});
