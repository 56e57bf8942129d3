/**
 * A fake Envoy admin API that answers as docs/envoy-admin.md says Envoy does (routing, methods, status codes,
 * bodies, stat names and output formats), over TCP and optionally a Unix socket.
 *
 * scripted mode: listener connection counts follow a timeline set by the test (relative to /healthcheck/fail).
 * live mode: a real data-plane listener behind one HTTP connection manager (`ingress_http`); its open sockets are the
 * count. It drains as released Envoy does (docs/envoy-admin.md, "What a drain does to each kind of connection"):
 * after /healthcheck/fail each response carries `connection: close` and the socket closes after it, but an idle
 * keep-alive socket stays open; an idle HTTP/2 connection gets no GOAWAY; an upgraded (WebSocket) connection and a
 * streaming response are never closed by a drain; after a graceful /drain_listeners a response closes its connection
 * only with probability elapsed / drain time; stop() (SIGTERM) resets every connection at once.
 *
 * The data plane speaks HTTP/1.1 only. A connection that opens with HTTP/2's preface is an HTTP/2 connection as far
 * as the stats and the drain go (GOAWAY is sent as `connection: close` on the next response), but its requests are
 * written in HTTP/1.1 form: Bun serves no HTTP/2 here, so only its stats and drain behaviour are modelled.
 */
import type { Server, Socket, TCPSocketListener } from "bun";

export type Fault =
  | { kind: "hang" }
  | { kind: "delay"; ms: number }
  | { kind: "status"; status: number; body?: string }
  | { kind: "body"; body: string; contentType?: string }
  /** Headers at once, then the normal body one byte every `intervalMs`. */
  | { kind: "trickle"; intervalMs: number }
  | { kind: "redirect"; location: string };

export interface TimelineStep {
  /** Milliseconds after the first /healthcheck/fail. */
  afterFailMs: number;
  /** Open connections of the main HTTP listener, or of each listener by id. */
  connections: number | Record<string, number>;
}

export interface FakeEnvoyOptions {
  mode?: "scripted" | "live";
  /** Also serve the admin API on this Unix socket path. */
  unixSocket?: string;
  /** The admin API's loopback port; any free one when unset (tests always leave it unset). */
  adminPort?: number;
  /** Envoy release, e.g. "1.36.2"; before 1.28 `skip_exit` is unknown. */
  version?: string;
  /** Worker threads (per-worker gauges duplicate the aggregate). */
  concurrency?: number;
  /** How often lagging gauges (server.total_connections, server.state) are recomputed. */
  statsFlushIntervalMs?: number;
  /** scripted: initial connections of the main HTTP listener, or by listener id. */
  connections?: number | Record<string, number>;
  /** scripted: how the counts change after /healthcheck/fail. */
  timeline?: TimelineStep[];
  /** Start with health checks failed, as a leftover drain (or Envoy's `drain` flag file) would. */
  healthCheckFailed?: boolean;
  /** live: connections of a TCP proxy listener that never close, whatever the drain does. */
  stuckConnections?: number;
  /** live: how long the data plane takes to answer a request (an upstream's latency), so requests are in flight. */
  responseDelayMs?: number;
  /** live: Envoy's --drain-time-s, over which a graceful listener drain closes connections at their responses. */
  drainTimeMs?: number;
  /** Stats whose names match do not exist, as with a stats_matcher that rejects them. */
  excludeStats?: RegExp;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  at: number;
}

/** What one normal stats answer told the client: the counted connections, and whether health checks passed. */
export interface ServedCount {
  at: number;
  open: number;
  live: boolean;
}

/** The listener ids the fake reports besides admin. */
export const MAIN_LISTENER = "0.0.0.0_8080";
export const TCP_LISTENER = "0.0.0.0_9443";
export const STATS_LISTENER = "0.0.0.0_19001";

type StatType = "counter" | "gauge";
interface Stat {
  name: string;
  type: StatType;
  value: number;
}

const ENVOY_HEADERS = {
  "cache-control": "no-cache, max-age=0",
  "x-content-type-options": "nosniff",
  server: "envoy",
};
const TEXT_TYPE = "text/plain; charset=UTF-8";

const MUTATING = new Set([
  "/cpuprofiler",
  "/heapprofiler",
  "/healthcheck/fail",
  "/healthcheck/ok",
  "/logging",
  "/quitquitquit",
  "/reset_counters",
  "/drain_listeners",
  "/stats/recentlookups/clear",
  "/stats/recentlookups/disable",
  "/stats/recentlookups/enable",
  "/runtime_modify",
  "/reopen_logs",
]);
const HELP: Record<string, string> = {
  "/": "Admin home page",
  "/drain_listeners": "drain listeners",
  "/healthcheck/fail": "cause the server to fail health checks",
  "/healthcheck/ok": "cause the server to pass health checks",
  "/quitquitquit": "exit the server",
  "/ready": "print server state, return 200 if LIVE, otherwise return 503",
  "/server_info": "print server version/status information",
  "/stats": "print server stats",
  "/stats/prometheus": "print server stats in prometheus format",
};

const HISTOGRAM_QUANTILES = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

/** Streams a body so HTTP/1.1 answers use chunked transfer encoding, as Envoy's admin does. */
function envoyResponse(status: number, body: string, contentType = TEXT_TYPE): Response {
  const bytes = new TextEncoder().encode(body);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length) controller.enqueue(bytes);
      controller.close();
    },
  });
  return new Response(stream, { status, headers: { "content-type": contentType, ...ENVOY_HEADERS } });
}

/** The same answer, its body sent one byte at a time. */
async function trickle(response: Response, intervalMs: number): Promise<Response> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  let sent = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setInterval(() => {
        if (sent >= bytes.length) {
          clearInterval(timer);
          return controller.close();
        }
        controller.enqueue(bytes.subarray(sent, ++sent));
      }, intervalMs);
    },
    cancel: () => clearInterval(timer),
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

/** Envoy percent-decodes parameters but, unlike URLSearchParams, leaves `+` alone. */
function parseQuery(query: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    };
    params.set(decode(eq < 0 ? part : part.slice(0, eq)), decode(eq < 0 ? "" : part.slice(eq + 1)));
  }
  return params;
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  return a > major || (a === major && b >= minor);
}

/** The path Envoy's health-check filter answers on the data plane: 200, or 503 once health checks fail. */
export const HEALTH_CHECK_PATH = "/healthz";
/** Paths whose response streams until the client goes away (server-sent events, a long download). */
export const STREAM_PATH = "/stream";
/** What an HTTP/2 connection sends first. */
export const HTTP2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/** How often a streaming response sends a chunk. */
const STREAM_CHUNK_MS = 250;

/** One data-plane connection, as Envoy's HTTP connection manager sees it. */
interface DataConnection {
  buffer: string;
  /** Set by the first bytes, as Envoy creates its codec lazily: a connection that sends nothing has none. */
  protocol: "none" | "http1" | "http2";
  /** Requests in flight (an upgraded connection's stream, or a streaming response, stays one until it closes). */
  inFlight: number;
  /** An upgrade was asked for: Envoy counts it in downstream_cx_upgrades_active from the request on. */
  upgraded: boolean;
  /** The upgrade was accepted (101): the connection is a tunnel from then on. */
  tunnel: boolean;
  /** A response told the client that the connection closes (or, for HTTP/2, sent GOAWAY): it closes once idle. */
  closing: boolean;
  timers: ReturnType<typeof setInterval>[];
}

/** A minimal HTTP/1.1 origin behind a fake HTTP connection manager, holding real client connections. */
interface DataPlane {
  listener: TCPSocketListener<DataConnection>;
  sockets: Set<Socket<DataConnection>>;
}

/** The HTTP connection manager prefix of the live data plane. */
export const DATA_PREFIX = "ingress_http";

export class FakeEnvoy {
  readonly requests: RecordedRequest[] = [];
  readonly servedCounts: ServedCount[] = [];
  /** /healthcheck/fail requests that reached the handler (not faulted). */
  failPosts = 0;
  /** Simulated Envoy restarts. */
  restarts = 0;
  readonly options: Required<Pick<FakeEnvoyOptions, "mode" | "version" | "concurrency" | "statsFlushIntervalMs">> & FakeEnvoyOptions;
  private tcp: Server<undefined> | undefined;
  private unix: Server<undefined> | undefined;
  private port = 0;
  private dataPlane: DataPlane | undefined;
  private faults = new Map<string, Fault>();
  private healthCheckFailed: boolean;
  private drainSequenceStarted = false;
  private startedAt = Date.now();
  private adminActive = 0;
  private adminTotal = 0;
  private scripted: Record<string, number> = {};
  private timelineTimers: ReturnType<typeof setTimeout>[] = [];
  private totals: Record<string, number> = {};
  private used = new Set<string>();
  private lagging = { totalConnections: 0, state: 0 };
  private drainStartedAt = 0;
  /** The live HTTP connection manager's counters: requests, and those the health-check filter answered. */
  private requestsTotal = 0;
  private healthChecksTotal = 0;
  private flushTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: FakeEnvoyOptions = {}) {
    this.options = { mode: "scripted", version: "1.36.2", concurrency: 2, statsFlushIntervalMs: 5000, ...options };
    this.healthCheckFailed = options.healthCheckFailed ?? false;
    this.port = options.adminPort ?? 0;
    this.setConnections(options.connections ?? 0);
  }

  /** Starts the admin API (and, in live mode, the data-plane listener). */
  async start(): Promise<this> {
    if (this.options.mode === "live") this.dataPlane = this.startDataPlane();
    this.startAdmin();
    this.flush();
    this.flushTimer = setInterval(() => this.flush(), this.options.statsFlushIntervalMs);
    return this;
  }

  /** Stops everything and closes every socket. */
  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    for (const timer of this.timelineTimers) clearTimeout(timer);
    this.stopAdmin();
    if (this.dataPlane) {
      // Envoy exits without waiting for any connection: each is reset, whatever it carries.
      for (const socket of this.dataPlane.sockets) this.forget(socket).terminate();
      this.dataPlane.listener.stop(true);
    }
  }

  /** The admin address as `host:port`. */
  get adminAddress(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The data-plane port (live mode). */
  get dataPort(): number {
    if (!this.dataPlane) throw new Error("the fake has no data plane (scripted mode)");
    return this.dataPlane.listener.port;
  }

  /** Stops answering on the admin port: clients get connection refused, as when Envoy has exited. */
  stopAdmin(): void {
    this.tcp?.stop(true);
    this.unix?.stop(true);
    this.tcp = undefined;
    this.unix = undefined;
  }

  /** Serves the admin API again, on the same port and socket as before. */
  startAdmin(): void {
    if (this.tcp) return;
    const fetch = (request: Request) => this.handle(request);
    this.tcp = Bun.serve({ port: this.port, hostname: "127.0.0.1", fetch, idleTimeout: 0 });
    this.port = this.tcp.port ?? 0;
    if (this.options.unixSocket) this.unix = Bun.serve({ unix: this.options.unixSocket, fetch });
  }

  /** Simulates an Envoy restart: health checks pass again, stats reset, listeners not yet loaded, connections cut. */
  restart(connections: number | Record<string, number> = {}): void {
    this.restarts += 1;
    this.healthCheckFailed = false;
    this.drainSequenceStarted = false;
    this.startedAt = Date.now();
    this.requestsTotal = 0;
    this.healthChecksTotal = 0;
    for (const timer of this.timelineTimers) clearTimeout(timer);
    this.totals = {};
    this.used.clear();
    this.scripted = {};
    this.setConnections(connections);
    if (this.dataPlane) for (const socket of this.dataPlane.sockets) this.forget(socket).terminate();
    this.flush();
  }

  /** Makes requests to a path (or "*" for every path) misbehave; undefined restores normal answers. */
  setFault(path: string, fault: Fault | undefined): void {
    if (fault) this.faults.set(path, fault);
    else this.faults.delete(path);
  }

  /** scripted: sets the open connections of the main listener, or of listeners by id. */
  setConnections(connections: number | Record<string, number>): void {
    const byId = typeof connections === "number" ? { [MAIN_LISTENER]: connections } : connections;
    for (const [id, count] of Object.entries(byId)) {
      const before = this.scripted[id] ?? 0;
      if (count > before) this.totals[id] = (this.totals[id] ?? 0) + (count - before);
      this.scripted[id] = count;
      if (count > 0) this.used.add(id);
    }
  }

  /** Requests received for a path (after slash merging), optionally of one method. */
  calls(path: string, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path && (method === undefined || r.method === method));
  }

  /** Open downstream connections on the data plane, as Envoy's listener gauge would count them. */
  get openConnections(): number {
    return Object.values(this.listenerCounts()).reduce((a, b) => a + b, 0);
  }

  get isHealthCheckFailed(): boolean {
    return this.healthCheckFailed;
  }

  // ---- data plane (live mode) ----

  private startDataPlane(): DataPlane {
    const sockets = new Set<Socket<DataConnection>>();
    const listener = Bun.listen<DataConnection>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (socket) => {
          socket.data = { buffer: "", protocol: "none", inFlight: 0, upgraded: false, tunnel: false, closing: false, timers: [] };
          sockets.add(socket);
          const id = this.dataListenerId();
          this.totals[id] = (this.totals[id] ?? 0) + 1;
          this.used.add(id);
        },
        data: (socket, chunk) => this.receive(socket, chunk.toString("latin1")),
        close: (socket) => void this.forget(socket),
        error: (socket) => void this.forget(socket),
      },
    });
    return { listener, sockets };
  }

  /** Drops a connection from the counts and stops its streams; returns it. */
  private forget(socket: Socket<DataConnection>): Socket<DataConnection> {
    this.dataPlane?.sockets.delete(socket);
    for (const timer of socket.data?.timers ?? []) clearInterval(timer);
    return socket;
  }

  /** Reads request heads (requests carry no body here); an upgraded connection echoes what it gets. */
  private receive(socket: Socket<DataConnection>, text: string): void {
    const connection = socket.data;
    if (connection.tunnel) return void socket.write(text);
    connection.buffer += text;
    if (connection.protocol === "none") {
      if (HTTP2_PREFACE.startsWith(connection.buffer) && connection.buffer.length < HTTP2_PREFACE.length) return;
      connection.protocol = connection.buffer.startsWith(HTTP2_PREFACE) ? "http2" : "http1";
      if (connection.protocol === "http2") connection.buffer = connection.buffer.slice(HTTP2_PREFACE.length);
    }
    for (let end = connection.buffer.indexOf("\r\n\r\n"); end >= 0; end = connection.buffer.indexOf("\r\n\r\n")) {
      const head = connection.buffer.slice(0, end);
      connection.buffer = connection.buffer.slice(end + 4);
      this.request(socket, head);
    }
  }

  /** One request: the health-check filter's, an upgrade, a stream, or an ordinary one answered after the latency. */
  private request(socket: Socket<DataConnection>, head: string): void {
    const connection = socket.data;
    const path = head.slice(head.indexOf(" ") + 1, head.indexOf(" ", head.indexOf(" ") + 1));
    this.requestsTotal += 1;
    connection.inFlight += 1;
    // A client that asks to close gets its answer, then the connection closes.
    if (/^connection:\s*close/im.test(head)) connection.closing = true;
    if (path === HEALTH_CHECK_PATH) {
      // Answered by the filter itself, at once: 503 once failing.
      this.healthChecksTotal += 1;
      this.respond(socket, this.healthCheckFailed ? "503 Service Unavailable" : "200 OK");
      return;
    }
    const { responseDelayMs = 0 } = this.options;
    const later = (answer: () => void) => {
      if (responseDelayMs > 0) setTimeout(answer, responseDelayMs);
      else answer();
    };
    connection.upgraded ||= /^upgrade:\s*websocket/im.test(head);
    if (connection.upgraded) later(() => this.upgrade(socket));
    else if (path.startsWith(STREAM_PATH)) later(() => this.stream(socket));
    else later(() => this.respond(socket, "200 OK"));
  }

  /** Answers an ordinary request; with the drain's `connection: close` (GOAWAY), the connection closes once idle. */
  private respond(socket: Socket<DataConnection>, status: string): void {
    if (!this.dataPlane?.sockets.has(socket)) return;
    const connection = socket.data;
    connection.inFlight -= 1;
    connection.closing ||= this.drainClose();
    socket.write(
      `HTTP/1.1 ${status}\r\ncontent-length: 3\r\ncontent-type: text/plain\r\nserver: envoy\r\n${connection.closing ? "connection: close\r\n" : ""}\r\nok\n`,
    );
    if (connection.closing && connection.inFlight === 0) socket.end();
  }

  /** Accepts a WebSocket upgrade: no drain ever closes the connection (Envoy sends no `connection: close` on one). */
  private upgrade(socket: Socket<DataConnection>): void {
    if (!this.dataPlane?.sockets.has(socket)) return;
    socket.data.tunnel = true;
    socket.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nserver: envoy\r\n\r\n");
  }

  /** A response that streams a chunk at a time until the client goes away: a drain never ends it. */
  private stream(socket: Socket<DataConnection>): void {
    if (!this.dataPlane?.sockets.has(socket)) return;
    socket.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\nserver: envoy\r\n\r\n");
    socket.data.timers.push(setInterval(() => socket.write("5\r\ndata\n\r\n"), STREAM_CHUNK_MS));
  }

  private dataListenerId(): string {
    return `127.0.0.1_${this.dataPlane?.listener.port ?? 0}`;
  }

  /** Listeners with the connections they hold right now. */
  private listenerCounts(): Record<string, number> {
    if (this.options.mode === "scripted") return { ...this.scripted };
    const stuck: Record<string, number> = this.options.stuckConnections ? { [TCP_LISTENER]: this.options.stuckConnections } : {};
    return { [this.dataListenerId()]: this.dataPlane?.sockets.size ?? 0, ...stuck };
  }

  /**
   * Whether a response now carries `connection: close`: always once health checks fail; during a graceful listener
   * drain with probability elapsed / drain time, as Envoy's gradual drain strategy decides.
   */
  private drainClose(): boolean {
    if (this.healthCheckFailed) return true;
    if (!this.drainSequenceStarted) return false;
    const { drainTimeMs = 600_000 } = this.options;
    return Math.random() < (Date.now() - this.drainStartedAt) / drainTimeMs;
  }

  /** The live HTTP connection manager's gauges, from its connections. */
  private httpGauges(): Record<string, number> {
    const gauges = { requests: 0, upgrades: 0, http1: 0, http2: 0 };
    for (const socket of this.dataPlane?.sockets ?? []) {
      const connection = socket.data;
      gauges.requests += connection.inFlight;
      if (connection.upgraded) gauges.upgrades += 1;
      if (connection.protocol === "http1") gauges.http1 += 1;
      if (connection.protocol === "http2") gauges.http2 += 1;
    }
    return gauges;
  }

  // ---- stats ----

  private flush(): void {
    this.lagging.totalConnections = Object.entries(this.listenerCounts()).reduce((sum, [, n]) => sum + n, 0);
    this.lagging.state = this.healthCheckFailed ? 1 : 0;
  }

  /** Every stat with its current value, as Envoy names them. */
  private allStats(): Stat[] {
    const stats: Stat[] = [];
    const gauge = (name: string, value: number) => stats.push({ name, type: "gauge", value });
    const counter = (name: string, value: number) => stats.push({ name, type: "counter", value });
    const workers = this.options.concurrency;
    const counts = this.listenerCounts();
    counts[STATS_LISTENER] ??= 1; // a Prometheus scraper's keep-alive connection
    /** A stat's share of worker `w`: per-worker copies add up to the aggregate. */
    const share = (value: number, w: number) => Math.floor(value / workers) + (w < value % workers ? 1 : 0);
    for (const [id, count] of Object.entries(counts)) {
      const total = this.totals[id] ?? count;
      gauge(`listener.${id}.downstream_cx_active`, count);
      counter(`listener.${id}.downstream_cx_total`, total);
      for (let w = 0; w < workers; w++) {
        gauge(`listener.${id}.worker_${w}.downstream_cx_active`, share(count, w));
        counter(`listener.${id}.worker_${w}.downstream_cx_total`, share(total, w));
      }
      const prefix = id === STATS_LISTENER ? "stats" : id === TCP_LISTENER ? undefined : DATA_PREFIX;
      if (prefix) {
        gauge(`http.${prefix}.downstream_cx_active`, count);
        counter(`http.${prefix}.downstream_cx_total`, total);
        // A scripted listener's connections are idle HTTP/1.1 ones; the live one reports what it carries.
        const live = prefix === DATA_PREFIX && this.dataPlane ? this.httpGauges() : { requests: 0, upgrades: 0, http1: count, http2: 0 };
        gauge(`http.${prefix}.downstream_rq_active`, live.requests ?? 0);
        counter(`http.${prefix}.downstream_rq_total`, prefix === DATA_PREFIX ? this.requestsTotal : total);
        gauge(`http.${prefix}.downstream_cx_upgrades_active`, live.upgrades ?? 0);
        gauge(`http.${prefix}.downstream_cx_http1_active`, live.http1 ?? 0);
        gauge(`http.${prefix}.downstream_cx_http2_active`, live.http2 ?? 0);
        gauge(`http.${prefix}.downstream_cx_http3_active`, 0);
        if (prefix === DATA_PREFIX) counter(`http.${prefix}.health_check.request_total`, this.healthChecksTotal);
      }
    }
    // Every admin request is a connection of the admin listener (each poll opens one).
    gauge("listener.admin.downstream_cx_active", this.adminActive);
    counter("listener.admin.downstream_cx_total", this.adminTotal);
    gauge("listener.admin.main_thread.downstream_cx_active", this.adminActive);
    counter("listener.admin.main_thread.downstream_cx_total", this.adminTotal);
    gauge("http.admin.downstream_cx_active", this.adminActive);
    counter("http.admin.downstream_cx_total", this.adminTotal);
    gauge("http.admin.downstream_rq_active", this.adminActive);
    counter("http.admin.downstream_rq_total", this.adminTotal);
    gauge("server.live", this.healthCheckFailed ? 0 : 1);
    gauge("server.state", this.lagging.state);
    gauge("server.total_connections", this.lagging.totalConnections);
    gauge("server.parent_connections", 0);
    counter("server.uptime", Math.floor((Date.now() - this.startedAt) / 1000));
    return stats;
  }

  private isUsed(stat: Stat): boolean {
    if (stat.value > 0 || stat.name.startsWith("server.") || stat.name.includes(".admin.") || stat.name.startsWith("listener.admin."))
      return true;
    return [...this.used].some((id) => stat.name.startsWith(`listener.${id}.`));
  }

  private histogramNames(): string[] {
    return Object.keys(this.listenerCounts()).map((id) => `listener.${id}.downstream_cx_length_ms`);
  }

  private statsResponse(params: Map<string, string>, forcedFormat?: string): Response {
    const format = forcedFormat ?? params.get("format") ?? "text";
    this.servedCounts.push({ at: Date.now(), open: this.openConnections, live: !this.healthCheckFailed });
    if (!["text", "json", "prometheus", "html", "active-html"].includes(format)) {
      return envoyResponse(400, "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n");
    }
    const type = params.get("type") ?? "All";
    if (!["All", "Counters", "Gauges", "Histograms", "TextReadouts"].includes(type)) return envoyResponse(400, "invalid &type= param");
    const buckets = params.get("histogram_buckets");
    if (buckets !== undefined && !["cumulative", "disjoint", "detailed", "none"].includes(buckets)) {
      return envoyResponse(400, "usage: /stats?histogram_buckets=(cumulative|disjoint|none)\n");
    }
    let filter: RegExp | undefined;
    const pattern = params.get("filter");
    if (pattern) {
      try {
        filter = new RegExp(pattern);
      } catch {
        return envoyResponse(400, "Invalid re2 regex");
      }
    }
    const excluded = this.options.excludeStats;
    const keep = (name: string) => (!filter || filter.test(name)) && !excluded?.test(name);
    const usedOnly = params.has("usedonly");
    const stats = this.allStats()
      .filter((s) => keep(s.name) && (!usedOnly || this.isUsed(s)))
      .filter((s) => type === "All" || (type === "Counters" && s.type === "counter") || (type === "Gauges" && s.type === "gauge"))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const histograms = type === "All" || type === "Histograms" ? this.histogramNames().filter(keep).sort() : [];
    if (format === "json") return envoyResponse(200, this.renderJson(stats, histograms), "application/json");
    if (format === "prometheus") return envoyResponse(200, this.renderPrometheus(stats, histograms));
    const lines = [...stats.map((s) => `${s.name}: ${s.value}\n`), ...histograms.map((h) => `${h}: No recorded values\n`)];
    return envoyResponse(200, lines.join(""), format === "text" ? TEXT_TYPE : "text/html; charset=UTF-8");
  }

  private renderJson(stats: Stat[], histograms: string[]): string {
    const entries = stats.map((s) => JSON.stringify({ name: s.name, value: s.value }));
    if (histograms.length) {
      const computed = histograms.map((name) => ({ name, values: HISTOGRAM_QUANTILES.map(() => ({ cumulative: null, interval: null })) }));
      entries.push(JSON.stringify({ histograms: { supported_quantiles: HISTOGRAM_QUANTILES, computed_quantiles: computed } }));
    }
    return `{"stats":[${entries.join(",")}]}`;
  }

  /** Envoy's tag extraction for the stats the fake has: metric name and labels. */
  private prometheusName(name: string): { metric: string; labels: string } {
    const sanitize = (s: string) => `envoy_${s.replace(/[^a-zA-Z0-9_]/g, "_")}`;
    if (name.startsWith("listener.admin.")) return { metric: sanitize(name), labels: "" };
    const worker = /^listener\.(.+)\.worker_(\d+)\.(.+)$/.exec(name);
    if (worker)
      return {
        metric: sanitize(`listener.worker.${worker[3]}`),
        labels: `envoy_worker_id="${worker[2]}",envoy_listener_address="${worker[1]}"`,
      };
    const listener = /^listener\.(.+)\.(downstream_[a-z_]+)$/.exec(name);
    if (listener) return { metric: sanitize(`listener.${listener[2]}`), labels: `envoy_listener_address="${listener[1]}"` };
    const http = /^http\.([^.]+)\.(.+)$/.exec(name);
    if (http) return { metric: sanitize(`http.${http[2]}`), labels: `envoy_http_conn_manager_prefix="${http[1]}"` };
    return { metric: sanitize(name), labels: "" };
  }

  private renderPrometheus(stats: Stat[], histograms: string[]): string {
    const families = new Map<string, { type: string; lines: { name: string; line: string }[] }>();
    const add = (type: string, metric: string, name: string, line: string) => {
      const family = families.get(`${type}\0${metric}`) ?? { type, lines: [] };
      family.lines.push({ name, line });
      families.set(`${type}\0${metric}`, family);
    };
    for (const stat of stats) {
      const { metric, labels } = this.prometheusName(stat.name);
      add(stat.type, metric, stat.name, `${metric}{${labels}} ${stat.value}\n`);
    }
    for (const name of histograms) {
      const { metric, labels } = this.prometheusName(name);
      const sep = labels ? `${labels},` : "";
      const bounds = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
      const lines = [
        ...bounds.map((b) => `${metric}_bucket{${sep}le="${b}"} 0\n`),
        `${metric}_bucket{${sep}le="+Inf"} 0\n`,
        `${metric}_sum{${labels}} 0\n`,
        `${metric}_count{${labels}} 0\n`,
      ];
      add("histogram", metric, name, lines.join(""));
    }
    const order = ["counter", "gauge", "histogram"];
    const sorted = [...families.entries()].sort(([a], [b]) => {
      const [ta = "", ma = ""] = a.split("\0");
      const [tb = "", mb = ""] = b.split("\0");
      return order.indexOf(ta) - order.indexOf(tb) || (ma < mb ? -1 : ma > mb ? 1 : 0);
    });
    return sorted
      .map(([key, family]) => {
        const metric = key.split("\0")[1];
        const lines = family.lines.sort((a, b) => (a.name < b.name ? -1 : 1)).map((l) => l.line);
        return `# TYPE ${metric} ${family.type}\n${lines.join("")}\n`;
      })
      .join("");
  }

  // ---- admin endpoints ----

  private async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.replace(/\/{2,}/g, "/");
    let query = url.search.slice(1);
    if (!url.search && request.headers.get("content-type") === "application/x-www-form-urlencoded") query = await request.text();
    this.requests.push({ method: request.method, path, query, at: Date.now() });
    this.adminActive += 1;
    this.adminTotal += 1;
    try {
      const fault = this.faults.get(path) ?? this.faults.get("*");
      if (fault) {
        if (fault.kind === "hang") return await new Promise<Response>(() => {});
        if (fault.kind === "delay") await Bun.sleep(fault.ms);
        if (fault.kind === "status") return envoyResponse(fault.status, fault.body ?? "upstream error\n");
        if (fault.kind === "body") return envoyResponse(200, fault.body, fault.contentType ?? "application/json");
        if (fault.kind === "redirect") return new Response(null, { status: 302, headers: { location: fault.location, ...ENVOY_HEADERS } });
        if (fault.kind === "trickle") return trickle(this.route(request.method, path, parseQuery(query)), fault.intervalMs);
      }
      return this.route(request.method, path, parseQuery(query));
    } finally {
      this.adminActive -= 1;
    }
  }

  private route(method: string, path: string, params: Map<string, string>): Response {
    if (!(path in HELP) && !MUTATING.has(path)) {
      const help = Object.keys(HELP)
        .sort()
        .map((p) => `  ${p}${MUTATING.has(p) ? " (POST)" : ""}: ${HELP[p]}\n`)
        .join("");
      return envoyResponse(404, `invalid path. admin commands are:\n${help}`);
    }
    if (MUTATING.has(path) && method !== "POST") return envoyResponse(405, `Method ${method} not allowed, POST required.`);
    switch (path) {
      case "/healthcheck/fail":
        this.failPosts += 1;
        if (!this.healthCheckFailed) this.startTimeline();
        this.healthCheckFailed = true;
        return envoyResponse(200, "OK\n");
      case "/healthcheck/ok":
        this.healthCheckFailed = false;
        return envoyResponse(200, "OK\n");
      case "/drain_listeners":
        return this.drainListeners(params);
      case "/quitquitquit":
        setTimeout(() => void this.stop(), 0);
        return envoyResponse(200, "OK\n");
      case "/ready": {
        const state = this.healthCheckFailed ? "DRAINING" : "LIVE";
        return envoyResponse(state === "LIVE" ? 200 : 503, `${state}\n`);
      }
      case "/server_info":
        return envoyResponse(200, this.serverInfo(), "application/json");
      case "/stats":
        return this.statsResponse(params);
      case "/stats/prometheus":
        return this.statsResponse(params, "prometheus");
      default:
        return envoyResponse(200, "OK\n");
    }
  }

  private drainListeners(params: Map<string, string>): Response {
    const graceful = params.has("graceful");
    const skipExit = params.has("skip_exit") && versionAtLeast(this.options.version, 1, 28);
    if (skipExit && !graceful) return envoyResponse(400, "skip_exit requires graceful\n");
    if (graceful && !this.drainSequenceStarted) {
      this.drainSequenceStarted = true;
      this.drainStartedAt = Date.now();
    }
    // Non-graceful: listeners stop accepting at once; existing connections are left alone.
    else this.dataPlane?.listener.stop(false);
    return envoyResponse(200, "OK\n");
  }

  /** Applies the scripted timeline, relative to now (the first /healthcheck/fail). */
  private startTimeline(): void {
    for (const step of this.options.timeline ?? []) {
      this.timelineTimers.push(setTimeout(() => this.setConnections(step.connections), step.afterFailMs));
    }
  }

  private serverInfo(): string {
    const uptime = `${Math.floor((Date.now() - this.startedAt) / 1000)}s`;
    const info = {
      version: `a1b2c3d4e5f60718293a4b5c6d7e8f9012345678/${this.options.version}/Clean/RELEASE/BoringSSL`,
      state: this.healthCheckFailed ? "DRAINING" : "LIVE",
      uptime_current_epoch: uptime,
      uptime_all_epochs: uptime,
      hot_restart_version: "11.104",
      command_line_options: {
        base_id: "0",
        concurrency: this.options.concurrency,
        drain_time: "600s",
        drain_strategy: "Gradual",
        mode: "Serve",
        local_address_ip_version: "v4",
        admin_address_path: "",
      },
      node: { id: "", cluster: "", user_agent_name: "envoy" },
    };
    return `${JSON.stringify(info, null, 1)}\n`;
  }
}

/** Starts a fake Envoy; stop it with `await fake.stop()`. */
export function startFakeEnvoy(options: FakeEnvoyOptions = {}): Promise<FakeEnvoy> {
  return new FakeEnvoy(options).start();
}
