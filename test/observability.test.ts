/** What an operator sees: metrics, status, logs and progress. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { version } from "../package.json";
import type { PollReport } from "../src/drain/drain.ts";
import { progressLine } from "../src/hook/progress.ts";
import { configureLogging, containerLogMirror, type LoggingOptions, log } from "../src/log.ts";
import type { StatusReport } from "../src/sidecar/status.ts";
import { openClients } from "./support/clients.ts";
import { closesAfter, fakeEnvoy, fastDrain, tempDir } from "./support/fixtures.ts";
import { SOURCE_CLI, spawnCli, startManager, within } from "./support/process.ts";
import { sidecarScenario } from "./support/scenario.ts";
import { onTeardown } from "./support/teardown.ts";

/** Parses /metrics with a real exposition-format parser, and checks what it lets through. */
async function scrape(url: string) {
  const response = await fetch(`${url}/metrics`);
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  const families = parsePrometheusTextFormat(await response.text());
  for (const family of families) {
    expect(family.name).toMatch(/^envoy_shutdown_manager_[a-z_]+$/);
    expect(family.help).not.toBe("");
    expect(["COUNTER", "GAUGE", "HISTOGRAM"]).toContain(family.type);
    if (family.type === "COUNTER") expect(family.name).toEndWith("_total");
    if (family.type === "HISTOGRAM") expect(family.name).toEndWith("_seconds");
    else
      for (const sample of family.metrics)
        expect(Number.isFinite(Number.parseFloat(sample.value)) && !Number.isNaN(Number(sample.value))).toBe(true);
  }
  const value = (name: string, labels: Record<string, string> = {}) =>
    Number(
      families
        .find((f) => f.name === `envoy_shutdown_manager_${name}`)
        ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value,
    );
  /** Every sample but histograms', by its selector without the prefix: `open_connections`, `drain_phase{phase="idle"}`. */
  const samples: Record<string, number> = {};
  for (const family of families.filter((f) => f.type !== "HISTOGRAM"))
    for (const { labels, value } of family.metrics as { labels?: Record<string, string>; value: string }[]) {
      const selector = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${v}"`);
      samples[family.name.slice("envoy_shutdown_manager_".length) + (selector.length ? `{${selector}}` : "")] = Number(value);
    }
  return { families, value, samples };
}

describe("/metrics", () => {
  test("follows the drain from idle to drained", async () => {
    const fake = await fakeEnvoy(closesAfter(3, 300));
    const manager = await startManager(fastDrain(fake.adminAddress, ["--min-open-connections", "0"]).args);
    const idle = await scrape(manager.url);
    expect(idle.samples).toMatchObject({
      'drain_phase{phase="idle"}': 1,
      'drain_phase{phase="draining"}': 0,
      [`build_info{version="${version}"}`]: 1,
      'drains_total{phase="drained",reason="threshold"}': 0,
    });
    expect(idle.families.find((f) => f.name === "envoy_shutdown_manager_open_connections")?.metrics).toEqual([]);

    const shutdown = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => line.open_connections === 3);
    const draining = await scrape(manager.url);
    expect(draining.samples).toMatchObject({ 'drain_phase{phase="draining"}': 1, open_connections: 3, shutdown_waiters: 1 });
    expect(draining.value("drain_start_time_seconds")).toBeCloseTo(Date.now() / 1000, -1);

    await within(5000, shutdown);
    const drained = await scrape(manager.url);
    expect(drained.samples).toMatchObject({
      'drain_phase{phase="drained"}': 1,
      open_connections: 0,
      healthcheck_fail_posts_total: 1,
      shutdown_waiters: 0,
      'admin_errors_total{kind="timeout"}': 0,
      'drains_total{phase="drained",reason="threshold"}': 1,
      'drains_total{phase="timed_out",reason="timeout"}': 0,
    });
    expect(drained.value("polls_total")).toBeGreaterThanOrEqual(2);
    expect(drained.value("drain_duration_seconds")).toBeGreaterThanOrEqual(0.3);
    const histogram = drained.families.find((f) => f.name === "envoy_shutdown_manager_drain_seconds");
    expect(histogram?.type).toBe("HISTOGRAM");
    expect((histogram?.metrics[0] as { count?: string } | undefined)?.count).toBe("1");
  });

  test("counts admin errors by kind and heals", async () => {
    const fake = await fakeEnvoy({ healthCheckFailed: true, connections: 0 });
    fake.setFault("/stats", { kind: "status", status: 500 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    await manager.waitForLog((line) => line.msg === "Envoy is LIVE again");
    void fetch(`${manager.url}/shutdown`).catch(() => "stopped with the test");
    await manager.waitForLog((line) => line.error_kind === "http_status");
    const { value } = await scrape(manager.url);
    expect(value("heals_total")).toBe(1);
    expect(value("admin_errors_total", { kind: "http_status" })).toBeGreaterThanOrEqual(1);
    expect(value("drain_phase", { phase: "draining" })).toBe(1);
  });
});

describe("/status and the status command", () => {
  test("report the same facts, as JSON and readably", async () => {
    const fake = await fakeEnvoy({ connections: 0 });
    const manager = await startManager(fastDrain(fake.adminAddress).args);
    await within(5000, fetch(`${manager.url}/shutdown`));
    const report = (await (await fetch(`${manager.url}/status`)).json()) as Record<string, unknown>;
    expect(report).toMatchObject({
      phase: "drained",
      reason: "threshold",
      open_connections: 0,
      waiters: 0,
      version,
      check_interval: "100ms",
    });
    const readable = spawnCli(["status", "--serve-port", String(manager.port)]);
    const [code, text] = await Promise.all([readable.exited, readable.stdout()]);
    expect(code).toBe(0);
    expect(text).toContain("phase:             drained (threshold)");
    expect(text).toContain("open connections:  0 (threshold 0)");
    const json = spawnCli(["status", "--serve-port", String(manager.port), "--json"]);
    expect(JSON.parse(await json.stdout())).toMatchObject({ phase: "drained", polls: report.polls });
  });

  test("while new connections keep arriving, /status, status and /metrics say where, and how long ago the last came", async () => {
    const fake = await fakeEnvoy({ connections: 2 });
    const manager = await startManager(fastDrain(fake.adminAddress, ["--quiet-period", "1s", "--check-interval", "200ms"]).args);
    // A load balancer still sending: short connections come and go on the main listener.
    let open = 2;
    const sending = setInterval(() => {
      open = open === 2 ? 3 : 2;
      fake.setConnections(open);
    }, 50);
    onTeardown(() => clearInterval(sending));
    const shutdown = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => String(line.msg).includes("still receiving"));
    const report = (await (await fetch(`${manager.url}/status`)).json()) as StatusReport;
    expect(report.phase).toBe("draining");
    expect(report.new_connections).toBeGreaterThan(0);
    expect(Object.keys(report.new_connections_by_listener)).toEqual(["0.0.0.0_8080"]);
    expect(report.seconds_since_last_new_connection).toBeLessThan(1);
    expect(report.connections_by_listener["0.0.0.0_8080"]).toBeGreaterThanOrEqual(2);
    const readable = spawnCli(["status", "--serve-port", String(manager.port)]);
    expect(await readable.stdout()).toMatch(/new connections: {3}\d+ in the last check interval \(0\.0\.0\.0_8080=\d+\), last /);
    const { value } = await scrape(manager.url);
    expect(value("listener_new_connections", { listener: "0.0.0.0_8080" })).toBeGreaterThan(0);
    expect(value("listener_open_connections", { listener: "0.0.0.0_8080" })).toBeGreaterThanOrEqual(2);
    expect(value("last_new_connection_time_seconds")).toBeCloseTo(Date.now() / 1000, 0);
    // The load balancer stops; the connections close: the drain ends a quiet period later.
    clearInterval(sending);
    fake.setConnections(0);
    const stoppedAt = Date.now();
    expect((await within(5000, shutdown)).status).toBe(200);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(900);
  });

  test("status with no sidecar listening is one line and exit 1", async () => {
    const cli = spawnCli(["status", "--serve-port", "1"]);
    expect(await cli.exited).toBe(1);
    expect(cli.stderrText().trim().split("\n")).toHaveLength(1);
    expect(cli.stderrText()).toContain("no sidecar answers at http://127.0.0.1:1/status");
  });

  test("status never follows a redirect: the answer is not a sidecar's, said in one line, exit 1", async () => {
    const redirecting = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(null, { status: 302, headers: { location: "http://127.0.0.1:1/status" } }),
    });
    onTeardown(() => redirecting.stop(true));
    const cli = spawnCli(["status", "--serve-port", String(redirecting.port)]);
    expect(await within(5000, cli.exited)).toBe(1);
    expect(cli.stderrText().trim().split("\n")).toHaveLength(1);
    expect(cli.stderrText()).toContain("answered HTTP 302");
  });

  test("a /status document of another form is named in one line, exit 1; --json prints it as it is", async () => {
    const partial = { phase: "drained", settings: null };
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json(partial) });
    onTeardown(() => server.stop(true));
    const cli = spawnCli(["status", "--serve-port", String(server.port)]);
    expect(await within(5000, cli.exited)).toBe(1);
    expect(cli.stderrText().trim().split("\n")).toEqual([
      `envoy-shutdown-manager: the sidecar on 127.0.0.1:${server.port} speaks no hand-off protocol of this release (a previous release: its /status has no handoff_protocol); --json prints its answer as it is`,
    ]);
    const json = spawnCli(["status", "--serve-port", String(server.port), "--json"]);
    expect(await within(5000, json.exited)).toBe(0);
    expect(JSON.parse(await json.stdout())).toEqual(partial);
  });

  test("a /status of this protocol whose split is of another form, or a body cut short, is one line and exit 1", async () => {
    const status = (await (await fetch(`${(await sidecarScenario()).url}/status`)).json()) as Record<string, unknown>;
    for (const body of [JSON.stringify({ ...status, traffic: {} }), JSON.stringify(status).slice(0, 40)]) {
      const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(body) });
      onTeardown(() => server.stop(true));
      const cli = spawnCli(["status", "--serve-port", String(server.port)]);
      expect(await within(5000, cli.exited)).toBe(1);
      expect(cli.stderrText().trim().split("\n")).toHaveLength(1);
      expect(cli.stderrText()).not.toContain("unexpected error");
      expect(cli.stderrText()).not.toContain("Parse error");
    }
  });
});

describe("logs", () => {
  /** Configures the shared logger to collect its lines for this test only. */
  async function collectLogs(options: Omit<LoggingOptions, "write" | "terminal">): Promise<string[]> {
    const lines: string[] = [];
    await configureLogging({ ...options, write: (line) => lines.push(line), terminal: false });
    onTeardown(() => log.setReporters([]));
    return lines;
  }

  test("JSON lines carry time, level, message and fields; --log-level filters", async () => {
    const lines = await collectLogs({ level: "warn", format: "json" });
    log.info("hidden", { open_connections: 1 });
    log.warn("drain timed out", { open_connections: 4, min_open_connections: 0, elapsed: "5s" });
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? "");
    expect(line).toMatchObject({ level: "warn", msg: "drain timed out", open_connections: 4, min_open_connections: 0, elapsed: "5s" });
    expect(new Date(line.time).getTime()).toBeCloseTo(Date.now(), -4);
  });

  test("text lines are readable key=value", async () => {
    const lines = await collectLogs({ level: "info", format: "text" });
    log.info("open connections", { open_connections: 2, elapsed: "1s" });
    expect(lines.join("")).toMatch(/^\d\d:\d\d:\d\d INFO {2}open connections open_connections=2 elapsed=1s\n$/);
  });

  test("a message that looks like a format string is written as it is", async () => {
    const lines = await collectLogs({ level: "info", format: "text" });
    log.info("100%s done %d");
    expect(lines.join("")).toContain("INFO  100%s done %d");
  });

  test("exec hook lines are mirrored to PID 1's stdout in Kubernetes", async () => {
    expect(containerLogMirror({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, 42)).toBe("/proc/1/fd/1");
    expect(containerLogMirror({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, 1)).toBeUndefined();
    expect(containerLogMirror({}, 42)).toBeUndefined();
    const mirror = join(tempDir(), "pid1-stdout");
    await collectLogs({ level: "info", format: "json", mirrorPath: mirror });
    log.info("drain complete", { reason: "threshold" });
    expect(JSON.parse(readFileSync(mirror, "utf8"))).toMatchObject({ msg: "drain complete", reason: "threshold" });
  });

  test("the shutdown command off a terminal logs one JSON line per poll", async () => {
    const fake = await fakeEnvoy({
      connections: 3,
      timeline: [
        { afterFailMs: 250, connections: 1 },
        { afterFailMs: 450, connections: 0 },
      ],
    });
    const cli = spawnCli(["shutdown", "--serve-port", "0", ...fastDrain(fake.adminAddress).args]);
    expect(await within(5000, cli.exited)).toBe(0);
    const polls = cli.lines.filter((line) => line.msg === "open connections");
    expect(polls).toHaveLength(fake.calls("/stats").length);
    expect(polls.map((line) => line.open_connections)).toEqual(expect.arrayContaining([3, 1, 0]));
    expect(polls.at(-1)).toMatchObject({ level: "info", open_connections: 0, min_open_connections: 0 });
  });
});

/** Runs a command in a pseudo-terminal (`script`), as an operator's shell would, and returns what it printed. */
async function onTerminal(command: string[], env: Record<string, string>): Promise<string> {
  const tty = Bun.spawn(["script", "-qec", command.map((a) => `'${a}'`).join(" "), "/dev/null"], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: { ...process.env, ...env },
  });
  const [code, output] = await within(10_000, Promise.all([tty.exited, new Response(tty.stdout).text()]));
  expect(code).toBe(0);
  return output;
}

describe("progress", () => {
  const report = (openConnections: number, remainingMs?: number): PollReport => ({
    openConnections,
    minOpenConnections: 1,
    elapsedMs: 1500,
    remainingMs,
    byListener: new Map(),
    newConnections: new Map(),
    newConnectionsOverMs: 0,
  });

  test("rewrites one terminal line with connections left, threshold, elapsed and deadline", () => {
    let written = "";
    const line = progressLine({ write: (text: string) => (written += text) } as unknown as NodeJS.WriteStream);
    line.update(report(5, 30_000));
    line.update(report(1));
    line.end();
    expect(written).toBe(
      "\r\x1b[2Kdraining: 5 open connections (done at ≤ 1), 1.5s elapsed, 30s left" +
        "\r\x1b[2Kdraining: 1 open connection (done at ≤ 1), 1.5s elapsed, no deadline\n",
    );
  });

  test("the shutdown command on a terminal shows the progress line", async () => {
    const fake = await fakeEnvoy(closesAfter(2, 300));
    const command = [
      ...SOURCE_CLI,
      "shutdown",
      "--serve-port",
      "0",
      "--log-format",
      "text",
      ...fastDrain(fake.adminAddress, ["--drain-timeout", "1m"]).args,
    ];
    const output = await onTerminal(command, { NO_COLOR: "" });
    expect(output).toContain("\r\x1b[2Kdraining: 2 open connections (done at ≤ 0)");
    expect(output).toMatch(/draining: 0 open connections \(done at ≤ 0\), [\d.]+m?s elapsed, [\d.]+s left/);
  });

  test("with NO_COLOR set, a terminal gets plain log lines and no escape codes", async () => {
    const fake = await fakeEnvoy(closesAfter(1, 200));
    const command = [...SOURCE_CLI, "shutdown", "--serve-port", "0", "--log-format", "text", ...fastDrain(fake.adminAddress).args];
    const output = await onTerminal(command, { NO_COLOR: "1" });
    expect(output).toContain("INFO  open connections open_connections=0");
    expect(output).not.toContain("\x1b[");
  });
});

/** Runs a demo as `npm run demo` does, off a terminal: its exit code, stdout and stderr. */
async function runDemo(file: string): Promise<[number, string, string]> {
  const demo = Bun.spawn([process.execPath, new URL(`../demo/${file}`, import.meta.url).pathname], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  return within(30_000, Promise.all([demo.exited, new Response(demo.stdout).text(), new Response(demo.stderr).text()]));
}

describe("the demos", () => {
  test("demo:run: the supervisor drains live clients on SIGTERM, then stops Envoy", async () => {
    const [code, stdout] = await runDemo("demo-run.ts");
    expect(code).toBe(0);
    expect(stdout).toMatch(/the supervisor exited 0 after [\d.]+ s: 0 client connections still open, 0 failed requests/);
    expect(stdout).not.toContain("\x1b[");
  }, 40_000);

  test("drains live keep-alive clients to zero and exits 0", async () => {
    const [code, stdout, stderr] = await runDemo("demo.ts");
    expect(code).toBe(0);
    expect(stdout).toContain("12 keep-alive clients connected");
    expect(stdout).toMatch(/shutdown exited 0 after [\d.]+ s: 0 connections left, \/healthcheck\/fail posted 1 time/);
    const counts = [...stderr.matchAll(/open_connections=(\d+)/g)].map((m) => Number(m[1]));
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts.at(-1)).toBe(0);
  }, 40_000);
});

describe("what holds a drain that ends on traffic", () => {
  test("/status, status and /metrics split open connections; a spent budget names the long-lived sessions it leaves", async () => {
    const fake = await fakeEnvoy({ mode: "live" });
    const manager = await startManager(
      fastDrain(fake.adminAddress, ["--no-count-idle-connections", "--long-lived-budget", "1500ms", "--drain-timeout", "20s"]).args,
    );
    await openClients(fake.dataPort, 2);
    const upgrade = await Bun.connect({ hostname: "127.0.0.1", port: fake.dataPort, socket: { data() {} } });
    onTeardown(() => upgrade.end());
    upgrade.write("GET /chat HTTP/1.1\r\nhost: app\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
    const shutdown = fetch(`${manager.url}/shutdown`);
    await manager.waitForLog((line) => line.long_lived === 1);
    const draining = (await (await fetch(`${manager.url}/status`)).json()) as StatusReport;
    expect(draining.traffic).toEqual({
      busy: 0,
      idle: 2,
      long_lived: 1,
      non_http: 0,
      by_listener: { ingress_http: { busy: 0, idle: 2, long_lived: 1 } },
    });
    expect((await shutdown).status).toBe(200);
    const done = await manager.waitForLog((line) => String(line.msg).startsWith("drain complete"));
    expect(done.msg).toBe(
      "drain complete; 1 long-lived session left to be cut when Envoy exits (upgraded, or in flight for over 1.5s): ingress_http=1",
    );
    const { samples } = await scrape(manager.url);
    expect(samples).toMatchObject({
      'drains_total{phase="drained",reason="long_lived"}': 1,
      'traffic_connections{kind="idle"}': 2,
      'traffic_connections{kind="long_lived"}': 1,
      'listener_traffic_connections{listener="ingress_http",kind="long_lived"}': 1,
    });
    const status = spawnCli(["status", "--serve-port", String(manager.port)]);
    expect(await status.exited).toBe(0);
    expect(await status.stdout()).toContain("carrying:        busy 0, idle 2, long-lived 1, non-HTTP 0");
  });
});
