/** Configuration: every option's default, its environment variable, and its validation. */
import { formatDuration, parseDuration } from "./duration.ts";
import { UsageError } from "./errors.ts";

export type ConnectionStat = "listener" | "http";
export type LogFormat = "auto" | "json" | "text";
export type LogLevel = "error" | "warn" | "info" | "debug";

/** Where the Envoy admin API listens: a TCP base URL, or a Unix socket path. */
export interface AdminAddress {
  baseURL: string;
  socketPath?: string;
  /** As the user wrote it, for log lines. */
  display: string;
}

export interface Config {
  adminAddress: AdminAddress;
  adminTimeoutMs: number;
  adminUnreachableThreshold: number;
  drainDelayMs: number;
  checkDelayMs: number;
  checkIntervalMs: number;
  minOpenConnections: number;
  drainTimeoutMs: number;
  drainListeners: boolean;
  connectionStat: ConnectionStat;
  ignoreListeners: RegExp[];
  readyFile: string;
  servePort: number;
  serveAddress: string;
  shutdownToken: string | undefined;
  healOnStart: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

type Kind = "duration" | "positive-duration" | "count" | "positive-count" | "port" | "text" | "boolean";

export interface OptionSpec {
  kind: Kind;
  /** The default as a user would type it; undefined means "unset". */
  default: string | undefined;
  description: string;
  valueHint?: string;
  /** Accepted values, for options that take one of a fixed set. */
  choices?: readonly string[];
}

/** Every option the commands accept, by flag name. */
export const OPTIONS = {
  "admin-address": {
    kind: "text",
    default: "127.0.0.1:9001",
    valueHint: "host:port|http://host:port|/path.sock",
    description: "Envoy admin API: host:port, http://host:port or an absolute Unix socket path",
  },
  "admin-timeout": {
    kind: "positive-duration",
    default: "2s",
    description: "Timeout of each admin API request",
  },
  "admin-unreachable-threshold": {
    kind: "positive-count",
    default: "3",
    description: "Consecutive refused admin connections after which Envoy counts as gone and the drain ends",
  },
  "drain-delay": {
    kind: "duration",
    default: "0s",
    description: "Wait before failing health checks, so load balancers notice the pod is terminating",
  },
  "check-delay": {
    kind: "duration",
    default: "60s",
    description: "Wait after failing health checks before the first connection count",
  },
  "check-interval": {
    kind: "positive-duration",
    default: "5s",
    description: "Interval between connection counts",
  },
  "min-open-connections": {
    kind: "count",
    default: "0",
    description: "The drain is complete when open downstream connections are at or below this",
  },
  "drain-timeout": {
    kind: "duration",
    default: "0s",
    description: "Give up draining after this long (0 = no limit; kubelet's grace period still applies)",
  },
  "drain-listeners": {
    kind: "boolean",
    default: "false",
    description: "Also POST /drain_listeners?graceful&skip_exit (Envoy cannot undo it)",
  },
  "connection-stat": {
    kind: "text",
    default: "listener",
    choices: ["listener", "http"],
    valueHint: "listener|http",
    description: "listener: every listener's downstream_cx_active (TCP too); http: HTTP connection managers only, as Contour counts",
  },
  "ignore-listeners": {
    kind: "text",
    default: "_8002$,_19001$,_19003$",
    valueHint: "regex,regex",
    description:
      "Comma-separated regexes of listener ids whose connections are not counted; the default skips Contour's and Envoy Gateway's stats/readiness listeners",
  },
  "ready-file": {
    kind: "text",
    default: "/admin/ok",
    valueHint: "path",
    description: "File written when a drain completes; its appearance releases every waiting /shutdown",
  },
  "serve-port": {
    kind: "port",
    default: "8090",
    description: "Port of the shutdown-manager's HTTP server (0 = any free port; for `shutdown`, 0 = never join a manager)",
  },
  "serve-address": {
    kind: "text",
    default: "0.0.0.0",
    valueHint: "address",
    description: "Address the shutdown-manager listens on (:: for IPv6)",
  },
  "shutdown-token": {
    kind: "text",
    default: undefined,
    valueHint: "token",
    description: "When set, /shutdown requires `Authorization: Bearer <token>`",
  },
  "heal-on-start": {
    kind: "boolean",
    default: "true",
    description: "On start, undo a drain left behind by an earlier run of this sidecar",
  },
  "log-level": {
    kind: "text",
    default: "info",
    choices: ["error", "warn", "info", "debug"],
    valueHint: "error|warn|info|debug",
    description: "Least severe log level printed",
  },
  "log-format": {
    kind: "text",
    default: "auto",
    choices: ["auto", "json", "text"],
    valueHint: "auto|json|text",
    description: "auto: readable on a terminal, JSON lines otherwise",
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** The environment variable that stands in for a flag: ENVOY_SHUTDOWN_CHECK_INTERVAL for --check-interval. */
export function envName(option: OptionName): string {
  return `ENVOY_SHUTDOWN_${option.toUpperCase().replaceAll("-", "_")}`;
}

const EXAMPLES: Record<Kind, string> = {
  duration: "a Go duration such as 300ms, 5s or 1m30s (0 is allowed)",
  "positive-duration": "a Go duration greater than zero, such as 300ms, 5s or 1m30s",
  count: "a whole number, 0 or more",
  "positive-count": "a whole number, 1 or more",
  port: "a port number from 0 to 65535",
  text: "text",
  boolean: "true or false",
};

/** Rejects a value in one line that names where it came from and what would be accepted. */
function invalid(source: string, value: string, expected: string): UsageError {
  return new UsageError(`${source} ${JSON.stringify(value)} is not valid: expected ${expected}`);
}

function parseValue(option: OptionName, source: string, value: string): number | string | boolean {
  const spec: OptionSpec = OPTIONS[option];
  const fail = (expected = EXAMPLES[spec.kind]) => invalid(source, value, expected);
  switch (spec.kind) {
    case "duration":
    case "positive-duration": {
      const ms = parseDuration(value);
      if (ms === undefined || (spec.kind === "positive-duration" && ms <= 0)) throw fail();
      return ms;
    }
    case "count":
    case "positive-count":
    case "port": {
      if (!/^\d+$/.test(value)) throw fail();
      const n = Number(value);
      if ((spec.kind === "positive-count" && n < 1) || (spec.kind === "port" && n > 65535) || !Number.isSafeInteger(n)) {
        throw fail();
      }
      return n;
    }
    case "boolean": {
      const lowered = value.toLowerCase();
      if (["true", "1", "yes"].includes(lowered)) return true;
      if (["false", "0", "no"].includes(lowered)) return false;
      throw fail();
    }
    case "text": {
      if (spec.choices && !spec.choices.includes(value)) throw fail(`one of ${spec.choices.join(", ")}`);
      return value;
    }
  }
}

/** Parses the admin address forms users write: host:port, http://host:port, /path/to/admin.sock. */
function parseAdminAddress(value: string, source = "--admin-address"): AdminAddress {
  const expected = "host:port, http://host:port or an absolute Unix socket path, such as 127.0.0.1:9001";
  if (value.startsWith("/")) return { baseURL: "http://localhost", socketPath: value, display: value };
  const withScheme = value.includes("://") ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalid(source, value, expected);
  }
  const hasPort = value.includes("://") || /:\d+$/.test(url.host);
  if (url.protocol !== "http:" || !url.hostname || !hasPort || url.pathname !== "/" || url.search) {
    throw invalid(source, value, expected);
  }
  return { baseURL: `http://${url.host}`, display: value };
}

/** Splits the comma-separated listener regexes, rejecting any that does not compile. */
function parseListenerPatterns(value: string, source: string): RegExp[] {
  return value
    .split(",")
    .map((pattern) => pattern.trim())
    .filter((pattern) => pattern !== "")
    .map((pattern) => {
      try {
        return new RegExp(pattern);
      } catch {
        throw invalid(source, pattern, "comma-separated regular expressions");
      }
    });
}

/** Takes the flag, else its environment variable, else the default, and validates it. */
function resolve(option: OptionName, flags: Record<string, unknown>, env: Record<string, string | undefined>) {
  const flag = flags[option];
  if (flag !== undefined && flag !== null) {
    const text = String(flag);
    return { source: `--${option}`, raw: text, value: parseValue(option, `--${option}`, text) };
  }
  const fromEnv = env[envName(option)];
  if (fromEnv !== undefined && fromEnv !== "") {
    const source = envName(option);
    return { source, raw: fromEnv, value: parseValue(option, source, fromEnv) };
  }
  const fallback: string | undefined = OPTIONS[option].default;
  if (fallback === undefined) return { source: "default", raw: "", value: undefined };
  return { source: "default", raw: fallback, value: parseValue(option, "default", fallback) };
}

/** Builds the configuration from parsed flags and the environment; throws UsageError on any bad value. */
export function loadConfig(flags: Record<string, unknown>, env: Record<string, string | undefined> = process.env): Config {
  const get = (option: OptionName) => resolve(option, flags, env).value;
  const admin = resolve("admin-address", flags, env);
  const ignore = resolve("ignore-listeners", flags, env);
  const token = get("shutdown-token") as string | undefined;
  return {
    adminAddress: parseAdminAddress(admin.raw, admin.source),
    adminTimeoutMs: get("admin-timeout") as number,
    adminUnreachableThreshold: get("admin-unreachable-threshold") as number,
    drainDelayMs: get("drain-delay") as number,
    checkDelayMs: get("check-delay") as number,
    checkIntervalMs: get("check-interval") as number,
    minOpenConnections: get("min-open-connections") as number,
    drainTimeoutMs: get("drain-timeout") as number,
    drainListeners: get("drain-listeners") as boolean,
    connectionStat: get("connection-stat") as ConnectionStat,
    ignoreListeners: parseListenerPatterns(ignore.raw, ignore.source),
    readyFile: get("ready-file") as string,
    servePort: get("serve-port") as number,
    serveAddress: get("serve-address") as string,
    shutdownToken: token === "" ? undefined : token,
    healOnStart: get("heal-on-start") as boolean,
    logLevel: get("log-level") as LogLevel,
    logFormat: get("log-format") as LogFormat,
  };
}

/** One line of help per option: its default and the environment variable that can set it. */
export function describeOption(option: OptionName): string {
  const spec: OptionSpec = OPTIONS[option];
  const shown =
    spec.default === undefined ? "unset" : spec.kind.endsWith("duration") ? formatDuration(parseDuration(spec.default) ?? 0) : spec.default;
  return `${spec.description} (default: ${shown}; env ${envName(option)})`;
}
