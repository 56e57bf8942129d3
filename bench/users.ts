/**
 * The rollout's users, through the load balancer: back-to-back keep-alive clients, users who pause between requests,
 * new short connections, WebSockets, streams and (modelled) HTTP/2 clients. Each counts what it saw: requests served
 * and lost (an error answer, or a connection that died before the answer), and long-lived sessions cut or completed.
 */
import type { Socket } from "bun";
import { HTTP2_PREFACE, STREAM_PATH } from "../test/support/fake-envoy.ts";

export interface Tally {
  served: number;
  lost: number;
  /** Long-lived sessions that ended before the user ended them. */
  cut: number;
  /** Long-lived sessions the user ended. */
  completed: number;
}

export interface TrafficMix {
  backToBack: number;
  newPerSecond: number;
  pausingUsers: number;
  pauseMs: [number, number];
  websockets: number;
  streams: number;
  /** How long a user keeps a stream before closing it. */
  streamMs: [number, number];
  /** Keep-alive clients that open with HTTP/2's preface (the fake counts them as HTTP/2). */
  http2BackToBack: number;
  http2Pausing: number;
}

export const NO_TRAFFIC: TrafficMix = {
  backToBack: 0,
  newPerSecond: 0,
  pausingUsers: 0,
  pauseMs: [0, 0],
  websockets: 0,
  streams: 0,
  streamMs: [0, 0],
  http2BackToBack: 0,
  http2Pausing: 0,
};

/** Users start within this long of the traffic's start. */
const ARRIVAL_MS = 3000;

const uniform = ([low, high]: [number, number]) => low + Math.random() * (high - low);

interface Session {
  ping: ReturnType<typeof setInterval> | undefined;
}

interface Answer {
  status: number;
  close: boolean;
}

/** An HTTP/1.1 keep-alive connection that reads answers by their content-length. */
class Connection {
  private received = "";
  private pending: { resolve: (answer: Answer) => void; reject: (error: Error) => void } | undefined;
  closed = false;
  private constructor(private socket: Socket<undefined> | undefined) {}

  static async open(port: number, http2 = false): Promise<Connection> {
    const connection = new Connection(undefined);
    connection.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_socket, chunk) => connection.receive(chunk.toString("latin1")),
        close: () => connection.onClose(),
        error: () => connection.onClose(),
      },
    });
    if (http2) connection.socket.write(HTTP2_PREFACE);
    return connection;
  }

  private onClose(): void {
    this.closed = true;
    this.pending?.reject(new Error("connection closed before the answer"));
    this.pending = undefined;
  }

  private receive(text: string): void {
    this.received += text;
    const end = this.received.indexOf("\r\n\r\n");
    if (!this.pending || end < 0) return;
    const head = this.received.slice(0, end);
    const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
    if (this.received.length < end + 4 + length) return;
    this.received = this.received.slice(end + 4 + length);
    const pending = this.pending;
    this.pending = undefined;
    pending.resolve({ status: Number(head.slice(9, 12)), close: /^connection:\s*close/im.test(head) });
  }

  request(path = "/"): Promise<Answer> {
    return new Promise((resolve, reject) => {
      if (this.closed || !this.socket) return reject(new Error("connection closed"));
      this.pending = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nhost: app\r\n\r\n`);
    });
  }

  close(): void {
    this.socket?.end();
  }
}

/** Starts the mix against the load balancer's port; stop() ends every user and returns the tally. */
export function startUsers(port: number, mix: TrafficMix) {
  const tally: Tally = { served: 0, lost: 0, cut: 0, completed: 0 };
  let running = true;
  const answered = (answer: Answer) => {
    if (answer.status >= 200 && answer.status < 300) tally.served++;
    else tally.lost++;
  };

  /** A keep-alive user: a request, a pause, again; back on the load balancer when its connection closes. */
  const keepAlive = async (pauseMs: () => number, http2: boolean) => {
    let connection: Connection | undefined;
    // Users arrive over the first seconds, so that every one holds a connection when the rollout starts.
    await Bun.sleep(Math.random() * ARRIVAL_MS);
    while (running) {
      try {
        // A connection closed while idle is no loss: the user's client opens a new one, as every client does.
        if (!connection || connection.closed) connection = await Connection.open(port, http2);
        const answer = await connection.request();
        answered(answer);
        if (answer.close) connection = undefined;
      } catch {
        tally.lost++;
        connection = undefined;
      }
      const until = performance.now() + pauseMs();
      while (running && performance.now() < until) await Bun.sleep(Math.min(250, until - performance.now()));
    }
    connection?.close();
  };

  /** A long-lived session that the user ends after `lengthMs`; a connection lost before that is a cut session. */
  const sessions = new Set<Socket<Session>>();
  const session = async (open: (socket: Socket<Session>) => void, onData: (text: string) => boolean, lengthMs: () => number) => {
    while (running) {
      const ends = performance.now() + lengthMs();
      const { promise: over, resolve: end } = Promise.withResolvers<"closed">();
      let established = false;
      const socket = await Bun.connect<Session>({
        hostname: "127.0.0.1",
        port,
        socket: {
          open: (s) => {
            s.data = { ping: undefined };
            sessions.add(s);
            open(s);
          },
          data: (_s, chunk) => {
            if (!established && onData(chunk.toString("latin1"))) established = true;
          },
          close: (s) => {
            clearInterval(s.data.ping);
            sessions.delete(s);
            end("closed");
          },
          error: () => end("closed"),
        },
      }).catch(() => undefined);
      if (!socket) {
        tally.lost++;
        await Bun.sleep(500);
        continue;
      }
      const result = await Promise.race([over, Bun.sleep(Math.max(0, ends - performance.now())).then(() => "ended" as const)]);
      if (!running) break;
      if (result === "ended" && established) {
        tally.completed++;
        socket.end();
      } else if (established) tally.cut++;
      else {
        tally.lost++;
        socket.end();
        await Bun.sleep(500);
      }
    }
  };

  const loops: Promise<void>[] = [];
  for (let i = 0; i < mix.backToBack; i++) loops.push(keepAlive(() => 20, false));
  for (let i = 0; i < mix.http2BackToBack; i++) loops.push(keepAlive(() => 20, true));
  for (let i = 0; i < mix.pausingUsers; i++) loops.push(keepAlive(() => uniform(mix.pauseMs), false));
  for (let i = 0; i < mix.http2Pausing; i++) loops.push(keepAlive(() => uniform(mix.pauseMs), true));
  for (let i = 0; i < mix.websockets; i++)
    loops.push(
      session(
        (s) => {
          s.write("GET /chat HTTP/1.1\r\nhost: app\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
          s.data.ping = setInterval(() => s.write("ping\n"), 1000);
        },
        (text) => text.startsWith("HTTP/1.1 101"),
        () => 600_000,
      ),
    );
  for (let i = 0; i < mix.streams; i++)
    loops.push(
      session(
        (s) => void s.write(`GET ${STREAM_PATH} HTTP/1.1\r\nhost: app\r\n\r\n`),
        (text) => text.startsWith("HTTP/1.1 200"),
        () => uniform(mix.streamMs),
      ),
    );
  const shorts = new Set<Promise<void>>();
  const timer =
    mix.newPerSecond > 0
      ? setInterval(() => {
          const one = Connection.open(port)
            .then(async (connection) => {
              try {
                answered(await connection.request());
              } finally {
                connection.close();
              }
            })
            .catch(() => void tally.lost++);
          shorts.add(one);
          void one.finally(() => shorts.delete(one));
        }, 1000 / mix.newPerSecond)
      : undefined;
  return {
    tally,
    async stop(): Promise<Tally> {
      running = false;
      clearInterval(timer);
      // Sessions still open when the run ends are neither cut nor completed.
      const final = { ...tally };
      for (const socket of sessions) socket.end();
      await Promise.race([Promise.all([...loops, ...shorts]), Bun.sleep(3000)]);
      return final;
    },
  };
}
