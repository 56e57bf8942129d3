/** The Envoy admin API client shared by the sidecar, the hook and the drain (ofetch, over TCP or a Unix socket). */
import { FetchError, ofetch } from "ofetch";
import { networkFailure } from "../errors.ts";
import type { AdminAddress } from "./address.ts";
import { AdminError } from "./admin-error.ts";
import {
  type ConnectionCount,
  type ConnectionStat,
  connectionStatsPath,
  countConnections,
  countTraffic,
  TRAFFIC_STATS_PATH,
} from "./stats.ts";

/** Envoy's server states, as /ready and /server_info name them. */
const SERVER_STATES = ["LIVE", "DRAINING", "PRE_INITIALIZING", "INITIALIZING"] as const;
export type ServerState = (typeof SERVER_STATES)[number];

/** What the drain, the heal and the start-up check ask of Envoy; tests give an in-memory one. */
export interface EnvoyAdmin {
  /** Where the admin API is, as the user wrote it. */
  readonly address: string;
  /** Which stats openConnections() counts by default. */
  readonly connectionStat: ConnectionStat;
  /** Whether anything has answered at this address (any HTTP status): the evidence that a later refusal means "exited". */
  readonly answered: boolean;
  /** Records that this address answered elsewhere (the sidecar a hook joined saw it). */
  markAnswered(): void;
  // Each call ends early, abandoning its request, when `cancel` aborts (the drain ended while it was in flight).
  /** POST /healthcheck/fail: Envoy fails health checks and drain-closes connections. */
  failHealthChecks(cancel?: AbortSignal): Promise<void>;
  /** POST /healthcheck/ok: undoes /healthcheck/fail. */
  passHealthChecks(cancel?: AbortSignal): Promise<void>;
  /** POST /drain_listeners?graceful&skip_exit: starts Envoy's own graceful drain; irreversible. */
  drainListeners(cancel?: AbortSignal): Promise<void>;
  /** GET /ready: the server state (200 LIVE, 503 otherwise). */
  ready(cancel?: AbortSignal): Promise<ServerState>;
  /** GET /server_info: the server state, from the JSON body. */
  serverState(cancel?: AbortSignal): Promise<ServerState>;
  /** Open downstream connections, by the configured stat or the one given. */
  openConnections(stat?: ConnectionStat, cancel?: AbortSignal): Promise<ConnectionCount>;
  /** Open connections by listener and what they carry (requests, upgrades, non-HTTP), in one stats request. */
  traffic(cancel?: AbortSignal): Promise<ConnectionCount>;
}

export interface EnvoyAdminOptions {
  address: AdminAddress;
  /** Bounds each whole exchange: connect, headers and body. */
  timeoutMs: number;
  connectionStat: ConnectionStat;
  /** Listener ids whose connections are not counted (listener stat only). */
  ignoreListeners: readonly RegExp[];
}

/** Error codes Bun's fetch gives when nothing listens at a TCP address. */
const REFUSED_CODES = new Set(["ECONNREFUSED", "ConnectionRefused"]);
/** Error codes Bun's fetch gives when a Unix socket file is missing. */
const NO_SOCKET_CODES = new Set(["ENOENT", "FailedToOpenSocket"]);

/** Maps a fetch failure into one of the kinds the drain decides on. */
function classify(error: unknown, what: string, address: AdminAddress, timedOut: boolean, timeoutMs: number): AdminError {
  if (error instanceof AdminError) return error;
  if (timedOut) return new AdminError("timeout", `${what}: no complete answer within ${timeoutMs} ms`);
  const cause = (error instanceof FetchError ? error.cause : error) as { code?: string; message?: string } | undefined;
  const code = cause?.code ?? "";
  if (address.socketPath && (NO_SOCKET_CODES.has(code) || REFUSED_CODES.has(code)))
    return new AdminError("unreachable", `${what}: no Unix socket accepts connections at ${address.socketPath} (${code})`);
  if (REFUSED_CODES.has(code)) return new AdminError("unreachable", `${what}: connection refused at ${address.display}`);
  return new AdminError("network", `${what}: ${networkFailure(cause ?? error)}`);
}

/** Checks that a POST answered Envoy's `OK\n`. */
function expectOk(body: string, what: string): void {
  if (body.trim() !== "OK") throw new AdminError("malformed", `${what}: expected "OK", got ${JSON.stringify(body.slice(0, 100))}`);
}

/** Reads a state name, rejecting anything Envoy would not send. */
function expectState(text: unknown, what: string): ServerState {
  const state = typeof text === "string" ? text.trim() : "";
  if (!(SERVER_STATES as readonly string[]).includes(state))
    throw new AdminError("malformed", `${what}: unexpected state ${JSON.stringify(String(text).slice(0, 100))}`);
  return state as ServerState;
}

/** The HTTP error for an answer that is not a success, naming a redirect's target (never followed: it would count another server). */
function statusError(what: string, response: Response, body: string): AdminError {
  const location = response.headers.get("location");
  const detail = location ? `redirect to ${location}, not followed` : body.trim().slice(0, 200);
  return new AdminError("http_status", `${what}: HTTP ${response.status}${detail ? ` ${detail}` : ""}`);
}

export function createEnvoyAdmin(options: EnvoyAdminOptions): EnvoyAdmin {
  const { address, timeoutMs } = options;
  const fetchText = ofetch.create({
    retry: 0,
    responseType: "text",
    redirect: "manual",
    ignoreResponseError: true,
    // Bun's fetch reaches a Unix socket through its `unix` option; ofetch passes it through.
    ...(address.socketPath ? { unix: address.socketPath } : {}),
  });
  let answered = false;

  /** One exchange, bounded as a whole: ofetch's own timeout stops at the headers, and a body can trickle forever. */
  async function request(method: "GET" | "POST", path: string, cancel?: AbortSignal, acceptStatus?: number): Promise<string> {
    const what = `${method} ${path.split("?")[0]}`;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const signal = cancel ? AbortSignal.any([deadline.signal, cancel]) : deadline.signal;
    try {
      const response = await fetchText.raw<string, "text">(`${address.baseURL}${path}`, { method, signal });
      answered = true;
      const body = response._data ?? "";
      if (!response.ok && response.status !== acceptStatus) throw statusError(what, response, body);
      return body;
    } catch (error) {
      throw classify(error, what, address, deadline.signal.aborted, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    address: address.display,
    connectionStat: options.connectionStat,
    get answered() {
      return answered;
    },
    markAnswered() {
      answered = true;
    },
    async failHealthChecks(cancel) {
      expectOk(await request("POST", "/healthcheck/fail", cancel), "POST /healthcheck/fail");
    },
    async passHealthChecks(cancel) {
      expectOk(await request("POST", "/healthcheck/ok", cancel), "POST /healthcheck/ok");
    },
    async drainListeners(cancel) {
      expectOk(await request("POST", "/drain_listeners?graceful&skip_exit", cancel), "POST /drain_listeners");
    },
    async ready(cancel) {
      return expectState(await request("GET", "/ready", cancel, 503), "GET /ready");
    },
    async serverState(cancel) {
      const body = await request("GET", "/server_info", cancel);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new AdminError("malformed", "GET /server_info: body is not JSON");
      }
      return expectState((parsed as { state?: unknown } | null)?.state, "GET /server_info");
    },
    async openConnections(stat = options.connectionStat, cancel) {
      return countConnections(stat, await request("GET", connectionStatsPath(stat), cancel), options.ignoreListeners);
    },
    async traffic(cancel) {
      return countTraffic(await request("GET", TRAFFIC_STATS_PATH, cancel), options.ignoreListeners);
    },
  };
}

/** A stats_missing message completed with whether the other kind of count finds its stats. */
export async function describeMissingStats(admin: EnvoyAdmin, error: AdminError, cancel?: AbortSignal): Promise<string> {
  const other: ConnectionStat = admin.connectionStat === "listener" ? "http" : "listener";
  try {
    await admin.openConnections(other, cancel);
    return `${error.message} (the ${other} stats are present: --connection-stat=${other} counts them)`;
  } catch {
    return error.message;
  }
}
