/**
 * `envoy shutdown-manager` and `envoy shutdown`: the command lines of Contour's and Envoy Gateway's shutdown
 * managers, accepted unchanged, with their flags and defaults. Which one is meant is the name the executable was
 * started by (the image links both names to it): `envoy-gateway` for Envoy Gateway's, anything else for Contour's.
 */
import { type DrainSettings, FASTEST_POLL_MS } from "../../drain/settings.ts";
import { formatDuration, MAX_DURATION_MS, parseDuration } from "../../duration.ts";
import type { HookSettings } from "../../hook/hook.ts";
import type { SidecarSettings } from "../../sidecar/sidecar.ts";
import { ANCHORS, type AnchorCommandName, anchorFlagNote } from "../anchors.ts";
import { drainContradiction, type ProgramCommand } from "../command.ts";
import { alias, ignored, type Option, type OptionGroup, readOptions, UnknownFlag, UsageError } from "../option-kinds.ts";
import { adminOptions, drainOptions, eventOptions, handoffOptions, logOptions, sidecarOptions } from "../options.ts";
import { hookCommand } from "./shutdown.ts";
import { sidecarCommand } from "./shutdown-manager.ts";

export type Dialect = "contour" | "envoy-gateway";

/** The dialect the executable was started as, from argv[0]'s file name. */
export function dialectOf(argv0: string = process.argv0): Dialect {
  return argv0.slice(argv0.lastIndexOf("/") + 1) === "envoy-gateway" ? "envoy-gateway" : "contour";
}

/**
 * A command line with the tool's global flags that come before its command words (`contour --log-format=json envoy
 * shutdown`: kingpin takes them anywhere) moved after them, where the command reads them.
 */
export function globalFlagsAfterCommand(args: readonly string[], dialect: Dialect = dialectOf()): string[] {
  const globals = new Set(ANCHORS[dialect].global.map((entry) => `--${entry.flag}`));
  const words: string[] = [];
  const moved: string[] = [];
  let at = 0;
  while (at < args.length && words.length < 2) {
    const token = args[at] as string;
    const length = !globals.has(token.split("=")[0] as string) ? 0 : token.includes("=") ? 1 : 2;
    if (length === 0) words.push(token);
    else moved.push(...args.slice(at, at + length));
    at += Math.max(length, 1);
  }
  return words[0] === "envoy" && moved.length > 0 ? [...words, ...moved, ...args.slice(at)] : [...args];
}

/** One flag of an anchor's command, as src/cli/anchors.ts records it. */
function anchorFlag(dialect: Dialect, command: AnchorCommandName, flag: string) {
  const { tool, commands } = ANCHORS[dialect];
  const known = commands[command].flags.find((entry) => entry.flag === flag);
  if (!known) throw new Error(`${tool}'s envoy ${command} has no --${flag} in src/cli/anchors.ts`);
  return { tool, ...known };
}

/** An anchor's flag on one of this program's settings: its name, its default, its meaning. */
function anchored<T>(option: Option<T>, dialect: Dialect, command: AnchorCommandName, flag: string): Option<T> {
  const { tool, meaning, default: value } = anchorFlag(dialect, command, flag);
  return alias(option, { flag, default: value, description: `${tool}: ${meaning}` });
}

/** The longest duration Go's flag package takes: the largest int64 count of nanoseconds. */
const GO_MAX_DURATION_MS = 2 ** 63 / 1e6;

/** Envoy Gateway's deadline of 0: it fails health checks, counts once and gives up; long enough here for both. */
const AT_ONCE_MS = FASTEST_POLL_MS;

/**
 * An anchor's duration flag, as Go's flag package and the tool take it: a negative wait is none, and a longer one
 * than a timer holds is the longest it holds, so that no value the tool runs with exits 2 here. `least` is the
 * shortest this program does (Envoy Gateway's deadlines: 0 and anything shorter give up at the first count).
 */
function anchoredDuration(
  option: Option<number>,
  dialect: Dialect,
  command: AnchorCommandName,
  flag: string,
  { least = 0 } = {},
): Option<number> {
  const named = anchored(option, dialect, command, flag);
  return {
    ...named,
    parse(text) {
      const negative = text.startsWith("-");
      const ms = parseDuration(negative ? text.slice(1) : text);
      if (ms === undefined || ms > GO_MAX_DURATION_MS) return named.parse(text);
      return Math.max(negative ? 0 : Math.min(ms, MAX_DURATION_MS), least);
    },
  };
}

/**
 * The command as its anchor's: help lists the anchor's flags first, in the anchor's order (global ones last), then
 * this program's; a flag it does not take is reported with what the anchor data knows of it.
 */
function anchorCommand(
  dialect: Dialect,
  name: AnchorCommandName,
  command: ProgramCommand,
  ignoredHere: readonly string[] = [],
): ProgramCommand {
  const { tool, commands, global } = ANCHORS[dialect];
  const run = command.run;
  const anchorFlags = { title: `${tool.toUpperCase()} OPTIONS`, flags: [...commands[name].flags, ...global].map((entry) => entry.flag) };
  const ignoredFlags = { title: "IGNORED (THE PRESTOP HOOK DRAINS ENVOY)", flags: ignoredHere };
  return {
    ...command,
    helpSections: ignoredHere.length > 0 ? [anchorFlags, ignoredFlags] : [anchorFlags],
    run:
      run &&
      (async (context) => {
        try {
          return await run(context);
        } catch (error) {
          if (error instanceof UnknownFlag) throw new UsageError(`${error.message}: ${anchorFlagNote(dialect, name, error.flag)}`);
          throw error;
        }
      }),
  };
}

// Contour: the admin API is a Unix socket in the shared /admin emptyDir, connections are counted as Contour counts
// them (HTTP connection managers), and the first count comes right after failing health checks.
const contourAdmin = {
  ...adminOptions,
  address: anchored(adminOptions.address, "contour", "shutdown", "admin-address"),
  connectionStat: alias(adminOptions.connectionStat, { default: "http" }),
};
// Their end conditions hold unless a flag asks otherwise: every open connection counts, and no quiet period.
const quietPeriodOff = alias(drainOptions.quietPeriodMs, { default: "0s" });
const idleConnectionsCount = alias(drainOptions.countIdleConnections, { default: "true" });
const contourDrain = {
  ...drainOptions,
  drainDelayMs: anchoredDuration(drainOptions.drainDelayMs, "contour", "shutdown", "drain-delay"),
  checkDelayMs: anchoredDuration(drainOptions.checkDelayMs, "contour", "shutdown", "check-delay"),
  checkIntervalMs: anchoredDuration(drainOptions.checkIntervalMs, "contour", "shutdown", "check-interval", { least: FASTEST_POLL_MS }),
  minOpenConnections: anchored(drainOptions.minOpenConnections, "contour", "shutdown", "min-open-connections"),
  quietPeriodMs: quietPeriodOff,
  countIdleConnections: idleConnectionsCount,
};
const contourCompat = { adminPort: ignored("admin-port", `Contour: ${anchorFlag("contour", "shutdown", "admin-port").meaning}`) };
const contourSidecarHandoff = {
  ...handoffOptions,
  servePort: anchored(handoffOptions.servePort, "contour", "shutdown-manager", "serve-port"),
  readyFile: anchored(handoffOptions.readyFile, "contour", "shutdown-manager", "ready-file"),
};
// Their hooks drain Envoy themselves and never join the sidecar: of the hand-off, only the ready file is theirs.
const contourHookHandoff = { readyFile: anchored(handoffOptions.readyFile, "contour", "shutdown", "ready-file") };
const contourSidecar = {
  admin: contourAdmin,
  drain: contourDrain,
  handoff: contourSidecarHandoff,
  sidecar: sidecarOptions,
  events: eventOptions,
  log: logOptions,
};
const contourHook = {
  admin: contourAdmin,
  drain: contourDrain,
  handoff: contourHookHandoff,
  events: eventOptions,
  log: logOptions,
  compat: contourCompat,
};

// Envoy Gateway: admin on 127.0.0.1:19000, the sidecar on :19002 (its Envoy calls /shutdown/ready), the ready file
// in /tmp, a count every second without its admin, stats and readiness listeners, and its flag names.
const gatewayAdmin = {
  ...adminOptions,
  address: alias(adminOptions.address, { default: "127.0.0.1:19000" }),
  ignoreListeners: alias(adminOptions.ignoreListeners, { default: "admin,19001,19003,worker" }),
};
const gatewayHandoff = {
  ...handoffOptions,
  servePort: alias(handoffOptions.servePort, { default: "19002" }),
  readyFile: alias(handoffOptions.readyFile, { default: "/tmp/shutdown-ready" }),
};
// No listener drain unless health checks are failed late (--health-check-failure-delay): Envoy cannot undo it.
const gatewayDrain = {
  ...drainOptions,
  checkDelayMs: alias(drainOptions.checkDelayMs, { default: "0s" }),
  checkIntervalMs: alias(drainOptions.checkIntervalMs, { default: "1s" }),
  healthCheckFailDelayMs: anchoredDuration(drainOptions.healthCheckFailDelayMs, "envoy-gateway", "shutdown", "health-check-failure-delay"),
  drainTimeoutMs: anchoredDuration(drainOptions.drainTimeoutMs, "envoy-gateway", "shutdown", "drain-timeout", { least: AT_ONCE_MS }),
  minDrainMs: anchoredDuration(drainOptions.minDrainMs, "envoy-gateway", "shutdown", "min-drain-duration"),
  minOpenConnections: anchored(drainOptions.minOpenConnections, "envoy-gateway", "shutdown", "exit-at-connections"),
  quietPeriodMs: quietPeriodOff,
  countIdleConnections: idleConnectionsCount,
};
const gatewaySidecarDrain = {
  ...gatewayDrain,
  drainTimeoutMs: anchoredDuration(drainOptions.drainTimeoutMs, "envoy-gateway", "shutdown-manager", "ready-timeout", {
    least: AT_ONCE_MS,
  }),
};
const gatewaySidecar = {
  admin: gatewayAdmin,
  drain: gatewaySidecarDrain,
  handoff: gatewayHandoff,
  sidecar: sidecarOptions,
  events: eventOptions,
  log: logOptions,
};
const gatewayHook = {
  admin: gatewayAdmin,
  drain: gatewayDrain,
  handoff: { readyFile: gatewayHandoff.readyFile },
  events: eventOptions,
  log: logOptions,
};

/** The drain flags of a dialect's sidecar table that change nothing there: all but its deadline. */
const ignoredBySidecar = (drainTable: OptionGroup) =>
  Object.entries(drainTable)
    .filter(([key]) => key !== "drainTimeoutMs")
    .map(([, option]) => option.flag);

/**
 * A dialect's sidecar settings: its hook owns the drain, as their anchors do, so Envoy's /shutdown waits for the
 * hook's ready file and never starts a drain. Drain flags given to it (but its deadline) change nothing: named.
 */
function hookOwnsTheDrain(drainTable: OptionGroup) {
  return <S extends { drain: DrainSettings; sidecar: SidecarSettings["sidecar"]; handoff: { readyFile?: string } }>(read: S) => {
    // Nothing else releases Envoy's /shutdown on these lines: without the file it would wait for the grace period.
    if (!read.handoff.readyFile)
      throw new UsageError("--ready-file is empty: the preStop hook's drain could never release Envoy's /shutdown");
    // Variables count as given: the hook shares the container's environment and reads them too.
    const defaults = readOptions({ drain: drainTable }, []).drain as Record<string, unknown>;
    const given = read.drain as unknown as Record<string, unknown>;
    const ignored = Object.entries(drainTable)
      .filter(([key]) => key !== "drainTimeoutMs" && given[key] !== defaults[key])
      .map(([, option]) => `--${option.flag}`);
    const warning = `${ignored.join(", ")}: ignored, the preStop hook drains Envoy on this command line and its flags govern the drain`;
    return { ...read, sidecar: { ...read.sidecar, drainOwner: "hook" as const }, startWarnings: ignored.length > 0 ? [warning] : [] };
  };
}

/** Why no drain on a dialect's hook line can complete, in that line's flag names (`drainTable`'s). */
export function hookLineContradiction(drainTable: OptionGroup, drain: DrainSettings): string | undefined {
  const flagOf = (setting: string) => `--${drainTable[setting]?.flag ?? setting}`;
  if (drain.drainTimeoutMs === AT_ONCE_MS) return `${flagOf("drainTimeoutMs")} at or below ${formatDuration(AT_ONCE_MS)} gives up at once`;
  return drainContradiction(drain, flagOf);
}

/**
 * A dialect's hook settings, never joining a sidecar (its serve port is none). Settings no drain can meet run as
 * written, the deadline ending the drain, and are said at start: exiting 2 on a line the tool's own manifests
 * render would leave Envoy undrained.
 */
function drainsItself(drainTable: OptionGroup) {
  return <S extends Omit<HookSettings, "handoff"> & { handoff: Pick<HookSettings["handoff"], "readyFile"> }>(read: S) => {
    const contradiction = hookLineContradiction(drainTable, read.drain);
    const { drainDelayMs, healthCheckFailDelayMs, drainTimeoutMs } = read.drain;
    const unfailed = drainDelayMs + healthCheckFailDelayMs >= drainTimeoutMs ? ", before Envoy's health checks are failed" : "";
    const warning = `${contradiction}: run as written, the deadline ends the drain${unfailed}`;
    return {
      ...read,
      handoff: { ...read.handoff, servePort: 0, shutdownToken: undefined },
      startWarnings: contradiction ? [warning] : [],
    };
  };
}

/** The `envoy` subcommands of each dialect, with the examples their help shows. */
export const ENVOY_COMMANDS: Record<Dialect, Record<string, ProgramCommand>> = {
  contour: {
    "shutdown-manager": anchorCommand(
      "contour",
      "shutdown-manager",
      sidecarCommand({
        meta: {
          name: "shutdown-manager",
          description: "Contour's `contour envoy shutdown-manager`: the sidecar, with Contour's defaults",
          examples: ["contour envoy shutdown-manager", "contour envoy shutdown-manager --serve-port=8090 --ready-file=/admin/ok"],
        },
        options: contourSidecar,
        settings: hookOwnsTheDrain(contourDrain),
      }),
      ignoredBySidecar(contourDrain),
    ),
    shutdown: anchorCommand(
      "contour",
      "shutdown",
      hookCommand({
        meta: {
          name: "shutdown",
          description: "Contour's `contour envoy shutdown`: the preStop exec hook, with Contour's defaults",
          examples: ["contour envoy shutdown", "contour envoy shutdown --check-delay=10s --min-open-connections=0"],
        },
        options: contourHook,
        settings: drainsItself(contourDrain),
      }),
    ),
  },
  "envoy-gateway": {
    "shutdown-manager": anchorCommand(
      "envoy-gateway",
      "shutdown-manager",
      sidecarCommand({
        meta: {
          name: "shutdown-manager",
          description: "Envoy Gateway's `envoy-gateway envoy shutdown-manager`: the sidecar on :19002, /shutdown/ready",
          examples: ["envoy-gateway envoy shutdown-manager --ready-timeout=610s"],
        },
        options: gatewaySidecar,
        settings: hookOwnsTheDrain(gatewaySidecarDrain),
      }),
      ignoredBySidecar(gatewaySidecarDrain),
    ),
    shutdown: anchorCommand(
      "envoy-gateway",
      "shutdown",
      hookCommand({
        meta: {
          name: "shutdown",
          description: "Envoy Gateway's `envoy-gateway envoy shutdown`: the preStop exec hook, with its flags and defaults",
          examples: [
            "envoy-gateway envoy shutdown --drain-timeout=60s --min-drain-duration=10s",
            "envoy-gateway envoy shutdown --health-check-failure-delay=15s --drain-timeout=60s --min-drain-duration=10s",
          ],
        },
        options: gatewayHook,
        settings: drainsItself(gatewayDrain),
      }),
    ),
  },
};

const DIALECT_NAMES: Record<Dialect, string> = { contour: "Contour", "envoy-gateway": "Envoy Gateway" };

/** `envoy`: the group of one dialect's commands, as the name the executable was started by picks it. */
export function envoyCommand(dialect: Dialect = dialectOf()): ProgramCommand {
  return {
    meta: {
      name: "envoy",
      description: `${DIALECT_NAMES[dialect]}'s shutdown-manager command lines, unchanged (started as envoy-gateway: Envoy Gateway's; otherwise Contour's)`,
    },
    subCommands: ENVOY_COMMANDS[dialect],
  };
}
