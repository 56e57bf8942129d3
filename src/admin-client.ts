/** The Envoy admin API client shared by the server and the commands (ofetch, over TCP or a Unix socket). */
import { FetchError, type FetchOptions, ofetch } from "ofetch";
import type { AdminAddress } from "./config.ts";

/** Why an admin request failed; only `unreachable` means Envoy may be gone. */
export type AdminErrorKind = "unreachable" | "timeout" | "http_status" | "network" | "malformed";

export const ADMIN_ERROR_KINDS: readonly AdminErrorKind[] = ["unreachable", "timeout", "http_status", "network", "malformed"];

export class AdminError extends Error {
  override name = "AdminError";
  constructor(
    readonly kind: AdminErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Error codes Bun's fetch gives when nothing listens at the address (TCP) or the socket file is missing. */
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ConnectionRefused", "ENOENT", "FailedToOpenSocket"]);

/** Maps ofetch's error into one of the kinds the drain sequence decides on. */
function classify(error: unknown, what: string): AdminError {
  if (error instanceof AdminError) return error;
  if (error instanceof FetchError) {
    const cause = error.cause as { name?: string; code?: string; message?: string } | undefined;
    if (cause?.name === "TimeoutError") return new AdminError("timeout", `${what}: no answer in time`);
    if (cause?.code && UNREACHABLE_CODES.has(cause.code))
      return new AdminError("unreachable", `${what}: connection refused (${cause.code})`);
    return new AdminError("network", `${what}: ${cause?.message ?? error.message}`);
  }
  return new AdminError("network", `${what}: ${error instanceof Error ? error.message : String(error)}`);
}

/** Envoy's server states, as /ready and /server_info name them. */
export type ServerState = "LIVE" | "DRAINING" | "PRE_INITIALIZING" | "INITIALIZING";
const SERVER_STATES = new Set<string>(["LIVE", "DRAINING", "PRE_INITIALIZING", "INITIALIZING"]);

export interface AdminClient {
  /** Where the admin API is, as the user wrote it. */
  readonly address: string;
  /** POST /healthcheck/fail: Envoy fails health checks and drain-closes connections. */
  failHealthChecks(): Promise<void>;
  /** POST /healthcheck/ok: undoes /healthcheck/fail. */
  passHealthChecks(): Promise<void>;
  /** POST /drain_listeners?graceful&skip_exit: starts Envoy's own graceful drain; irreversible. */
  drainListeners(): Promise<void>;
  /** GET /ready: the server state (200 LIVE, 503 otherwise). */
  ready(): Promise<ServerState>;
  /** GET /server_info: the server state, from the JSON body. */
  serverInfoState(): Promise<ServerState>;
  /** GET a stats path (query included) and return the body text. */
  stats(pathAndQuery: string): Promise<string>;
}

export interface AdminClientOptions {
  address: AdminAddress;
  timeoutMs: number;
}

/** Checks that a POST answered Envoy's `OK\n`. */
function expectOk(body: string, what: string): void {
  if (body.trim() !== "OK") throw new AdminError("malformed", `${what}: expected "OK", got ${JSON.stringify(body.slice(0, 100))}`);
}

/** Reads a state name, rejecting anything Envoy would not send. */
function expectState(text: unknown, what: string): ServerState {
  const state = typeof text === "string" ? text.trim() : "";
  if (!SERVER_STATES.has(state))
    throw new AdminError("malformed", `${what}: unexpected state ${JSON.stringify(String(text).slice(0, 100))}`);
  return state as ServerState;
}

export function createAdminClient({ address, timeoutMs }: AdminClientOptions): AdminClient {
  const base: FetchOptions = {
    baseURL: address.baseURL,
    timeout: timeoutMs,
    retry: 0,
    responseType: "text",
    // Bun's fetch reaches a Unix socket through its `unix` option; ofetch passes it through.
    ...(address.socketPath ? { unix: address.socketPath } : {}),
  };
  const fetchText = ofetch.create(base);

  async function request(method: "GET" | "POST", path: string, acceptStatus?: number): Promise<string> {
    const what = `${method} ${path}`;
    try {
      const response = await fetchText.raw<string, "text">(path, {
        method,
        ignoreResponseError: true,
      });
      if (!response.ok && response.status !== acceptStatus) {
        throw new AdminError(
          "http_status",
          `${what}: HTTP ${response.status} ${String(response._data ?? "")
            .trim()
            .slice(0, 200)}`.trim(),
        );
      }
      return response._data ?? "";
    } catch (error) {
      throw classify(error, what);
    }
  }

  return {
    address: address.display,
    async failHealthChecks() {
      expectOk(await request("POST", "/healthcheck/fail"), "POST /healthcheck/fail");
    },
    async passHealthChecks() {
      expectOk(await request("POST", "/healthcheck/ok"), "POST /healthcheck/ok");
    },
    async drainListeners() {
      expectOk(await request("POST", "/drain_listeners?graceful&skip_exit"), "POST /drain_listeners");
    },
    async ready() {
      return expectState(await request("GET", "/ready", 503), "GET /ready");
    },
    async serverInfoState() {
      const body = await request("GET", "/server_info");
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new AdminError("malformed", "GET /server_info: body is not JSON");
      }
      return expectState((parsed as { state?: unknown } | null)?.state, "GET /server_info");
    },
    stats(pathAndQuery) {
      return request("GET", pathAndQuery);
    },
  };
}
