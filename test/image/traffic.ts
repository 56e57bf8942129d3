/**
 * Live traffic on the fake Envoy's data plane, for the image test: `bun traffic.ts PORT CLIENTS TIMEOUT_MS`.
 * Opens CLIENTS keep-alive connections, prints `connected` once all have answered, then keeps each sending a request
 * every 50 ms until Envoy's drain closes it (a `connection: close` answer), as a polite client does. Prints one JSON
 * line `{"requests":…,"failed":…,"closedByDrain":…,"open":…}` and exits 0 when every connection was closed by the
 * drain with no failed request, 1 otherwise (or when TIMEOUT_MS passes first).
 */
import { openClient } from "../support/clients.ts";

const [port, clients, timeoutMs] = process.argv.slice(2).map(Number);
if (!port || !clients || !timeoutMs) {
  process.stderr.write("usage: bun traffic.ts PORT CLIENTS TIMEOUT_MS\n");
  process.exit(2);
}

let requests = 0;
let failed = 0;
let closedByDrain = 0;
const connections = await Promise.all(Array.from({ length: clients }, () => openClient(port)));
await Promise.all(connections.map((connection) => connection.request()));
console.log("connected");

/** One connection's requests until the drain closes it; a request that gets no answer is a failure. */
async function keepSending(connection: (typeof connections)[number]): Promise<void> {
  for (;;) {
    try {
      const answer = await connection.request();
      requests += 1;
      if (/\r\nconnection: close\r\n/i.test(answer)) {
        closedByDrain += 1;
        return;
      }
    } catch {
      failed += 1;
      return;
    }
    await Bun.sleep(50);
  }
}

const done = Promise.all(connections.map(keepSending)).then(() => true);
const finished = await Promise.race([done, Bun.sleep(timeoutMs).then(() => false)]);
await Promise.race([Promise.all(connections.map((connection) => connection.closed)), Bun.sleep(1000)]);
const open = connections.filter((connection) => !connection.isClosed).length;
console.log(JSON.stringify({ requests, failed, closedByDrain, open }));
for (const connection of connections) connection.close();
process.exit(finished && failed === 0 && closedByDrain === clients ? 0 : 1);
