/** Envoy's connection stats: which request asks for them, and pure functions that count open connections in the answer. */
import { AdminError } from "./admin-error.ts";

/** listener: every listener's downstream_cx_active (TCP too); http: HTTP connection managers only, as Contour counts. */
export type ConnectionStat = "listener" | "http";

export interface ConnectionCount {
  /** Open downstream connections that the drain waits for. */
  total: number;
  /** The listeners (or HTTP prefixes) still holding connections, with their counts; listeners at 0 are left out. */
  byListener: Map<string, number>;
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

/** The stats each kind of count needs, as an operator would list them in Envoy's stats_matcher. */
export const COUNTED_STATS: Record<ConnectionStat, string> = {
  listener: "listener.<id>.downstream_cx_active",
  http: "http.<prefix>.downstream_cx_active",
};

/** A well-formed answer with none of the counted gauges, not even the admin listener's: Envoy's stats_matcher drops them. */
function statsMissing(stat: ConnectionStat): AdminError {
  return new AdminError(
    "stats_missing",
    `Envoy reports no ${COUNTED_STATS[stat]} gauge, not even the admin listener's: its stats_matcher excludes them, so connections cannot be counted; include ${COUNTED_STATS[stat]} in stats_matcher`,
  );
}

/** Reads a gauge value, which Envoy prints as an integer (some releases as `%g`, e.g. 1.23457e+06). */
function gaugeValue(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw malformed(`${name} has value ${JSON.stringify(value)}`);
  return Math.round(value);
}

const LISTENER_PREFIX = "listener.";
const GAUGE_SUFFIX = ".downstream_cx_active";

const WORKER = "worker_";
const MAIN_THREAD = "main_thread";

/** Whether name[start, end) is a thread segment (`worker_<n>` or `main_thread`), compared in place: polls may hold 10,000s of names. */
function isThreadSegment(name: string, start: number, end: number): boolean {
  const length = end - start;
  if (length === MAIN_THREAD.length && name.charCodeAt(start) === 109 /* m */) return name.slice(start, end) === MAIN_THREAD;
  if (length <= WORKER.length || name.charCodeAt(start) !== 119 /* w */) return false;
  for (let i = 1; i < WORKER.length; i++) if (name.charCodeAt(start + i) !== WORKER.charCodeAt(i)) return false;
  for (let i = start + WORKER.length; i < end; i++) {
    const code = name.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

/**
 * The listener id of an aggregate `listener.<id>.downstream_cx_active` gauge, or undefined for any other stat,
 * including the per-thread duplicates `listener.<id>.worker_3.…` and `listener.<id>.main_thread.…`.
 * Listener ids contain dots (`0.0.0.0_8080`), so the id is everything between the fixed prefix and suffix.
 */
function aggregateListenerId(name: string): string | undefined {
  if (!name.startsWith(LISTENER_PREFIX) || !name.endsWith(GAUGE_SUFFIX)) return undefined;
  const end = name.length - GAUGE_SUFFIX.length;
  if (end <= LISTENER_PREFIX.length) return undefined;
  const lastDot = name.lastIndexOf(".", end - 1);
  if (lastDot >= LISTENER_PREFIX.length && isThreadSegment(name, lastDot + 1, end)) return undefined;
  return name.slice(LISTENER_PREFIX.length, end);
}

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
  // A Map: polls may name thousands of listeners, and a plain object with that many keys is several times slower.
  const byListener = new Map<string, number>();
  let total = 0;
  let live: boolean | undefined;
  let sawGauge = false;
  for (const entry of stats) {
    if (typeof entry !== "object" || entry === null) throw malformed("a stats entry is not an object");
    if ("histograms" in entry) continue;
    const { name, value } = entry as { name?: unknown; value?: unknown };
    if (typeof name !== "string") throw malformed("a stats entry has no name");
    if (name === "server.live") {
      live = gaugeValue(value, name) === 1;
      continue;
    }
    const id = aggregateListenerId(name);
    if (id === undefined) continue;
    const count = gaugeValue(value, name);
    sawGauge = true;
    if (id === "admin") continue;
    if (count === 0 || ignore.some((pattern) => pattern.test(id))) continue;
    byListener.set(id, count);
    total += count;
  }
  // Envoy always reports its admin listener (our own poll is open on it): no gauge at all means they are filtered out.
  if (!sawGauge) throw statsMissing("listener");
  return { total, byListener, live };
}

// A Prometheus sample line: name, optional {labels}, value.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const PREFIX_LABEL = /(?:^|,)envoy_http_conn_manager_prefix="((?:[^"\\]|\\.)*)"/;

/** Sums `envoy_http_downstream_cx_active` by connection-manager prefix from `/stats/prometheus`, as Contour does. */
export function countHttpConnections(body: string): ConnectionCount {
  const byListener = new Map<string, number>();
  let total = 0;
  let live: boolean | undefined;
  let sawGauge = false;
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
    sawGauge = true;
    if (value === 0 || IGNORED_HTTP_PREFIXES.has(prefix)) continue;
    byListener.set(prefix, (byListener.get(prefix) ?? 0) + value);
    total += value;
  }
  if (!sawGauge) throw statsMissing("http");
  return { total, byListener, live };
}

/** Parses a stats body of the configured kind. */
export function countConnections(stat: ConnectionStat, body: string, ignore: readonly RegExp[]): ConnectionCount {
  return stat === "listener" ? countListenerConnections(body, ignore) : countHttpConnections(body);
}
