/**
 * HAProxy from Debian's package as the rollout's load balancer: `http` mode (an L7 load balancer) or `tcp` mode (an
 * L4 one, as an NLB or kube-proxy), health checks on the pods' data-plane port, endpoints added and removed through
 * its runtime API. Installed with apt-get when missing; `haproxyOrSkip` says why it cannot run.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../test/support/clients.ts";
import { HEALTH_CHECK_PATH } from "../test/support/fake-envoy.ts";

export const HAPROXY = "/usr/sbin/haproxy";

/** Installs HAProxy when it is missing; a string says why the benchmark cannot use it. */
export function haproxyOrSkip(): string | undefined {
  if (existsSync(HAPROXY)) return undefined;
  if (process.getuid?.() !== 0) return `${HAPROXY} is missing and installing it needs root (apt-get install haproxy)`;
  const install = Bun.spawnSync(["apt-get", "install", "-y", "--no-install-recommends", "haproxy"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (install.exitCode !== 0 || !existsSync(HAPROXY))
    return `apt-get install haproxy failed: ${install.stderr.toString().trim().split("\n").at(-1)}`;
  return undefined;
}

export type Mode = "http" | "tcp";
/** tcp: a TCP connect check; http: GET on the health-check filter's path, which Envoy answers 503 once failing. */
export type Check = "tcp" | "http";

/** How often HAProxy checks each endpoint, and after how many failed checks it stops sending to it. */
export const CHECK_INTERVAL_MS = 1000;
const CHECK_FALL = 2;

export class LoadBalancer {
  private constructor(
    readonly port: number,
    readonly proc: Bun.Subprocess,
    private readonly socket: string,
  ) {}

  static async start(mode: Mode, check: Check, dir: string): Promise<LoadBalancer> {
    const port = freePort();
    const socket = join(dir, "haproxy.sock");
    const config = [
      "global",
      `  stats socket ${socket} level admin`,
      "  maxconn 4000",
      "defaults",
      `  mode ${mode}`,
      // No retry and no redispatch: a cloud load balancer or kube-proxy gives a failed connection back to the client.
      "  retries 0",
      "  timeout connect 2s",
      "  timeout client 10m",
      "  timeout server 10m",
      "  timeout tunnel 10m",
      "frontend in",
      `  bind 127.0.0.1:${port}`,
      "  default_backend pods",
      "backend pods",
      "  balance roundrobin",
      ...(check === "http" ? [`  option httpchk GET ${HEALTH_CHECK_PATH}`] : []),
      `  default-server inter ${CHECK_INTERVAL_MS} fall ${CHECK_FALL} rise 1`,
      "",
    ].join("\n");
    const file = join(dir, "haproxy.cfg");
    await Bun.write(file, config);
    const proc = Bun.spawn([HAPROXY, "-db", "-q", "-f", file], { stdio: ["ignore", "ignore", "ignore"] });
    for (let i = 0; i < 100 && !existsSync(socket); i++) await Bun.sleep(20);
    if (!existsSync(socket)) throw new Error("haproxy did not start");
    return new LoadBalancer(port, proc, socket);
  }

  /** One runtime API command; resolves with its answer. */
  private async command(line: string): Promise<string> {
    let answer = "";
    const { promise, resolve } = Promise.withResolvers<string>();
    await Bun.connect({
      unix: this.socket,
      socket: {
        open: (socket) => void socket.write(`${line}\n`),
        data: (_socket, chunk) => {
          answer += chunk.toString();
        },
        close: () => resolve(answer),
        error: () => resolve(answer),
      },
    });
    return promise;
  }

  /** A new endpoint, checked; it takes traffic once its first check passes. */
  async add(name: string, port: number): Promise<void> {
    await this.command(`add server pods/${name} 127.0.0.1:${port} check`);
    await this.command(`enable health pods/${name}`);
    await this.command(`enable server pods/${name}`);
  }

  /** Endpoint removal: no new connection goes to it; established ones stay, as kube-proxy's conntrack keeps them. */
  async remove(name: string): Promise<void> {
    await this.command(`disable server pods/${name}`);
  }

  async stop(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }
}
