/** Envoy's connection stats: which request asks for them, and pure functions that count open connections in the answer. */
import { AdminError } from "./admin-error.ts";

/** listener: every listener's downstream_cx_active (TCP too); http: HTTP connection managers only, as Contour counts. */
export const CONNECTION_STATS = ["listener", "http"] as const;
export type ConnectionStat = (typeof CONNECTION_STATS)[number];

export interface ConnectionCount {
  /** Open downstream connections that the drain waits for. */
  total: number;
  /** The listeners (or HTTP prefixes) still holding connections, with their counts; listeners at 0 are left out. */
  byListener: Map<string, number>;
  /** Envoy's `server.live` gauge: true when health checks pass (so a drain is not in effect). */
  live: boolean | undefined;
  /**
   * Connections accepted so far (the `downstream_cx_total` counters) by counted listener or prefix, with the same
   * exclusions as the open count; undefined when Envoy reports none of them (its stats_matcher drops them).
   */
  accepted: Map<string, number> | undefined;
  /** What the connections carry, when read for it (`traffic` stats) and Envoy reports it; undefined otherwise. */
  traffic?: TrafficCount | undefined;
}

/** One HTTP connection manager's connections and requests right now. */
export interface HttpPrefixTraffic {
  /** Open connections (`downstream_cx_active`). */
  open: number;
  /** Requests in flight, upgraded streams left out (`downstream_rq_active` minus `downstream_cx_upgrades_active`). */
  requests: number;
  /** Upgraded connections: WebSocket, CONNECT (`downstream_cx_upgrades_active`). */
  upgrades: number;
  /** Open connections by protocol (`downstream_cx_http1_active`, `…http2…`, `…http3…`). */
  http1: number;
  http2: number;
  http3: number;
}

/** What open connections carry: requests by HTTP connection manager, and connections that are not HTTP. */
export interface TrafficCount {
  /** Counted HTTP connection managers by prefix (Envoy's stats tie them to no listener), those at 0 left out. */
  byPrefix: Map<string, HttpPrefixTraffic>;
  /** Open connections that no HTTP connection manager holds (TCP proxy, TLS passthrough): listeners' minus HTTP's. */
  nonHttp: number;
  /**
   * Arrival counters for the quiet period: requests by prefix without the health-check filter's
   * (`downstream_rq_total` minus `health_check.request_total`), and non-HTTP connections under NON_HTTP;
   * undefined when Envoy reports no `downstream_rq_total`.
   */
  arrivals: Map<string, number> | undefined;
}

/** The arrival counter of connections that are not HTTP. */
export const NON_HTTP = "non-HTTP";

/** HTTP connection-manager prefixes that are never user traffic (Contour excludes the same). */
const IGNORED_HTTP_PREFIXES = new Set(["admin", "envoy-admin", "stats", "health", "stats-health", "eg-ready-http", "eg-stats-http"]);

/** The stats request for the traffic count: listener connections plus what HTTP connection managers carry. */
export const TRAFFIC_STATS_PATH = `/stats?filter=${encodeURIComponent(
  String.raw`^(listener\..*\.downstream_cx_(active|total)|http\.[^.]+\.(downstream_cx_(active|total|upgrades_active|http[123]_active)|downstream_rq_(active|total)|health_check\.request_total)|server\.live)$`,
)}`;

/** The stats request for each kind of count; one small server-side-filtered response per poll. */
export function connectionStatsPath(stat: ConnectionStat): string {
  const filter =
    stat === "listener"
      ? String.raw`^(listener\..*\.downstream_cx_(active|total)|server\.live)$`
      : String.raw`^(http\..*\.downstream_cx_(active|total)|server\.live)$`;
  return stat === "listener" ? `/stats?filter=${encodeURIComponent(filter)}` : `/stats/prometheus?filter=${encodeURIComponent(filter)}`;
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

/** The counters of accepted connections each kind of count reads for the quiet period. */
export const ACCEPTED_STATS: Record<ConnectionStat, string> = {
  listener: "listener.<id>.downstream_cx_total",
  http: "http.<prefix>.downstream_cx_total",
};

/** A well-formed answer with none of the counted gauges, not even the admin listener's: Envoy's stats_matcher drops them. */
function statsMissing(stat: ConnectionStat): AdminError {
  return new AdminError(
    "stats_missing",
    `Envoy reports no ${COUNTED_STATS[stat]} gauge, not even the admin listener's: its stats_matcher excludes them, so connections cannot be counted; include ${COUNTED_STATS[stat]} in stats_matcher`,
  );
}

/**
 * Counted gauges without the admin's, which Envoy always reports: the answer was cut short (it has no end marker),
 * and what is missing could be the listeners still open, so it is no count.
 */
function adminGaugeMissing(stat: ConnectionStat): AdminError {
  const gauge = COUNTED_STATS[stat].replace(/<[a-z]+>/, "admin");
  return malformed(`the answer has ${COUNTED_STATS[stat]} gauges but not ${gauge}, which Envoy always reports: it was cut short`);
}

/** Reads a gauge value, which Envoy prints as an integer (some releases as `%g`, e.g. 1.23457e+06). */
function gaugeValue(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw malformed(`${name} has value ${JSON.stringify(value)}`);
  return Math.round(value);
}

const LISTENER_PREFIX = "listener.";
const GAUGE_SUFFIX = ".downstream_cx_active";
const COUNTER_SUFFIX = ".downstream_cx_total";
const LIVE = "server.live";
const ADMIN = "admin";

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
 * The value of a `name: value` line: an unsigned integer, read in place; other number forms (some releases print
 * `%g`, e.g. 1.23457e+06) through Number. Anything else is not what Envoy sends.
 */
function lineValue(body: string, lineStart: number, valueStart: number, end: number): number {
  const name = () => body.slice(lineStart, valueStart - 2);
  if (end === valueStart) throw malformed(`${name()} has no value`);
  let value = 0;
  for (let i = valueStart; i < end; i++) {
    const digit = body.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return gaugeValue(Number(body.slice(valueStart, end)), name());
    value = value * 10 + digit;
  }
  return value;
}

/**
 * Sums every listener's downstream_cx_active from `/stats` (text: one `name: value` line per stat), skipping the
 * admin listener, the per-thread duplicates `listener.<id>.worker_3.…` and `listener.<id>.main_thread.…`, and
 * ignored listeners. Listener ids contain dots (`0.0.0.0_8080`), so the id is everything between the fixed prefix
 * and suffix. Lines are read in place: a poll may hold 15,000 of them, and a string or object per line would cost
 * more than the parse itself.
 */
export function countListenerConnections(body: string, ignore: readonly RegExp[]): ConnectionCount {
  return scanListeners(body, ignore).count;
}

/** The listener count, and the open connections of the listeners it leaves out by `ignore` (the admin's aside). */
function scanListeners(body: string, ignore: readonly RegExp[]): { count: ConnectionCount; ignoredOpen: number } {
  // A Map: polls may name thousands of listeners, and a plain object with that many keys is several times slower.
  const byListener = new Map<string, number>();
  const accepted = new Map<string, number>();
  let total = 0;
  let ignoredOpen = 0;
  let live: boolean | undefined;
  let sawGauge = false;
  let sawAdmin = false;
  for (let start = 0; start < body.length; ) {
    const newline = body.indexOf("\n", start);
    const end = newline < 0 ? body.length : newline;
    const separator = body.indexOf(": ", start);
    if (separator < 0 || separator > end || body.charCodeAt(separator - 1) === 32 /* space */)
      throw malformed(`not a "name: value" line: ${JSON.stringify(body.slice(start, Math.min(end, start + 100)))}`);
    const value = lineValue(body, start, separator + 2, end);
    const isGauge = body.startsWith(GAUGE_SUFFIX, separator - GAUGE_SUFFIX.length);
    if (separator - start === LIVE.length && body.startsWith(LIVE, start)) live = value === 1;
    else if (body.startsWith(LISTENER_PREFIX, start) && (isGauge || body.startsWith(COUNTER_SUFFIX, separator - COUNTER_SUFFIX.length))) {
      const idStart = start + LISTENER_PREFIX.length;
      const idEnd = separator - (isGauge ? GAUGE_SUFFIX : COUNTER_SUFFIX).length;
      const lastDot = body.lastIndexOf(".", idEnd - 1);
      const perThread = lastDot >= idStart && isThreadSegment(body, lastDot + 1, idEnd);
      if (idEnd > idStart && !perThread) {
        if (isGauge) sawGauge = true;
        const isAdmin = idEnd - idStart === ADMIN.length && body.startsWith(ADMIN, idStart);
        if (isAdmin && isGauge) sawAdmin = true;
        if ((value > 0 || !isGauge) && !isAdmin) {
          const id = body.slice(idStart, idEnd);
          if (!ignore.some((pattern) => pattern.test(id))) {
            if (!isGauge) accepted.set(id, value);
            else {
              byListener.set(id, value);
              total += value;
            }
          } else if (isGauge) ignoredOpen += value;
        }
      }
    }
    start = end + 1;
  }
  // Envoy always reports its admin listener (our own poll is open on it): no gauge at all means they are filtered out.
  if (!sawGauge) throw statsMissing("listener");
  if (!sawAdmin) throw adminGaugeMissing("listener");
  return { count: { total, byListener, live, accepted: accepted.size > 0 ? accepted : undefined }, ignoredOpen };
}

// A Prometheus sample line: name, optional {labels}, value.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const PREFIX_LABEL = /(?:^|,)envoy_http_conn_manager_prefix="((?:[^"\\]|\\.)*)"/;

/** Sums `envoy_http_downstream_cx_active` by connection-manager prefix from `/stats/prometheus`, as Contour does. */
export function countHttpConnections(body: string): ConnectionCount {
  const byListener = new Map<string, number>();
  const accepted = new Map<string, number>();
  let total = 0;
  let live: boolean | undefined;
  let sawGauge = false;
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
    const isGauge = name === "envoy_http_downstream_cx_active";
    if (!isGauge && name !== "envoy_http_downstream_cx_total") continue;
    const prefix = PREFIX_LABEL.exec(labels)?.[1];
    if (prefix === undefined) continue;
    if (isGauge) sawGauge = true;
    if (isGauge && prefix === ADMIN) sawAdmin = true;
    if (IGNORED_HTTP_PREFIXES.has(prefix)) continue;
    if (!isGauge) accepted.set(prefix, (accepted.get(prefix) ?? 0) + value);
    else if (value > 0) {
      byListener.set(prefix, (byListener.get(prefix) ?? 0) + value);
      total += value;
    }
  }
  if (!sawGauge) throw statsMissing("http");
  if (!sawAdmin) throw adminGaugeMissing("http");
  return { total, byListener, live, accepted: accepted.size > 0 ? accepted : undefined };
}

const HTTP_PREFIX = "http.";
/** The HTTP stats the traffic count reads, by the name after `http.<prefix>.`. */
const HTTP_FIELDS = [
  "downstream_cx_active",
  "downstream_cx_total",
  "downstream_cx_upgrades_active",
  "downstream_cx_http1_active",
  "downstream_cx_http2_active",
  "downstream_cx_http3_active",
  "downstream_rq_active",
  "downstream_rq_total",
  "health_check.request_total",
] as const;
type HttpField = (typeof HTTP_FIELDS)[number];

/** The request gauge the traffic count needs; without it (stats_matcher) the drain counts connections. */
export const REQUEST_STATS = "http.<prefix>.downstream_rq_active";
/** The counter of arriving requests the traffic count's quiet period follows. */
export const REQUEST_COUNTER_STATS = "http.<prefix>.downstream_rq_total";

/**
 * Reads the `http.<prefix>.<stat>` lines of a text stats body into each prefix's stats. The prefix is the name's
 * first segment, as Envoy's own tag extraction takes it, so deeper names (`http.<prefix>.user_agent.…`) are left out.
 */
function httpStats(body: string): Map<string, Partial<Record<HttpField, number>>> {
  const byPrefix = new Map<string, Partial<Record<HttpField, number>>>();
  const nextLine = (from: number) => body.indexOf(`\n${HTTP_PREFIX}`, from);
  for (let at = body.startsWith(HTTP_PREFIX) ? 0 : nextLine(0); at >= 0; at = nextLine(at)) {
    const start = body.charCodeAt(at) === 10 ? at + 1 : at;
    const newline = body.indexOf("\n", start);
    const end = newline < 0 ? body.length : newline;
    // countListenerConnections has checked every line's `name: value` form.
    const separator = body.indexOf(": ", start);
    const dot = body.indexOf(".", start + HTTP_PREFIX.length);
    if (dot > 0 && dot < separator) {
      const field = body.slice(dot + 1, separator) as HttpField;
      if ((HTTP_FIELDS as readonly string[]).includes(field)) {
        const prefix = body.slice(start + HTTP_PREFIX.length, dot);
        const stats = byPrefix.get(prefix) ?? {};
        stats[field] = lineValue(body, start, separator + 2, end);
        byPrefix.set(prefix, stats);
      }
    }
    at = end;
  }
  return byPrefix;
}

/**
 * The traffic count: the listener count (as countListenerConnections), plus what HTTP connection managers carry.
 * Prefixes are counted with the same exclusions as listeners (Contour's and Envoy Gateway's own, and `ignore`).
 * Without any `downstream_rq_active` gauge, not even the admin's, `traffic` is undefined: stats_matcher drops it.
 *
 * Non-HTTP connections are the counted listeners' minus the counted prefixes'. The stats do not say which listener a
 * prefix serves, so a counted prefix may hold connections of a listener left out (a readiness listener whose
 * prefix is not excluded): those are subtracted only as far as the left-out listeners' connections are not
 * explained by left-out prefixes, so a non-HTTP connection is never taken for one of them.
 */
export function countTraffic(body: string, ignore: readonly RegExp[]): ConnectionCount {
  const { count, ignoredOpen } = scanListeners(body, ignore);
  const stats = httpStats(body);
  if (![...stats.values()].some((s) => s.downstream_rq_active !== undefined)) return count;
  const byPrefix = new Map<string, HttpPrefixTraffic>();
  let requestsArrived: Map<string, number> | undefined = new Map();
  let httpOpen = 0;
  let httpAccepted = 0;
  let ignoredHttpOpen = 0;
  for (const [prefix, s] of stats) {
    if (IGNORED_HTTP_PREFIXES.has(prefix) || ignore.some((pattern) => pattern.test(prefix))) {
      if (prefix !== ADMIN) ignoredHttpOpen += s.downstream_cx_active ?? 0;
      continue;
    }
    const open = s.downstream_cx_active ?? 0;
    const upgrades = s.downstream_cx_upgrades_active ?? 0;
    httpOpen += open;
    httpAccepted += s.downstream_cx_total ?? 0;
    if (s.downstream_rq_total === undefined) requestsArrived = undefined;
    else requestsArrived?.set(prefix, Math.max(0, s.downstream_rq_total - (s["health_check.request_total"] ?? 0)));
    const requests = Math.max(0, (s.downstream_rq_active ?? 0) - upgrades);
    if (open === 0 && requests === 0) continue;
    byPrefix.set(prefix, {
      open,
      requests,
      upgrades,
      http1: s.downstream_cx_http1_active ?? 0,
      http2: s.downstream_cx_http2_active ?? 0,
      http3: s.downstream_cx_http3_active ?? 0,
    });
  }
  const listenerAccepted = count.accepted ? [...count.accepted.values()].reduce((a, b) => a + b, 0) : undefined;
  const arrivals =
    requestsArrived && listenerAccepted !== undefined
      ? requestsArrived.set(NON_HTTP, Math.max(0, listenerAccepted - httpAccepted))
      : undefined;
  const unexplained = Math.max(0, ignoredOpen - ignoredHttpOpen);
  return { ...count, traffic: { byPrefix, nonHttp: Math.max(0, count.total - Math.max(0, httpOpen - unexplained)), arrivals } };
}

/** Parses a stats body of the configured kind. */
export function countConnections(stat: ConnectionStat, body: string, ignore: readonly RegExp[]): ConnectionCount {
  return stat === "listener" ? countListenerConnections(body, ignore) : countHttpConnections(body);
}
