/** Running the CLI as a real process in tests: spawn, read its JSON log lines, stop it, never leak it. */
import type { Subprocess } from "bun";
import { onTeardown } from "./teardown.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
/** The command that runs the CLI: the source through Bun, or a compiled executable when given. */
export const SOURCE_CLI = [process.execPath, `${ROOT}src/cli/main.ts`];

export interface CliProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Log lines (parsed JSON) seen so far on stderr. */
  lines: Record<string, unknown>[];
  /** Resolves with the first log line matching, or rejects after `timeoutMs`. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number>;
  stdout(): Promise<string>;
  stderrText(): string;
}

/** Spawns the CLI with JSON logs; every process is killed after the test that started it. */
export function spawnCli(args: string[], options: { env?: Record<string, string>; cli?: string[]; argv0?: string } = {}): CliProcess {
  const proc = Bun.spawn([...(options.cli ?? SOURCE_CLI), ...args], {
    // The name the program is started by (`contour`, `envoy-gateway`), as the image's links start it.
    argv0: options.argv0,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", ENVOY_SHUTDOWN_LOG_FORMAT: "json", ...options.env },
  });
  onTeardown(async () => {
    proc.kill("SIGKILL");
    await proc.exited;
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  const waiters = new Set<() => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of proc.stderr) {
      const text = decoder.decode(chunk, { stream: true });
      stderr += text;
      pending += text;
      let newline = pending.indexOf("\n");
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          lines.push(JSON.parse(line));
        } catch {
          lines.push({ raw: line });
        }
        newline = pending.indexOf("\n");
      }
      for (const wake of waiters) wake();
    }
  })();
  const exited = proc.exited;
  return {
    proc,
    lines,
    exited,
    stdout: () => new Response(proc.stdout).text(),
    stderrText: () => stderr,
    waitForLog(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching log line within ${timeoutMs} ms; stderr so far:\n${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Starts a shutdown-manager on a free port and resolves once it listens. */
export async function startManager(args: string[], options: { env?: Record<string, string>; cli?: string[] } = {}) {
  const cli = spawnCli(["shutdown-manager", "--serve-port", "0", "--serve-address", "127.0.0.1", ...args], options);
  const listening = await cli.waitForLog((line) => line.msg === "shutdown-manager listening");
  return { ...cli, port: listening.port as number, url: `http://127.0.0.1:${listening.port}` };
}

/** Fails the test if `promise` does not settle within `ms`. */
export function within<T>(ms: number, promise: Promise<T>, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
