/** Keep-alive HTTP/1.1 clients on the fake's data plane: real sockets that Envoy would drain. */
import type { Socket } from "bun";

export interface KeepAliveClient {
  /** Sends one request; resolves with the raw response head and body. */
  request(): Promise<string>;
  close(): void;
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
}

export async function openClient(port: number): Promise<KeepAliveClient> {
  let pending: { resolve: (text: string) => void; reject: (error: Error) => void; received: string } | undefined;
  let isClosed = false;
  const { promise: closed, resolve: markClosed } = Promise.withResolvers<void>();
  const onClose = () => {
    isClosed = true;
    // A request still waiting when the connection closes has failed, as it would for a real client.
    pending?.reject(new Error("connection closed before the response"));
    pending = undefined;
    markClosed();
  };
  const socket: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_socket, chunk) => {
        if (!pending) return;
        pending.received += chunk.toString();
        if (pending.received.includes("\r\n\r\n") && pending.received.endsWith("ok\n")) {
          pending.resolve(pending.received);
          pending = undefined;
        }
      },
      close: onClose,
      error: onClose,
    },
  });
  return {
    request() {
      return new Promise((resolve, reject) => {
        if (isClosed) return reject(new Error("connection closed"));
        pending = { resolve, reject, received: "" };
        socket.write("GET / HTTP/1.1\r\nhost: fake\r\n\r\n");
      });
    },
    close: () => socket.end(),
    closed,
    get isClosed() {
      return isClosed;
    },
  };
}

/**
 * Sends a request every 0.3–2.5 s, as a real client would, until Envoy answers `connection: close` or the
 * connection closes; a request that fails is reported to `onFailure`.
 */
export async function chatter(client: KeepAliveClient, onFailure: () => void = () => {}): Promise<void> {
  while (!client.isClosed) {
    await Bun.sleep(300 + Math.random() * 2200);
    const response = await client.request().catch(() => {
      onFailure();
      return "connection: close";
    });
    if (response.includes("connection: close")) break;
  }
}

/** Opens `count` clients that each send one request and then sit idle on their keep-alive connection. */
export async function openClients(port: number, count: number): Promise<KeepAliveClient[]> {
  const clients = await Promise.all(Array.from({ length: count }, () => openClient(port)));
  await Promise.all(clients.map((client) => client.request()));
  return clients;
}

/** One request on a fresh socket, bypassing fetch's connection pool (which a flood of waiting requests can fill). */
export async function rawRequest(port: number, head: string): Promise<string> {
  let received = "";
  const { promise, resolve } = Promise.withResolvers<string>();
  await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      open: (socket) => void socket.write(`${head}\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`),
      data: (_socket, chunk) => {
        received += chunk.toString();
      },
      close: () => resolve(received),
      error: () => resolve(received),
    },
  });
  return promise;
}

/** A loopback port nothing listens on right now, for a program that must be told its port (benchmarks only). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}
