/** Every flag, declared once, in groups keyed by the settings field each fills in its wing. */

import { FASTEST_POLL_MS } from "../drain/settings.ts";
import { parseAdminAddress } from "../envoy/address.ts";
import { CONNECTION_STATS } from "../envoy/stats.ts";
import { InvalidValue } from "../errors.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../log.ts";
import { parseServeAddress } from "../sidecar/serve-address.ts";
import { choice, count, duration, type OptionGroup, text, toggle } from "./option-kinds.ts";

/** Splits comma-separated listener regexes, rejecting any that does not compile. */
function parseListenerPatterns(value: string): RegExp[] {
  return value
    .split(",")
    .map((pattern) => pattern.trim())
    .filter((pattern) => pattern !== "")
    .map((pattern) => {
      try {
        return new RegExp(pattern);
      } catch {
        throw new InvalidValue(`comma-separated regular expressions (${JSON.stringify(pattern)} does not compile)`);
      }
    });
}

/**
 * A bearer token. Visible ASCII only: kubelet sends an httpGet header's value as bytes, so any other character (or a
 * space, trimmed off a header) could never match. An empty one (an empty Secret key) is refused: taken as none, it
 * would turn authorization off in silence. (Unset, the setting is undefined: the flag has no default.)
 */
function parseShutdownToken(token: string): string | undefined {
  if (token === "") throw new InvalidValue("a token; it is empty (leave it out to serve /shutdown without one)");
  if (!/^[\x21-\x7e]+$/.test(token)) throw new InvalidValue("a token of visible ASCII characters (no spaces, no other characters)");
  return token;
}

/** A ready file path, or none for an empty value (what is at the path is checked when the command starts). */
const parseReadyFilePath = (path: string): string | undefined => (path === "" ? undefined : path);

/** How to reach Envoy's admin API and what to count there: the Envoy client's settings. */
export const adminOptions = {
  address: text("admin-address", {
    default: "127.0.0.1:9001",
    valueHint: "host:port|http://host:port|/path.sock",
    description: "Envoy admin API: host:port, http://host:port or an absolute Unix socket path",
    parse: parseAdminAddress,
  }),
  timeoutMs: duration("admin-timeout", "2s", "Bound on each admin API exchange, body included", { positive: true }),
  connectionStat: choice(
    "connection-stat",
    CONNECTION_STATS,
    "listener",
    "listener: every listener's downstream_cx_active (TCP too); http: HTTP connection managers only, as Contour counts",
  ),
  ignoreListeners: text("ignore-listeners", {
    default: "_8002$,_19001$,_19003$",
    valueHint: "regex,regex",
    description:
      "Comma-separated regexes of listener ids whose connections are not counted; the default skips Contour's and Envoy Gateway's stats/readiness listeners",
    parse: parseListenerPatterns,
  }),
} as const satisfies OptionGroup;

/** How the drain sequence runs: the drain's settings. */
export const drainOptions = {
  drainDelayMs: duration("drain-delay", "0s", "Wait before failing health checks, so load balancers notice the pod is terminating"),
  checkDelayMs: duration("check-delay", "10s", "Wait after failing health checks before the first connection count"),
  checkIntervalMs: duration(
    "check-interval",
    "5s",
    "The longest between connection counts (100ms at least); near the drain's end it counts up to ten times a second",
    { minMs: FASTEST_POLL_MS },
  ),
  minOpenConnections: count("min-open-connections", "0", "The drain is complete when open downstream connections are at or below this"),
  drainTimeoutMs: duration(
    "drain-timeout",
    "0s",
    "Give up draining after this long (0 = no limit; kubelet's grace period still applies); bounds the hook in every mode",
  ),
  drainListeners: toggle("drain-listeners", false, "Also POST /drain_listeners?graceful&skip_exit (Envoy cannot undo it)"),
  minDrainMs: duration(
    "min-drain-duration",
    "0s",
    "The drain is not complete before this long, whatever the count (time for endpoints to be deprogrammed)",
  ),
  quietPeriodMs: duration(
    "quiet-period",
    "2s",
    "The drain is not complete until nothing new has reached Envoy for this long (requests and non-HTTP connections; with --count-idle-connections, connections): the load balancer has stopped sending (0s = off)",
  ),
  quietConnections: count(
    "quiet-connections",
    "0",
    "Arrivals a quiet period tolerates, for load balancer health checks that Envoy's stats cannot tell from traffic",
  ),
  countIdleConnections: toggle(
    "count-idle-connections",
    false,
    "Every open connection holds the drain, idle HTTP ones included, as Contour and Envoy Gateway count (default: requests in flight, new requests and non-HTTP connections do)",
  ),
  longLivedBudgetMs: duration(
    "long-lived-budget",
    "10s",
    "How long the drain waits for upgraded connections (WebSocket) and requests in flight for longer than this; then it ends and names them, and Envoy's exit cuts them (0s = until --drain-timeout)",
  ),
  healthCheckFailDelayMs: duration(
    "health-check-fail-delay",
    "0s",
    "Start Envoy's graceful listener drain first, and fail health checks only this long after it (0 = fail them at once)",
  ),
  adminUnreachableThreshold: count(
    "admin-unreachable-threshold",
    "3",
    "Refused admin connections in a row, from an Envoy that had answered, after which it counts as gone and the drain ends",
    { min: 1 },
  ),
} as const satisfies OptionGroup;

/** The sidecar's port: where it serves, where the hook and `status` look for it. */
export const SERVE_PORT = "8090";

/** How the hook and the sidecar find each other. */
export const handoffOptions = {
  servePort: count(
    "serve-port",
    SERVE_PORT,
    "Port of the sidecar's HTTP server (0 = any free port; for `shutdown`, 0 = never join a sidecar)",
    {
      max: 65535,
      valueHint: "port",
    },
  ),
  readyFile: text("ready-file", {
    default: "/admin/ok",
    valueHint: "path",
    description:
      "File the preStop hook writes, its outcome inside, when its drain ends; its appearance releases every waiting /shutdown (empty: none)",
    parse: parseReadyFilePath,
    readsEmptyVariable: true,
  }),
  shutdownToken: text("shutdown-token", {
    default: undefined,
    valueHint: "token",
    description: "When set, /shutdown requires `Authorization: Bearer <token>` (visible ASCII characters, no spaces)",
    parse: parseShutdownToken,
    readsEmptyVariable: true,
  }),
} as const satisfies OptionGroup;

/** How the sidecar's endpoints are served, by the sidecar and by the supervisor. */
export const serveOptions = {
  serveAddress: text("serve-address", {
    default: "0.0.0.0",
    valueHint: "address",
    description: "Address the sidecar listens on (:: for IPv6)",
    parse: parseServeAddress,
  }),
  healOnStart: toggle("heal-on-start", true, "On start, undo a drain left behind by an earlier run of this sidecar"),
} as const satisfies OptionGroup;

/** The sidecar's own settings. */
export const sidecarOptions = {
  ...serveOptions,
  hookWaitMs: duration(
    "hook-wait",
    "5s",
    "After SIGTERM with no drain running, keep serving this long so that a preStop /shutdown already on its way still drains Envoy",
  ),
} as const satisfies OptionGroup;

/** What the drain tells Kubernetes, and what it asks it (docs/kubernetes.md). */
export const eventOptions = {
  podEvents: toggle(
    "pod-events",
    false,
    "Post a Kubernetes Event on this pod when a drain starts and ends (needs a Role allowing create on events, and POD_NAME and POD_NAMESPACE from the downward API)",
  ),
  podGracePeriod: toggle(
    "pod-grace-period",
    true,
    "In a pod being deleted, read its grace period from the API when the drain starts and end the drain before kubelet's SIGKILL (needs get on its pod; without it --drain-timeout alone applies)",
  ),
} as const satisfies OptionGroup;

/** Log output. */
export const logOptions = {
  level: choice("log-level", LOG_LEVELS, "info", "Least severe log level printed"),
  format: choice("log-format", LOG_FORMATS, "auto", "auto: readable on a terminal, JSON lines otherwise"),
} as const satisfies OptionGroup;

/** The supervisor's own settings (`run`). */
export const supervisorOptions = {
  stopTimeoutMs: duration("stop-timeout", "30s", "After the drain, how long Envoy may take to exit on SIGTERM before it gets SIGKILL", {
    positive: true,
  }),
  hotRestart: toggle(
    "hot-restart",
    false,
    "Start Envoy with --restart-epoch N and RESTART_EPOCH=N; SIGHUP starts epoch N+1 beside the old one (Envoy's hot restart)",
  ),
} as const satisfies OptionGroup;

/** The hand-off flags as `run` takes them: no second container, so no ready file unless one is asked for. */
export const supervisorHandoffOptions = {
  ...handoffOptions,
  readyFile: { ...handoffOptions.readyFile, default: undefined },
} as const satisfies OptionGroup;
