/** The sidecar's HTTP server: liveness, the preStop /shutdown hook, status and metrics. */
import type { Server } from "bun";
import type { Drain, DrainOutcome } from "../drain/drain.ts";
import { bearerToken } from "../drain/handoff.ts";
import { OperatorError } from "../errors.ts";
import { log } from "../log.ts";
import { HANDOFF_HEADER } from "./client.ts";
import type { SidecarCounters, StatusSettings } from "./status.ts";

/** A request body this server would ever need: none. Anything larger is refused (413). */
const MAX_REQUEST_BODY_BYTES = 1024;

/** Bun's own idle timeout, which closes a connection that sends nothing for this long (in whole seconds, checked lazily). */
export const IDLE_TIMEOUT_S = 10;

interface ServerOptions {
  port: number;
  hostname: string;
  token: string | undefined;
  drain: Drain;
  counters: SidecarCounters;
  /** Facts about the configuration shown by /status and /metrics. */
  settings: StatusSettings;
  /** Bun's idle timeout in whole seconds; IDLE_TIMEOUT_S unless a test needs a shorter one. */
  idleTimeoutS?: number;
  /** An authorized /shutdown arrived: the drain it waits for, or the answer that refuses it. */
  onShutdownRequest: (caller: ShutdownCaller) => Promise<DrainOutcome> | Response;
}

/**
 * Who sent a /shutdown: kubelet's httpGet (or anything without a body), this release's hook joining (the hand-off
 * header, no body), or a previous release's hook (its drain settings in a body, which no longer change a drain).
 */
export type ShutdownCaller = "plain" | "hook" | "previous-hook";

/** The server could not listen where it was told to. */
export class ListenError extends OperatorError {
  override name = "ListenError";
  constructor(
    readonly hostname: string,
    readonly port: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...TEXT, ...headers } });
}

/** The status code and body a /shutdown waiter gets for each way a drain can end. */
function shutdownResponse(outcome: DrainOutcome): Response {
  if (outcome.phase === "drained") return text(200, "OK");
  if (outcome.phase === "timed_out") return text(504, "drain timed out\n");
  return text(500, "drain failed\n");
}

/** Whether a POST carries a body: a previous release's hook sends its drain settings (kubelet's httpGet sends none). */
const hasBody = (request: Request) => (request.headers.get("content-length") ?? "0") !== "0" || request.headers.has("transfer-encoding");

/** Whether a body is what a previous release's hook sends, `{"drain": {...}}`; anything else is refused. */
function isPreviousHookBody(body: string): boolean {
  try {
    const drain = (JSON.parse(body) as { drain?: unknown } | null)?.drain;
    return typeof drain === "object" && drain !== null && !Array.isArray(drain);
  } catch {
    return false;
  }
}

/** Whether a request came over loopback, as a hook in the pod's own network namespace sends it. */
function fromLoopback(request: Request, server: Server<undefined>): boolean {
  const address = server.requestIP(request)?.address ?? "";
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

/** How often refused /shutdown requests are summarised in one line, so a flood cannot flood the log. */
const REFUSAL_SUMMARY_MS = 10_000;

/** Logs the first refused /shutdown at once, and those after it as one line per REFUSAL_SUMMARY_MS. */
function refusalLog() {
  let unreported = 0;
  let timer: Timer | undefined;
  const summarise = () => {
    timer = undefined;
    if (unreported === 0) return;
    log.warn(`refused ${unreported} more /shutdown request(s) without the right bearer token`);
    unreported = 0;
  };
  return {
    note(remote: string | undefined) {
      if (timer) return void unreported++;
      log.warn("refused /shutdown without the right bearer token", { remote });
      timer = setTimeout(summarise, REFUSAL_SUMMARY_MS);
      timer.unref();
    },
  };
}

const sha256 = (value: string) => new Bun.CryptoHasher("sha256").update(value).digest();

/** Compares two equal-length digests without an early exit, so the time taken says nothing about where they differ. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

/** Compares bearer tokens in constant time (hashing first, so lengths leak nothing either); node:crypto would cost start-up time. */
function authorized(request: Request, token: string | undefined): boolean {
  if (token === undefined) return true;
  const given = bearerToken(request.headers.get("authorization"));
  return given !== undefined && constantTimeEqual(sha256(given), sha256(token));
}

/**
 * The Allow header for a route: its methods, and HEAD where GET is allowed and the route does not refuse HEAD itself
 * (Bun answers HEAD from GET).
 */
function allowed(methods: string[]): string {
  if (methods.includes("HEAD")) return methods.filter((method) => method !== "HEAD").join(", ");
  return (methods.includes("GET") ? [...methods, "HEAD"] : methods).join(", ");
}

type Handler = (request: Request, server: Server<undefined>) => Response | Promise<Response>;

/** Starts Bun.serve with the routes; each path lists the methods it allows. */
export function startServer(options: ServerOptions): Server<undefined> {
  const { drain, counters, token } = options;

  let refusals: ReturnType<typeof refusalLog> | undefined;

  /**
   * Waits for the shared drain; a waiter that goes away leaves the drain running for the others. One promise and
   * a few callbacks per waiter rather than an async function around a cancellable wait: a pod's hooks may all wait
   * here at once, and each keeps its allocations until the drain ends.
   */
  const wait = (request: Request, caller: ShutdownCaller) => {
    const drained = options.onShutdownRequest(caller);
    if (drained instanceof Response) return drained;
    counters.waiters += 1;
    const { signal } = request;
    return new Promise<Response>((resolve, reject) => {
      // Nobody reads the answer to a request whose client went away; the drain goes on for the others.
      const leave = () => {
        counters.waiters -= 1;
        resolve(text(499, "client closed request\n"));
      };
      if (signal.aborted) return leave();
      signal.addEventListener("abort", leave, { once: true });
      /** Answers a waiter still there when the drain ends. */
      const answer = (settle: () => void) => {
        if (signal.aborted) return;
        signal.removeEventListener("abort", leave);
        counters.waiters -= 1;
        settle();
      };
      drained.then(
        (outcome) => answer(() => resolve(shutdownResponse(outcome))),
        (error: unknown) => answer(() => reject(error)),
      );
    });
  };

  /** The 401 for a /shutdown without the right token; undefined lets it through, exempt from the idle timeout. */
  const refusal = (request: Request, server: Server<undefined>): Response | undefined => {
    if (!authorized(request, token)) {
      refusals ??= refusalLog();
      refusals.note(server.requestIP(request)?.address);
      return text(401, "unauthorized\n", { "www-authenticate": "Bearer" });
    }
    // preStop hooks wait as long as the drain takes: exempt this request from Bun's idle timeout.
    server.timeout(request, 0);
    return undefined;
  };

  // One handler per method, so kubelet's GET is told by its route and nothing of the request is read to tell it:
  // reading the method or the headers costs each of a pod's waiting hooks about 0.2 KiB until the drain ends.
  const shutdown = {
    GET: ((request, server) => refusal(request, server) ?? wait(request, "plain")) satisfies Handler,
    POST: ((request, server) => {
      const refused = refusal(request, server);
      if (refused) return refused;
      if (!hasBody(request)) return wait(request, request.headers.has(HANDOFF_HEADER) ? "hook" : "plain");
      // Bodies change nothing any more; they are still taken only from the pod itself, or with the token.
      if (token === undefined && !fromLoopback(request, server))
        return text(403, "a request body is accepted only over loopback, or with --shutdown-token\n");
      return request
        .text()
        .then((body) =>
          isPreviousHookBody(body)
            ? wait(request, "previous-hook")
            : text(400, 'expected no body (or a previous release\'s {"drain": {...}})\n'),
        );
    }) satisfies Handler,
    // HEAD asks about a resource; it must never start a drain, as Bun's answer from the GET handler would.
    HEAD: text(405, "method not allowed\n", { allow: "GET, POST" }),
  };

  // /healthz is a static response: Bun answers it natively, with no JavaScript and no allocation per probe.
  const routes = {
    "/healthz": { GET: text(200, "OK") },
    "/shutdown": shutdown,
    // Envoy Gateway's path for the same hook, so its Envoy containers work unchanged.
    "/shutdown/ready": shutdown,
    // Their renderers load at the first request: an idle sidecar that is never asked holds none of their code.
    "/status": {
      GET: () => import("./status.ts").then(({ statusReport }) => Response.json(statusReport(drain.snapshot, counters, options.settings))),
    },
    "/metrics": {
      GET: () =>
        import("./metrics.ts").then(
          ({ renderMetrics }) =>
            new Response(renderMetrics(drain.snapshot, counters), {
              headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
            }),
        ),
    },
  };
  const methodsByPath = new Map<string, string[]>(Object.entries(routes).map(([path, methods]) => [path, Object.keys(methods)]));

  try {
    return Bun.serve({
      port: options.port,
      hostname: options.hostname,
      idleTimeout: options.idleTimeoutS ?? IDLE_TIMEOUT_S,
      maxRequestBodySize: MAX_REQUEST_BODY_BYTES,
      routes,
      // Only what the routes did not take: an unknown path, or a known path with the wrong method.
      fetch(request) {
        // A request target that is no path (CONNECT's host:port) names nothing served here.
        if (!URL.canParse(request.url)) return text(400, "bad request target\n");
        const path = new URL(request.url).pathname;
        const methods = methodsByPath.get(path);
        // A route's own method reaching here came by another spelling of its path (`/./shutdown`): no route.
        if (!methods || methods.includes(request.method)) return text(404, "not found\n");
        return text(405, "method not allowed\n", { allow: allowed(methods) });
      },
      error(error) {
        log.error(`request failed: ${error.message}`);
        return text(500, "internal error\n");
      },
    });
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    throw new ListenError(options.hostname, options.port, code, message ?? String(error));
  }
}
