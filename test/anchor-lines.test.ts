/**
 * Every flag of the anchors' data (src/cli/anchors.ts) through the compiled executable started under the tool's name,
 * against the fake Envoy: the sidecar as the tool's manifests start it, Envoy's preStop request waiting on it, and
 * the hook with every flag the data gives it, which drains Envoy itself (the hook leads on these command lines) in
 * the order the data says. Only the environment points the processes at the test's fake Envoy, ports and files.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type AdminCall, ANCHORS, type AnchorCommandName } from "../src/cli/anchors.ts";
import { type Dialect, ENVOY_COMMANDS } from "../src/cli/commands/envoy.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { MAX_DURATION_MS, parseDuration } from "../src/duration.ts";
import { compiledAs, compiledExecutable } from "./support/compiled.ts";
import type { RecordedRequest } from "./support/fake-envoy.ts";
import { fakeEnvoy, tempDir } from "./support/fixtures.ts";
import { spawnCli, within } from "./support/process.ts";

await compiledExecutable(); // built before the tests' clocks start

interface Pod {
  readyFile: string;
  adminAddress: string;
}

/**
 * A value for each flag of the data, short enough for a test: keyed `<dialect> <command> --<flag>`. A flag the data
 * gains without a value here fails the first test.
 */
const VALUES: Record<string, (pod: Pod) => string> = {
  "envoy-gateway shutdown-manager --ready-timeout": () => "20s",
  "envoy-gateway shutdown --health-check-failure-delay": () => "0s",
  "envoy-gateway shutdown --drain-timeout": () => "15s",
  "envoy-gateway shutdown --min-drain-duration": () => "1s",
  "envoy-gateway shutdown --exit-at-connections": () => "0",
  "contour shutdown-manager --ready-file": (pod) => pod.readyFile,
  "contour shutdown-manager --serve-port": () => "0",
  "contour shutdown-manager --log-format": () => "json",
  "contour shutdown --admin-address": (pod) => pod.adminAddress,
  "contour shutdown --admin-port": () => "9001",
  "contour shutdown --check-delay": () => "300ms",
  "contour shutdown --check-interval": () => "100ms",
  "contour shutdown --drain-delay": () => "300ms",
  "contour shutdown --min-open-connections": () => "0",
  "contour shutdown --ready-file": (pod) => pod.readyFile,
  "contour shutdown --log-format": () => "text",
};

const DIALECTS = Object.keys(ANCHORS) as Dialect[];
const COMMANDS: AnchorCommandName[] = ["shutdown-manager", "shutdown"];
const flagsOf = (dialect: Dialect, command: AnchorCommandName) =>
  [...ANCHORS[dialect].commands[command].flags, ...ANCHORS[dialect].global].map((entry) => entry.flag);

/** `envoy <command>` with every flag the data gives it, then `extra` (the last of a flag wins, as in the tools). */
function lineOf(dialect: Dialect, command: AnchorCommandName, pod: Pod, extra: readonly string[] = []): string[] {
  const flags = flagsOf(dialect, command).map((flag) => `--${flag}=${VALUES[`${dialect} ${command} --${flag}`]?.(pod)}`);
  return ["envoy", command, ...flags, ...extra];
}

/** The path Envoy's preStop request calls on the sidecar. */
const PRESTOP_PATH: Record<Dialect, string> = { contour: "/shutdown", "envoy-gateway": "/shutdown/ready" };

const sameCall = (request: RecordedRequest, call: AdminCall) =>
  request.method === call.method && request.path === call.path && (call.method === "GET" || request.query === (call.query ?? ""));

test("every flag of the data has a test value", () => {
  const flags = DIALECTS.flatMap((dialect) =>
    COMMANDS.flatMap((command) => flagsOf(dialect, command).map((flag) => `${dialect} ${command} --${flag}`)),
  );
  expect(Object.keys(VALUES).sort()).toEqual(flags.sort());
});

const sequences = DIALECTS.flatMap((dialect) =>
  ANCHORS[dialect].commands.shutdown.sequences.map((sequence) => [dialect, sequence.when, sequence] as const),
);

describe.each(sequences)("%s, %s: every flag of its commands, compiled, under its name", (dialect, _when, sequence) => {
  test("the sidecar changes nothing on Envoy, the hook makes the data's admin calls in order, and the preStop request is released", async () => {
    const dir = tempDir();
    const unixSocket = dialect === "contour" ? join(dir, "admin.sock") : undefined;
    const fake = await fakeEnvoy({ unixSocket, connections: 2, timeline: [{ afterFailMs: 300, connections: 0 }] });
    const pod = { readyFile: join(dir, "ready"), adminAddress: unixSocket ?? fake.adminAddress };
    // What the tool fixes in code (no flag) comes from the environment: loopback, a free port for the sidecar (port 0
    // also keeps the hook to itself), the test's fake Envoy and ready file.
    const env = {
      ENVOY_SHUTDOWN_ADMIN_ADDRESS: pod.adminAddress,
      ENVOY_SHUTDOWN_READY_FILE: pod.readyFile,
      ENVOY_SHUTDOWN_SERVE_PORT: "0",
      ENVOY_SHUTDOWN_SERVE_ADDRESS: "127.0.0.1",
    };
    const executable = await compiledAs(dialect);

    const sidecar = spawnCli(lineOf(dialect, "shutdown-manager", pod), { cli: [executable], env });
    const { port } = await sidecar.waitForLog((line) => line.msg === "shutdown-manager listening");
    const preStop = fetch(`http://127.0.0.1:${port}${PRESTOP_PATH[dialect]}`);
    await Bun.sleep(100);
    expect(fake.requests.filter((request) => request.method === "POST")).toEqual([]);

    const hookLine = lineOf(dialect, "shutdown", pod, sequence.flags);
    const { drain } = readOptions(ENVOY_COMMANDS[dialect].shutdown?.options ?? {}, hookLine.slice(2), env) as {
      drain: { drainDelayMs: number; checkDelayMs: number; healthCheckFailDelayMs: number; minDrainMs: number };
    };
    const started = Date.now();
    const hook = spawnCli(hookLine, { cli: [executable], env });
    expect(await within(20_000, hook.exited)).toBe(0);
    expect((await within(5000, preStop)).status).toBe(200);
    expect(existsSync(pod.readyFile)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(drain.minDrainMs);

    // The changes to Envoy, exactly and in order; counting by the data's path, only after the last of them.
    const posts = fake.requests.filter((request) => request.method === "POST");
    const expectedPosts = sequence.calls.filter((call) => call.method === "POST");
    expect(posts.map((request) => expectedPosts.findIndex((call) => sameCall(request, call)))).toEqual(expectedPosts.map((_, i) => i));
    const counted = sequence.calls.find((call) => call.method === "GET");
    // The sidecar reads Envoy's state at its start: the hook's counts are those after the hook started.
    const counts = fake.requests.filter((request) => request.at >= started && counted && sameCall(request, counted));
    expect(counts.length).toBeGreaterThan(0);
    const failedAt = fake.calls("/healthcheck/fail", "POST")[0]?.at ?? Number.NaN;
    expect(counts[0]?.at ?? 0).toBeGreaterThanOrEqual(posts.at(-1)?.at ?? Number.NaN);
    // The waits the flags ask for: before the failure, between listener drain and failure, before the first count.
    expect(failedAt - started).toBeGreaterThanOrEqual(drain.drainDelayMs + drain.healthCheckFailDelayMs);
    const drainedAt = fake.calls("/drain_listeners", "POST")[0]?.at;
    if (drainedAt !== undefined) expect(failedAt - drainedAt).toBeGreaterThanOrEqual(drain.healthCheckFailDelayMs);
    expect((counts[0]?.at ?? 0) - failedAt).toBeGreaterThanOrEqual(drain.checkDelayMs);
  });
});

describe.each(DIALECTS)("%s envoy … --help, compiled", (dialect) => {
  test.each(COMMANDS)("envoy %s lists the anchor's flags first, in its order, then this program's", async (command) => {
    const executable = await compiledAs(dialect);
    for (const help of ["--help", "-h"]) {
      const cli = spawnCli(["envoy", command, help], { cli: [executable] });
      const [code, out] = await Promise.all([cli.exited, cli.stdout()]);
      expect(code).toBe(0);
      const listed = [...out.matchAll(/^ {2}--([a-z][a-z-]*)/gm)].map((match) => match[1]);
      const flags = flagsOf(dialect, command);
      expect(listed.slice(0, flags.length)).toEqual(flags);
      expect(listed.length).toBeGreaterThan(flags.length);
    }
  });
});

describe("a flag the dialect does not take, compiled", () => {
  const refused = async (dialect: Dialect, args: string[]) => {
    const cli = spawnCli(args, { cli: [await compiledAs(dialect)] });
    const code = await within(5000, cli.exited);
    await cli.waitForLog((line) => String(line.raw).includes("unknown flag"), 5000); // stderr read to its line
    return { code, stderr: cli.stderrText() };
  };

  test("this program's own name for an anchor's flag: one line naming the tool's, exit 2", async () => {
    expect(await refused("envoy-gateway", ["envoy", "shutdown", "--health-check-fail-delay=5s"])).toEqual({
      code: 2,
      stderr:
        "envoy-shutdown-manager: unknown flag --health-check-fail-delay: Envoy Gateway's name for it is --health-check-failure-delay (see 'envoy-gateway envoy shutdown --help')\n",
    });
  });

  test("a flag the data does not know: one line naming the release this version follows, exit 2", async () => {
    const { code, stderr } = await refused("contour", ["envoy", "shutdown", "--drain-timeout-grace=5s"]);
    expect(code).toBe(2);
    expect(stderr).toStartWith(
      `envoy-shutdown-manager: unknown flag --drain-timeout-grace: not a flag of Contour's \`envoy shutdown\` up to ${ANCHORS.contour.read.release}`,
    );
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  });
});

describe("values the tools run with and this program could not do as written, compiled", () => {
  /** Runs a hook line under the tool's name against a fake Envoy with open connections; its exit, log and the calls. */
  const hookRun = async (dialect: Dialect, args: string[], { connections = 2 } = {}) => {
    const dir = tempDir();
    const fake = await fakeEnvoy({ connections });
    const readyFile = join(dir, "ready");
    const env = { ENVOY_SHUTDOWN_ADMIN_ADDRESS: fake.adminAddress, ENVOY_SHUTDOWN_READY_FILE: readyFile };
    const started = Date.now();
    const hook = spawnCli(args, { cli: [await compiledAs(dialect)], env });
    const code = await within(10_000, hook.exited);
    await hook.waitForLog((line) => /^drain (complete|timed out|failed)/.test(String(line.msg)), 5000); // read to its last line
    return { code, ms: Date.now() - started, lines: hook.lines, fake, ready: existsSync(readyFile) };
  };

  test("Envoy Gateway's --drain-timeout=0s gives up at its first count, as Envoy Gateway does: health checks failed, ready file written", async () => {
    const { code, ms, lines, fake, ready } = await hookRun("envoy-gateway", ["envoy", "shutdown", "--drain-timeout=0s"]);
    expect(code).toBe(1); // timed out, as docs/drop-in.md says of a passed --drain-timeout
    expect(ms).toBeLessThan(5000);
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(1);
    expect(fake.calls("/stats").length).toBeGreaterThan(0);
    expect(ready).toBe(true);
    const warnings = lines.filter((line) => line.level === "warn").map((line) => String(line.msg));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toBe("--drain-timeout at or below 100ms gives up at once: run as written, the deadline ends the drain");
    expect(warnings[1]).toStartWith("drain timed out within its minimum duration of 10s; connections still open");
  });

  test("a minimum drain duration past the deadline is one warning at start, and the deadline ends the drain", async () => {
    const args = ["envoy", "shutdown", "--health-check-failure-delay=200ms", "--min-drain-duration=30s", "--drain-timeout=1s"];
    const { code, ms, lines, fake, ready } = await hookRun("envoy-gateway", args, { connections: 0 });
    expect(code).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(8000);
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(1);
    expect(ready).toBe(true);
    expect(lines[0]?.msg).toBe(
      "--min-drain-duration 30s is not shorter than --drain-timeout 1s: every drain would time out: run as written, the deadline ends the drain",
    );
    expect(lines.at(-1)?.msg).toBe("drain timed out within its minimum duration of 30s; no connection open");
  });

  test("a deadline inside --health-check-failure-delay ends the drain before health checks are failed, as said at start", async () => {
    const args = ["envoy", "shutdown", "--health-check-failure-delay=2s", "--drain-timeout=1s"];
    const { code, lines, fake, ready } = await hookRun("envoy-gateway", args);
    expect([code, ready]).toEqual([1, true]);
    expect(String(lines[0]?.msg)).toEndWith(": run as written, the deadline ends the drain, before Envoy's health checks are failed");
    expect(fake.calls("/drain_listeners", "POST")).toHaveLength(1);
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(0);
  });

  test("durations Go takes and a timer cannot hold, or no wait, run instead of exiting 2", async () => {
    const gateway = await hookRun("envoy-gateway", ["envoy", "shutdown", "--drain-timeout=99999h", "--min-drain-duration=-5s"], {
      connections: 0,
    });
    expect([gateway.code, gateway.ready]).toEqual([0, true]);
    // Held to the longest timer, less the few milliseconds the hook spent asking for a sidecar before draining itself.
    const logged = parseDuration(String(gateway.lines.find((line) => line.msg === "drain started")?.drain_timeout));
    expect(MAX_DURATION_MS - (logged ?? 0)).toBeWithin(0, 1000);
    const contour = await hookRun("contour", ["envoy", "shutdown", "--check-interval=0s", "--check-delay=-1s"], { connections: 0 });
    expect([contour.code, contour.ready]).toEqual([0, true]);
  });

  test("Contour's --log-format before the command words is read as Contour reads it", async () => {
    const { code, lines, ready } = await hookRun("contour", ["--log-format", "text", "envoy", "--log-format=json", "shutdown"], {
      connections: 0,
    });
    expect([code, ready]).toEqual([0, true]);
    expect(lines.find((line) => line.msg === "drain complete")).toBeDefined();
  });
});
