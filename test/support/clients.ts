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
  let onData: ((text: string) => void) | undefined;
  let isClosed = false;
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const socket: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_socket, chunk) => onData?.(chunk.toString()),
      close: () => {
        isClosed = true;
        markClosed();
      },
      error: () => {
        isClosed = true;
        markClosed();
      },
    },
  });
  return {
    request() {
      return new Promise((resolve, reject) => {
        if (isClosed) return reject(new Error("connection closed"));
        let received = "";
        onData = (text) => {
          received += text;
          if (received.includes("\r\n\r\n") && received.endsWith("ok\n")) resolve(received);
        };
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
