/**
 * Stands in for Envoy's admin API in a process of its own, so that the moment a POST /healthcheck/fail arrives is
 * not delayed by the benchmark's own work: prints `{"port":N}`, then `{"failAt":<epoch ms>}` for each fail POST.
 */
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request) {
    if (new URL(request.url).pathname === "/healthcheck/fail")
      console.log(JSON.stringify({ failAt: performance.timeOrigin + performance.now() }));
    return new Response("OK\n");
  },
});
console.log(JSON.stringify({ port: server.port }));
