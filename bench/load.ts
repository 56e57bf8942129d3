/**
 * A /healthz load generator in its own process, so the clients do not share an event loop with what they measure.
 * Usage: bun bench/load.ts <port> <connections> <interval-ms> <duration-ms>
 * Each connection is a keep-alive socket sending one request every interval (0 = as fast as answers come).
 * Prints a JSON line: request count, p50, p99 and max latency in milliseconds.
 */
export {};

const [port = 0, connections = 200, intervalMs = 0, durationMs = 3000] = process.argv.slice(2).map(Number);
const REQUEST = "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
const latencies: number[] = [];
const deadline = performance.now() + durationMs;

/** One keep-alive connection: send, wait for the whole answer (`OK` body), record, repeat. */
async function client(): Promise<void> {
  let answered: () => void = () => {};
  let buffer = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, chunk) {
        buffer += chunk.toString();
        if (buffer.endsWith("\r\n\r\nOK")) {
          buffer = "";
          answered();
        }
      },
    },
  });
  // Spread the first requests over one interval, as independent clients would.
  await Bun.sleep(Math.random() * intervalMs);
  while (performance.now() < deadline) {
    const sent = performance.now();
    await new Promise<void>((resolve) => {
      answered = resolve;
      socket.write(REQUEST);
    });
    const done = performance.now();
    latencies.push(done - sent);
    if (intervalMs > 0) await Bun.sleep(Math.max(0, intervalMs - (done - sent)));
  }
  socket.end();
}

await Promise.all(Array.from({ length: connections }, client));
latencies.sort((a, b) => a - b);
const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
console.log(JSON.stringify({ requests: latencies.length, p50: at(50), p99: at(99), max: latencies.at(-1) ?? 0 }));
