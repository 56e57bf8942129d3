/**
 * `envoy shutdown-manager` and `envoy shutdown`: the command lines of Contour's and Envoy Gateway's shutdown
 * managers, accepted unchanged, with their flags and defaults. Which one is meant is the name the executable was
 * started by (the image links both names to it): `envoy-gateway` for Envoy Gateway's, anything else for Contour's.
 */
import type { ProgramCommand } from "../command.ts";
import { alias, ignored } from "../option-kinds.ts";
import { adminOptions, drainOptions, eventOptions, handoffOptions, logOptions, sidecarOptions } from "../options.ts";
import { hookCommand } from "./shutdown.ts";
import { sidecarCommand } from "./shutdown-manager.ts";

export type Dialect = "contour" | "envoy-gateway";

/** The dialect the executable was started as, from argv[0]'s file name. */
export function dialectOf(argv0: string = process.argv0): Dialect {
  return argv0.slice(argv0.lastIndexOf("/") + 1) === "envoy-gateway" ? "envoy-gateway" : "contour";
}

// Contour: the admin API is a Unix socket in the shared /admin emptyDir, connections are counted as Contour counts
// them (HTTP connection managers), and the first count comes right after failing health checks.
const contourAdmin = {
  ...adminOptions,
  address: alias(adminOptions.address, { default: "/admin/admin.sock" }),
  connectionStat: alias(adminOptions.connectionStat, { default: "http" }),
};
// Their end conditions hold unless the quiet period is asked for: off by default on both command lines.
const quietPeriodOff = alias(drainOptions.quietPeriodMs, { default: "0s" });
const contourDrain = { ...drainOptions, checkDelayMs: alias(drainOptions.checkDelayMs, { default: "0s" }), quietPeriodMs: quietPeriodOff };
const contourCompat = { adminPort: ignored("admin-port", "Contour's deprecated Envoy admin port (the admin API is --admin-address)") };
const contourSidecar = {
  admin: contourAdmin,
  drain: contourDrain,
  handoff: handoffOptions,
  sidecar: sidecarOptions,
  events: eventOptions,
  log: logOptions,
};
const contourHook = {
  admin: contourAdmin,
  drain: contourDrain,
  handoff: handoffOptions,
  events: eventOptions,
  log: logOptions,
  compat: contourCompat,
};

// Envoy Gateway: admin on 127.0.0.1:19000, the sidecar on :19002 (its Envoy calls /shutdown/ready), the ready file
// in /tmp, a count every second, its graceful listener drain always on, and its flag names.
const gatewayAdmin = { ...adminOptions, address: alias(adminOptions.address, { default: "127.0.0.1:19000" }) };
const gatewayHandoff = {
  ...handoffOptions,
  servePort: alias(handoffOptions.servePort, { default: "19002" }),
  readyFile: alias(handoffOptions.readyFile, { default: "/tmp/shutdown-ready" }),
};
const gatewayDrain = {
  ...drainOptions,
  checkDelayMs: alias(drainOptions.checkDelayMs, { default: "0s" }),
  checkIntervalMs: alias(drainOptions.checkIntervalMs, { default: "1s" }),
  drainListeners: alias(drainOptions.drainListeners, { default: "true" }),
  minDrainMs: alias(drainOptions.minDrainMs, { default: "10s" }),
  minOpenConnections: alias(drainOptions.minOpenConnections, {
    flag: "exit-at-connections",
    description: "Envoy Gateway's name for --min-open-connections: the drain is complete at or below this many open connections",
  }),
  drainTimeoutMs: alias(drainOptions.drainTimeoutMs, { default: "60s" }),
  quietPeriodMs: quietPeriodOff,
};
const gatewaySidecarDrain = {
  ...gatewayDrain,
  drainTimeoutMs: alias(drainOptions.drainTimeoutMs, {
    flag: "ready-timeout",
    default: "610s",
    description: "Envoy Gateway's --ready-timeout: how long a /shutdown/ready waiter waits; it bounds the sidecar's drain",
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
const gatewayHook = { admin: gatewayAdmin, drain: gatewayDrain, handoff: gatewayHandoff, events: eventOptions, log: logOptions };

/**
 * A dialect's sidecar settings. Their hook carries the drain settings, so the hook leads, as their anchors do:
 * Envoy's /shutdown waits for the drain rather than starting one that would ignore them.
 */
function hookLed<S extends { sidecar: object }>(settings: S) {
  return { ...settings, sidecar: { ...settings.sidecar, hookLed: true } };
}

/** The `envoy` subcommands of each dialect, with the examples their help shows. */
export const ENVOY_COMMANDS: Record<Dialect, Record<string, ProgramCommand>> = {
  contour: {
    "shutdown-manager": sidecarCommand({
      meta: {
        name: "shutdown-manager",
        description: "Contour's shutdown manager sidecar, with Contour's flags and defaults",
        examples: ["contour envoy shutdown-manager", "contour envoy shutdown-manager --serve-port=8090 --ready-file=/admin/ok"],
      },
      options: contourSidecar,
      settings: hookLed,
    }),
    shutdown: hookCommand({
      meta: {
        name: "shutdown",
        description: "Contour's preStop exec hook, with Contour's flags and defaults",
        examples: ["contour envoy shutdown", "contour envoy shutdown --check-delay=10s --min-open-connections=0"],
      },
      options: contourHook,
      settings: (read) => read,
    }),
  },
  "envoy-gateway": {
    "shutdown-manager": sidecarCommand({
      meta: {
        name: "shutdown-manager",
        description: "Envoy Gateway's shutdown manager sidecar on :19002 (/shutdown/ready), with its flags and defaults",
        examples: ["envoy-gateway envoy shutdown-manager --ready-timeout=610s"],
      },
      options: gatewaySidecar,
      settings: hookLed,
    }),
    shutdown: hookCommand({
      meta: {
        name: "shutdown",
        description: "Envoy Gateway's preStop exec hook, with its flags and defaults",
        examples: ["envoy-gateway envoy shutdown --drain-timeout=60s --min-drain-duration=10s --exit-at-connections=0"],
      },
      options: gatewayHook,
      settings: (read) => read,
    }),
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
