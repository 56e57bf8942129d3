/**
 * The benchmark's reference for what the sidecar's start-up work costs at the least with the chosen libraries:
 * flags read from argv and the environment, consola JSON lines, Bun.serve with the same routes, a SIGTERM handler,
 * and the start-up check through ofetch: GET
 * /server_info, then the listener stats counted with the ignore patterns, each request bounded by a timer. No drain,
 * no hand-off, no help: a yardstick, not a program. `--serve-port N --admin-address host:port|/path.sock` as the
 * sidecar takes them; `--startup-check off` leaves the two admin requests out, so the benchmark shows what they cost.
 */
import { createConsola } from "consola/core";
import { ofetch } from "ofetch";

const given = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) given.set(process.argv[i]?.slice(2) ?? "", process.argv[i + 1] ?? "");
const flag = (name: string, fallback: string) =>
  given.get(name) ?? process.env[`ENVOY_SHUTDOWN_${name.toUpperCase().replaceAll("-", "_")}`] ?? fallback;
const admin = flag("admin-address", "127.0.0.1:9001");
const ignored = flag("ignore-listeners", "_8002$,_19001$,_19003$")
  .split(",")
  .map((pattern) => new RegExp(pattern));

const log = createConsola({
  reporters: [{ log: (entry) => console.error("%s", JSON.stringify({ time: entry.date.toISOString(), msg: String(entry.args[0]) })) }],
});
const onSocket = admin.startsWith("/");
const client = ofetch.create({
  retry: 0,
  responseType: "text",
  redirect: "manual",
  ignoreResponseError: true,
  ...(onSocket ? { unix: admin } : {}),
});
const base = onSocket ? "http://localhost" : `http://${admin}`;

async function get(path: string): Promise<string> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), 2000);
  try {
    return String((await client.raw(`${base}${path}`, { signal: deadline.signal }))._data);
  } finally {
    clearTimeout(timer);
  }
}

let state = "unknown";
let waiting = 0;
const never = new Promise<Response>(() => {});
Bun.serve({
  port: Number(flag("serve-port", "8090")),
  hostname: "127.0.0.1",
  idleTimeout: 10,
  routes: {
    "/healthz": new Response("OK"),
    "/shutdown": {
      GET: (request, server) => {
        server.timeout(request, 0);
        waiting++;
        return never;
      },
    },
    "/status": { GET: () => Response.json({ state, waiting }) },
    "/metrics": { GET: () => new Response(`waiting ${waiting}\n`) },
  },
  fetch: () => new Response("not found\n", { status: 404 }),
});
log.info("listening");
process.on("SIGTERM", () => process.exit(0));
if (flag("startup-check", "on") === "on") checkEnvoy().catch((error) => log.info(String(error)));

/** The start-up check: Envoy's state, then its open connections. */
async function checkEnvoy() {
  state = JSON.parse(await get("/server_info")).state;
  log.info("Envoy answers");
  const filter = encodeURIComponent(String.raw`^(listener\..*\.downstream_cx_active|server\.live)$`);
  let open = 0;
  for (const line of (await get(`/stats?filter=${filter}`)).split("\n")) {
    const match = /^listener\.(.*)\.downstream_cx_active: (\d+)$/.exec(line);
    if (match && !ignored.some((pattern) => pattern.test(match[1] ?? ""))) open += Number(match[2]);
  }
  log.info(`${open} open connections`);
}
