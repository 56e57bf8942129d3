/**
 * The floor the benchmark compares the sidecar with: a compiled Bun.serve that answers only a static /healthz,
 * built with the same flags. `--serve-port N` as the sidecar takes it.
 */
const port = Number(process.argv[process.argv.indexOf("--serve-port") + 1]);
Bun.serve({
  port,
  hostname: "127.0.0.1",
  routes: { "/healthz": new Response("OK") },
  fetch: () => new Response("not found\n", { status: 404 }),
});
