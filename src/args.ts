/** The flag groups the commands share, declared once. */
import type { ArgDef } from "citty";
import { describeOption, OPTIONS, type OptionName, type OptionSpec } from "./config.ts";

/** A string flag whose help line shows its default and environment variable. */
function text(option: OptionName) {
  const spec: OptionSpec = OPTIONS[option];
  return { type: "string", description: describeOption(option), valueHint: spec.valueHint ?? "duration" } as const;
}

/** A boolean flag that also accepts `--no-<flag>`. */
function flag(option: OptionName) {
  return { type: "boolean", description: describeOption(option), negativeDescription: `Turn --${option} off` } as const;
}

/** How to reach Envoy's admin API. */
export const adminArgs = {
  "admin-address": text("admin-address"),
  "admin-timeout": text("admin-timeout"),
  "admin-unreachable-threshold": { ...text("admin-unreachable-threshold"), valueHint: "count" },
} as const satisfies Record<string, ArgDef>;

/** How the drain sequence runs. */
export const drainArgs = {
  "drain-delay": text("drain-delay"),
  "check-delay": text("check-delay"),
  "check-interval": text("check-interval"),
  "min-open-connections": { ...text("min-open-connections"), valueHint: "count" },
  "drain-timeout": text("drain-timeout"),
  "drain-listeners": flag("drain-listeners"),
  "connection-stat": text("connection-stat"),
  "ignore-listeners": text("ignore-listeners"),
} as const satisfies Record<string, ArgDef>;

/** How the exec command and the sidecar find each other. */
export const handoffArgs = {
  "serve-port": { ...text("serve-port"), valueHint: "port" },
  "ready-file": text("ready-file"),
  "shutdown-token": text("shutdown-token"),
} as const satisfies Record<string, ArgDef>;

/** The sidecar server's own settings. */
export const serverArgs = {
  "serve-address": text("serve-address"),
  "heal-on-start": flag("heal-on-start"),
} as const satisfies Record<string, ArgDef>;

/** Log output. */
export const logArgs = {
  "log-level": text("log-level"),
  "log-format": text("log-format"),
} as const satisfies Record<string, ArgDef>;
