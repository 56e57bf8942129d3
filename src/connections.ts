/** The connection counter: reads Envoy's stats and sums open downstream connections. */
import { AdminError } from "./admin-client.ts";
import type { ConnectionStat } from "./config.ts";

export interface ConnectionCount {
  /** Open downstream connections that the drain waits for. */
  total: number;
  /** The counted connections by listener id (or HTTP prefix). */
  byListener: Record<string, number>;
  /** Envoy's `server.live` gauge: true when health checks pass (so a drain is not in effect). */
  live: boolean | undefined;
}

/** HTTP connection-manager prefixes that are never user traffic (Contour excludes the same). */
const IGNORED_HTTP_PREFIXES = new Set(["admin", "envoy-admin", "stats", "health", "stats-health"]);

/** The stats request for each kind of count; one small server-side-filtered response per poll. */
export function connectionStatsPath(stat: ConnectionStat): string {
  const filter =
    stat === "listener"
      ? String.raw`^(listener\..*\.downstream_cx_active|server\.live)$`
      : String.raw`^(http\..*\.downstream_cx_active|server\.live)$`;
  return stat === "listener"
    ? `/stats?format=json&filter=${encodeURIComponent(filter)}`
    : `/stats/prometheus?filter=${encodeURIComponent(filter)}`;
}

/** Rejects a stats body that Envoy would not send; a guessed 0 would end a drain early. */
function malformed(reason: string): AdminError {
  return new AdminError("malformed", `unexpected stats body: ${reason}`);
}

/** Reads a gauge value, which Envoy prints as an integer (some releases as `%g`, e.g. 1.23457e+06). */
function gaugeValue(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw malformed(`${name} has value ${JSON.stringify(value)}`);
  return Math.round(value);
}

// Listener ids contain dots (`0.0.0.0_8080`), so the id is everything between the fixed prefix and suffix.
const LISTENER_GAUGE = /^listener\.(.+)\.downstream_cx_active$/;
// Per-thread duplicates of the aggregate gauge: `listener.<id>.worker_3.…` and `listener.<id>.main_thread.…`.
const PER_THREAD = /\.(?:worker_\d+|main_thread)$/;

/** Sums every listener's downstream_cx_active from `/stats?format=json`, skipping admin, per-worker and ignored listeners. */
export function countListenerConnections(body: string, ignore: readonly RegExp[]): ConnectionCount {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw malformed("not JSON");
  }
  const stats = (parsed as { stats?: unknown } | null)?.stats;
  if (!Array.isArray(stats)) throw malformed('no "stats" array');
  const byListener: Record<string, number> = {};
  let live: boolean | undefined;
  let sawAdmin = false;
  for (const entry of stats) {
    if (typeof entry !== "object" || entry === null) throw malformed("a stats entry is not an object");
    if ("histograms" in entry) continue;
    const { name, value } = entry as { name?: unknown; value?: unknown };
    if (typeof name !== "string") throw malformed("a stats entry has no name");
    if (name === "server.live") {
      live = gaugeValue(value, name) === 1;
      continue;
    }
    const id = LISTENER_GAUGE.exec(name)?.[1];
    if (id === undefined) continue;
    const count = gaugeValue(value, name);
    if (id === "admin" || id.startsWith("admin.")) {
      sawAdmin = true;
      continue;
    }
    if (PER_THREAD.test(id) || ignore.some((pattern) => pattern.test(id))) continue;
    byListener[id] = count;
  }
  // Envoy always reports its admin listener (our own poll is open on it): without it this is not Envoy's answer.
  if (!sawAdmin) throw malformed("listener.admin.downstream_cx_active is missing");
  return { total: sum(byListener), byListener, live };
}

// A Prometheus sample line: name, optional {labels}, value.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const PREFIX_LABEL = /(?:^|,)envoy_http_conn_manager_prefix="((?:[^"\\]|\\.)*)"/;

/** Sums `envoy_http_downstream_cx_active` by connection-manager prefix from `/stats/prometheus`, as Contour does. */
export function countHttpConnections(body: string): ConnectionCount {
  const byListener: Record<string, number> = {};
  let live: boolean | undefined;
  let sawAdmin = false;
  for (const line of body.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw malformed(`not a Prometheus sample: ${JSON.stringify(line.slice(0, 100))}`);
    const [, name, labels = "", text] = match as unknown as [string, string, string | undefined, string];
    const value = gaugeValue(Number(text), name);
    if (name === "envoy_server_live") {
      live = value === 1;
      continue;
    }
    if (name !== "envoy_http_downstream_cx_active") continue;
    const prefix = PREFIX_LABEL.exec(labels)?.[1];
    if (prefix === undefined) continue;
    if (prefix === "admin") sawAdmin = true;
    if (IGNORED_HTTP_PREFIXES.has(prefix)) continue;
    byListener[prefix] = (byListener[prefix] ?? 0) + value;
  }
  if (!sawAdmin) throw malformed('envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="admin"} is missing');
  return { total: sum(byListener), byListener, live };
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Parses a stats body of the configured kind. */
export function countConnections(stat: ConnectionStat, body: string, ignore: readonly RegExp[]): ConnectionCount {
  return stat === "listener" ? countListenerConnections(body, ignore) : countHttpConnections(body);
}
