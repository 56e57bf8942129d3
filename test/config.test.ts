import { describe, expect, test } from "bun:test";
import { envName, loadConfig, OPTIONS, type OptionName } from "../src/config.ts";
import { parseDuration } from "../src/duration.ts";
import { UsageError } from "../src/errors.ts";
import { spawnCli } from "./support/process.ts";

describe("defaults", () => {
  test("every flag has the documented default", () => {
    const config = loadConfig({}, {});
    expect(config).toEqual({
      adminAddress: { baseURL: "http://127.0.0.1:9001", display: "127.0.0.1:9001" },
      adminTimeoutMs: 2000,
      adminUnreachableThreshold: 3,
      drainDelayMs: 0,
      checkDelayMs: 60_000,
      checkIntervalMs: 5000,
      minOpenConnections: 0,
      drainTimeoutMs: 0,
      drainListeners: false,
      connectionStat: "listener",
      ignoreListeners: [/_8002$/, /_19001$/, /_19003$/],
      readyFile: "/admin/ok",
      servePort: 8090,
      serveAddress: "0.0.0.0",
      shutdownToken: undefined,
      healOnStart: true,
      logLevel: "info",
      logFormat: "auto",
    });
  });

  test("the flag wins over the environment, which wins over the default", () => {
    const env = { ENVOY_SHUTDOWN_CHECK_INTERVAL: "2s", ENVOY_SHUTDOWN_DRAIN_TIMEOUT: "1m30s" };
    const config = loadConfig({ "check-interval": "250ms" }, env);
    expect(config.checkIntervalMs).toBe(250);
    expect(config.drainTimeoutMs).toBe(90_000);
  });

  test("every option reads an ENVOY_SHUTDOWN_ variable", () => {
    expect(envName("check-interval")).toBe("ENVOY_SHUTDOWN_CHECK_INTERVAL");
    expect(envName("shutdown-token")).toBe("ENVOY_SHUTDOWN_SHUTDOWN_TOKEN");
    expect(loadConfig({}, { ENVOY_SHUTDOWN_HEAL_ON_START: "false" }).healOnStart).toBe(false);
    expect(loadConfig({}, { ENVOY_SHUTDOWN_SHUTDOWN_TOKEN: "t0k" }).shutdownToken).toBe("t0k");
    expect(loadConfig({ "drain-listeners": true }, {}).drainListeners).toBe(true);
  });
});

describe("Go durations", () => {
  test.each([
    ["0", 0],
    ["300ms", 300],
    ["5s", 5000],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["250us", 0.25],
  ])("%p is %p ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(["5", "-1s", "abc", "", "5 s", "1d", "s", "+5s", "0.0"])("%p is rejected", (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});

describe("admin addresses", () => {
  test.each([
    ["127.0.0.1:9001", { baseURL: "http://127.0.0.1:9001", display: "127.0.0.1:9001" }],
    ["http://localhost:19000", { baseURL: "http://localhost:19000", display: "http://localhost:19000" }],
    ["[::1]:9001", { baseURL: "http://[::1]:9001", display: "[::1]:9001" }],
    ["/admin/admin.sock", { baseURL: "http://localhost", socketPath: "/admin/admin.sock", display: "/admin/admin.sock" }],
  ])("%p", (text, expected) => expect(loadConfig({ "admin-address": text }, {}).adminAddress).toEqual(expected));
});

const REJECTED: [OptionName, string][] = [
  ["admin-address", "localhost"],
  ["admin-address", "https://127.0.0.1:9001"],
  ["admin-address", "admin.sock"],
  ["admin-address", "http://127.0.0.1:9001/stats"],
  ["admin-timeout", "0"],
  ["admin-timeout", "2"],
  ["admin-unreachable-threshold", "0"],
  ["admin-unreachable-threshold", "-3"],
  ["drain-delay", "5"],
  ["drain-delay", "-1s"],
  ["check-delay", "abc"],
  ["check-interval", "0"],
  ["check-interval", "5"],
  ["min-open-connections", "-1"],
  ["min-open-connections", "1.5"],
  ["min-open-connections", "many"],
  ["drain-timeout", "10"],
  ["drain-listeners", "maybe"],
  ["connection-stat", "tcp"],
  ["ignore-listeners", "(unclosed"],
  ["serve-port", "65536"],
  ["serve-port", "-1"],
  ["serve-port", "http"],
  ["heal-on-start", "sometimes"],
  ["log-level", "verbose"],
  ["log-format", "xml"],
];

describe("rejected values", () => {
  test.each(REJECTED)("--%s %p is a usage error naming the flag", (option, value) => {
    expect(() => loadConfig({ [option]: value }, {})).toThrow(UsageError);
    expect(() => loadConfig({ [option]: value }, {})).toThrow(`--${option}`);
  });

  test.each(REJECTED)("%s from the environment (%p) names the variable", (option, value) => {
    expect(() => loadConfig({}, { [envName(option)]: value })).toThrow(envName(option));
  });

  test("every option with a fixed kind has a rejected value in the table", () => {
    const covered = new Set(REJECTED.map(([option]) => option));
    const uncovered = (Object.keys(OPTIONS) as OptionName[]).filter((option) => !covered.has(option));
    expect(uncovered.sort()).toEqual(["ready-file", "serve-address", "shutdown-token"]);
  });
});

describe("the CLI on bad usage", () => {
  test.each([
    [["shutdown", "--check-interval", "5"], /--check-interval "5" is not valid: expected a Go duration .*5s/],
    [["shutdown", "--bogus"], /unknown flag --bogus/],
    [["shutdown", "--no-check-delay"], /unknown flag --no-check-delay/],
    [["shutdown", "--check-delay"], /flag --check-delay needs a value/],
    [["shutdown", "extra"], /unexpected argument "extra"/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["shutdown-manager", "--serve-port", "99999"], /--serve-port "99999" is not valid/],
  ])("%p exits 2 with one line", async (args, message) => {
    const cli = spawnCli(args);
    expect(await cli.exited).toBe(2);
    const stderr = cli.stderrText();
    expect(stderr).toMatch(message);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).not.toContain("    at ");
  });

  test("--help on each command lists every flag with its default", async () => {
    for (const command of ["shutdown-manager", "shutdown"]) {
      const cli = spawnCli([command, "--help"]);
      const [code, help] = await Promise.all([cli.exited, cli.stdout()]);
      expect(code).toBe(0);
      for (const flag of ["--admin-address", "--check-interval", "--drain-timeout", "--min-open-connections", "--ready-file"]) {
        expect(help).toContain(flag);
      }
      expect(help).toContain("(default: 5s; env ENVOY_SHUTDOWN_CHECK_INTERVAL)");
      expect(help).toContain("EXAMPLES");
    }
  });
});
