import { describe, expect, test } from "bun:test";
import { options as sidecarCommand } from "../src/cli/commands/shutdown-manager.ts";
import { envName, readOptions, UsageError } from "../src/cli/option-kinds.ts";
import { MAX_DURATION_MS, parseDuration } from "../src/duration.ts";
import { tempDir } from "./support/fixtures.ts";
import { spawnCli } from "./support/process.ts";

/** The sidecar's settings from argv and environment (the sidecar takes every flag the hook does, and more). */
const read = (argv: string[] = [], env: Record<string, string> = {}) => readOptions(sidecarCommand, argv, env);

describe("defaults", () => {
  test("every flag has the documented default", () => {
    expect(read()).toEqual({
      admin: {
        address: { baseURL: "http://127.0.0.1:9001", display: "127.0.0.1:9001" },
        timeoutMs: 2000,
        connectionStat: "listener",
        ignoreListeners: [/_8002$/, /_19001$/, /_19003$/],
      },
      drain: {
        drainDelayMs: 0,
        checkDelayMs: 10_000,
        checkIntervalMs: 5000,
        minOpenConnections: 0,
        drainTimeoutMs: 0,
        drainListeners: false,
        minDrainMs: 0,
        healthCheckFailDelayMs: 0,
        quietPeriodMs: 2000,
        quietConnections: 0,
        countIdleConnections: false,
        longLivedBudgetMs: 10_000,
        adminUnreachableThreshold: 3,
      },
      handoff: { servePort: 8090, readyFile: "/admin/ok", shutdownToken: undefined },
      sidecar: { serveAddress: "0.0.0.0", healOnStart: true, hookWaitMs: 5000 },
      events: { podEvents: false, podGracePeriod: true },
      log: { level: "info", format: "auto" },
    });
  });

  test("the flag wins over the environment, which wins over the default", () => {
    const settings = read(["--check-interval", "250ms"], { ENVOY_SHUTDOWN_CHECK_INTERVAL: "2s", ENVOY_SHUTDOWN_DRAIN_TIMEOUT: "1m30s" });
    expect(settings.drain.checkIntervalMs).toBe(250);
    expect(settings.drain.drainTimeoutMs).toBe(90_000);
  });

  test("every option reads an ENVOY_SHUTDOWN_ variable", () => {
    expect(envName("check-interval")).toBe("ENVOY_SHUTDOWN_CHECK_INTERVAL");
    expect(read([], { ENVOY_SHUTDOWN_SHUTDOWN_TOKEN: "t0k" }).handoff.shutdownToken).toBe("t0k");
    expect(read([], { ENVOY_SHUTDOWN_HOOK_WAIT: "0" }).sidecar.hookWaitMs).toBe(0);
  });
});

describe("booleans: one grammar for flags and variables", () => {
  test.each([
    ["true", true],
    ["1", true],
    ["YES", true],
    ["false", false],
    ["0", false],
    ["No", false],
  ])("%p is %p as --flag=VALUE and as a variable", (text, value) => {
    expect(read([`--drain-listeners=${text}`]).drain.drainListeners).toBe(value);
    expect(read([], { ENVOY_SHUTDOWN_DRAIN_LISTENERS: text }).drain.drainListeners).toBe(value);
    expect(read([`--heal-on-start=${text}`]).sidecar.healOnStart).toBe(value);
  });

  test("--flag alone is true and --no-flag is false", () => {
    expect(read(["--drain-listeners"]).drain.drainListeners).toBe(true);
    expect(read(["--no-heal-on-start"]).sidecar.healOnStart).toBe(false);
  });

  test("the last of --no-x and --x wins, whatever the order", () => {
    expect(read(["--no-drain-listeners", "--drain-listeners"]).drain.drainListeners).toBe(true);
    expect(read(["--drain-listeners", "--no-drain-listeners"]).drain.drainListeners).toBe(false);
    expect(read(["--check-interval", "1s", "--check-interval", "2s"]).drain.checkIntervalMs).toBe(2000);
  });

  test.each(["maybe", "", "2", "on"])("--drain-listeners=%p is a usage error, never true", (text) => {
    expect(() => read([`--drain-listeners=${text}`])).toThrow(UsageError);
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
    ["2µs", 0.002],
    [".5s", 500],
    ["1h2m3s4ms", 3_723_004],
    ["+5s", 5000],
    ["+0", 0],
  ])("%p is %p ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(["5", "-1s", "abc", "", "5 s", "1d", "s", "+", "++5s", "+-5s", "0.0", ".s", "1e3s", "5sx", "1.2.3s", "1m1"])(
    "%p is rejected",
    (text) => expect(parseDuration(text)).toBeUndefined(),
  );

  test("the longest a timer can hold is accepted; a millisecond more is a usage error", () => {
    expect(read(["--drain-timeout", `${MAX_DURATION_MS}ms`]).drain.drainTimeoutMs).toBe(MAX_DURATION_MS);
    for (const flag of ["--check-interval", "--drain-timeout", "--admin-timeout", "--check-delay", "--drain-delay", "--hook-wait"]) {
      expect(() => read([flag, `${MAX_DURATION_MS + 1}ms`])).toThrow("at most 596h31m23.647s");
      expect(() => read([flag, "600h"])).toThrow(UsageError);
    }
  });
});

describe("admin addresses", () => {
  test.each([
    ["127.0.0.1:9001", { baseURL: "http://127.0.0.1:9001", display: "127.0.0.1:9001" }],
    ["http://localhost:19000", { baseURL: "http://localhost:19000", display: "http://localhost:19000" }],
    ["http://localhost:19000/", { baseURL: "http://localhost:19000", display: "http://localhost:19000/" }],
    ["[::1]:9001", { baseURL: "http://[::1]:9001", display: "[::1]:9001" }],
    ["/admin/admin.sock", { baseURL: "http://localhost", socketPath: "/admin/admin.sock", display: "/admin/admin.sock" }],
  ])("%p", (text, expected) => expect(read(["--admin-address", text]).admin.address).toEqual(expected));
});

const REJECTED: [flag: string, value: string][] = [
  ["admin-address", "localhost"],
  ["admin-address", "http://127.0.0.1"],
  ["admin-address", "127.0.0.1:0"],
  ["admin-address", "127.0.0.1:65536"],
  ["admin-address", "https://127.0.0.1:9001"],
  ["admin-address", "admin.sock"],
  // Longer than a socket address holds (107 bytes).
  ["admin-address", `/${"a".repeat(107)}`],
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
  ["check-interval", "1ns"],
  ["check-interval", "99ms"],
  ["shutdown-token", "tökén"],
  ["shutdown-token", "two words"],
  // Empty (an empty Secret key) would turn authorization off in silence.
  ["shutdown-token", ""],
  ["min-open-connections", "-1"],
  ["min-open-connections", "1.5"],
  ["min-open-connections", "many"],
  ["drain-timeout", "10"],
  ["drain-listeners", "maybe"],
  ["count-idle-connections", "maybe"],
  ["long-lived-budget", "10"],
  ["connection-stat", "tcp"],
  ["ignore-listeners", "(unclosed"],
  ["serve-port", "65536"],
  ["serve-port", "-1"],
  ["serve-port", "http"],
  ["heal-on-start", "sometimes"],
  ["hook-wait", "soon"],
  ["min-drain-duration", "10"],
  ["health-check-fail-delay", "-2s"],
  ["quiet-period", "2"],
  ["quiet-connections", "-1"],
  ["pod-events", "sometimes"],
  ["pod-grace-period", "sometimes"],
  ["log-level", "verbose"],
  ["log-format", "xml"],
];

describe("rejected values", () => {
  test.each(REJECTED)("--%s %p is a usage error naming the flag", (flag, value) => {
    expect(() => read([`--${flag}=${value}`])).toThrow(UsageError);
    expect(() => read([`--${flag}=${value}`])).toThrow(`--${flag}`);
  });

  test.each(REJECTED)("%s from the environment (%p) names the variable", (flag, value) => {
    expect(() => read([], { [envName(flag)]: value })).toThrow(envName(flag));
  });

  test("every flag with a form to check has a rejected value in the table", () => {
    const covered = new Set(REJECTED.map(([flag]) => flag));
    const flags = Object.values(sidecarCommand).flatMap((group) => Object.values(group).map((option) => option.flag));
    // The ready file's one rule (not a directory) is checked at start: see the test below.
    expect(flags.filter((flag) => !covered.has(flag)).sort()).toEqual(["ready-file", "serve-address"]);
  });

  test("an empty --serve-address is refused (Bun would listen on every interface); an empty variable is unset", () => {
    expect(() => read(["--serve-address="])).toThrow('--serve-address "" is not valid: expected an IP address or a host name');
    expect(read([], { ENVOY_SHUTDOWN_SERVE_ADDRESS: "" }).sidecar.serveAddress).toBe("0.0.0.0");
  });

  test("a ready file path that is a directory is rejected before anything starts, by every command that takes one", async () => {
    for (const command of ["shutdown-manager", "shutdown"]) {
      const cli = spawnCli([command, "--serve-port", "0", "--ready-file", tempDir()]);
      expect(await cli.exited).toBe(2);
      expect(cli.stderrText()).toMatch(/--ready-file ".+" is a directory/);
    }
  });
});

describe("the CLI on bad usage", () => {
  test.each([
    [["shutdown", "--check-interval", "5"], /--check-interval "5" is not valid: expected a Go duration .*5s/],
    [["shutdown", "--check-interval", "600h"], /--check-interval "600h" is not valid: .*at most 596h31m23.647s/],
    [["shutdown", "--drain-listeners=0", "--check-interval", "0"], /--check-interval "0" is not valid/],
    [["shutdown", "--bogus"], /unknown flag --bogus/],
    [["shutdown", "--no-check-delay"], /unknown flag --no-check-delay/],
    [["shutdown", "--no-drain-listeners=1"], /--no-drain-listeners takes no value/],
    [["shutdown", "--check-delay"], /flag --check-delay needs a value/],
    [["shutdown", "extra"], /unexpected argument "extra"/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["shutdown-manager", "--serve-port", "99999"], /--serve-port "99999" is not valid/],
    [["status", "--json=perhaps"], /--json "perhaps" is not valid/],
    ...["[::1", " 127.0.0.1", "127.0.0.1:8090", "[::1]:8090", "::1%lo", ":::", "256.0.0.1", "127.1", "127.0.0.1.", "-"].map(
      (address): [string[], RegExp] => [
        ["shutdown-manager", "--serve-address", address],
        /--serve-address ".+" is not valid: expected an IP address or a host name, without a port/,
      ],
    ),
    [["status", "--serve-port", "0"], /--serve-port "0" is not valid: expected a whole number from 1 to 65535/],
    [["envoy"], /envoy takes a command: shutdown-manager, shutdown/],
    [["envoy", "frobnicate"], /unknown command "envoy frobnicate"/],
    [
      ["shutdown", "--min-drain-duration", "1m", "--drain-timeout", "30s"],
      /--min-drain-duration 1m0s is not shorter than --drain-timeout 30s/,
    ],
    [["shutdown", "--check-interval", "1ns"], /--check-interval "1ns" is not valid: expected a Go duration of at least 100ms/],
    [["shutdown-manager", "--shutdown-token", "tökén"], /--shutdown-token "tökén" is not valid: expected a token of visible ASCII/],
    // Settings under which no drain can complete, on this program's own command paths that drain.
    [
      ["shutdown", "--drain-delay", "1s", "--check-delay", "1s", "--quiet-period", "0s", "--drain-timeout", "2s"],
      /--drain-delay 1s \+ --check-delay 1s is not shorter than --drain-timeout 2s: the first connection count would come after the deadline/,
    ],
    [["shutdown-manager", "--quiet-period", "5s", "--drain-timeout", "5s"], /--quiet-period 5s is not shorter than --drain-timeout 5s/],
    [["run", "--drain-timeout", "10s", "--", "true"], /--check-delay 10s is not shorter than --drain-timeout 10s/],
  ])("%p exits 2 with one line", async (args, message) => {
    const cli = spawnCli(args);
    expect(await cli.exited).toBe(2);
    const stderr = cli.stderrText();
    expect(stderr).toMatch(message);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).not.toContain("    at ");
  });

  test("a port in use is one line naming the flags, exit 2", async () => {
    const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const flags = ["--serve-address", "127.0.0.1", "--serve-port", String(taken.port)];
      const cli = spawnCli(["shutdown-manager", "--ready-file", `${tempDir()}/ready`, ...flags]);
      expect(await cli.exited).toBe(2);
      expect(cli.stderrText().trim().split("\n")).toEqual([
        `envoy-shutdown-manager: --serve-address "127.0.0.1" --serve-port ${taken.port}: cannot listen: the port is in use, or the address is not one of this machine's (see 'envoy-shutdown-manager shutdown-manager --help')`,
      ]);
    } finally {
      taken.stop(true);
    }
  });

  test("--help on each command lists its own flags with their defaults as written, in 80 columns and no escape codes in a pipe", async () => {
    const expected: Record<string, string[]> = {
      "shutdown-manager": ["--admin-address", "--check-interval", "--drain-timeout", "--hook-wait", "--serve-address", "default: 10s"],
      shutdown: ["--admin-address", "--check-interval", "--drain-timeout", "--min-open-connections", "--ready-file"],
      status: ["--serve-port", "--[no-]json", "Print the JSON document"],
      run: ["envoy-shutdown-manager run [OPTIONS] -- COMMAND...", "--stop-timeout", "--hot-restart"],
      check: ["envoy-shutdown-manager check [OPTIONS] PATH|-...", "ARGUMENTS", "--format=<table|json>", "--[no-]strict"],
    };
    for (const [command, words] of Object.entries(expected)) {
      // NO_COLOR unset on purpose: a pipe alone must be enough to turn colours off.
      const cli = spawnCli([command, "--help"], { env: { NO_COLOR: "" } });
      const [code, help] = await Promise.all([cli.exited, cli.stdout()]);
      expect(code).toBe(0);
      for (const word of words) expect(help).toContain(word);
      expect(help).toContain("EXAMPLES");
      expect(help).not.toContain("\x1b[");
      expect(help.split("\n").filter((line) => line.length > 80)).toEqual([]);
    }
  });

  test("the top-level help lists every command, `envoy` too, and `envoy --help` lists the dialect's commands alike", async () => {
    const top = spawnCli(["--help"], { env: { NO_COLOR: "" } });
    const topHelp = await top.stdout();
    for (const command of ["shutdown-manager", "shutdown", "status", "run", "check", "envoy"])
      expect(topHelp).toMatch(new RegExp(`^  ${command} `, "m"));
    expect(topHelp).not.toContain("\x1b[");
    const envoy = spawnCli(["envoy", "--help"]);
    const [envoyCode, envoyHelp] = await Promise.all([envoy.exited, envoy.stdout()]);
    expect(envoyCode).toBe(0);
    expect(envoyHelp).toContain("envoy-shutdown-manager envoy <COMMAND>");
    expect(envoyHelp).toMatch(/^COMMANDS\n\n {2}shutdown-manager +Contour's/m);
  });

  test.each([
    ["contour", "shutdown", "contour envoy shutdown [OPTIONS]", "--admin-port"],
    ["envoy-gateway", "shutdown-manager", "envoy-gateway envoy shutdown-manager [OPTIONS]", "--ready-timeout"],
  ])("started as %s, `envoy %s --help` names its own command line and flags", async (argv0, command, usage, flag) => {
    const cli = spawnCli(["envoy", command, "--help"], { argv0 });
    const help = await cli.stdout();
    expect(help).toContain(usage);
    expect(help).toContain(flag);
  });

  test("a sidecar that is not there is told in this program's words, not the runtime's", async () => {
    const { freePort } = await import("./support/clients.ts");
    const cli = spawnCli(["status", "--serve-port", String(freePort())]);
    expect(await cli.exited).toBe(1);
    expect(cli.stderrText()).toMatch(
      /^envoy-shutdown-manager: no sidecar answers at http:\/\/127\.0\.0\.1:\d+\/status: connection refused \(ECONNREFUSED\)\n$/,
    );
  });

  test("flags that shape only what a command prints read no environment variable, and help names none for them", async () => {
    const { options: checkOptions } = await import("../src/cli/commands/check.ts");
    const { options: statusOptions } = await import("../src/cli/commands/status.ts");
    expect(readOptions(checkOptions, [], { ENVOY_SHUTDOWN_FORMAT: "json", ENVOY_SHUTDOWN_STRICT: "true" }).check).toEqual({
      format: "table",
      strict: false,
    });
    expect(readOptions(statusOptions, [], { ENVOY_SHUTDOWN_JSON: "true" }).status.json).toBe(false);
    const help = await spawnCli(["status", "--help"]).stdout();
    expect(help).not.toContain("ENVOY_SHUTDOWN_JSON");
    expect(help).toContain("ENVOY_SHUTDOWN_SERVE_PORT");
  });
});
