/**
 * How soon a drain notices its end, and what its fast polling costs: `npm run bench:reaction`.
 *
 * A sidecar process drains a fake Envoy (in this process), counting every open connection. Reaction: the time from the drain's end condition
 * holding (the last connection closed; with a quiet period, the quiet period passed after the last new connection)
 * to the /shutdown answer, at --check-interval 1s and 5s. Cost: the CPU the sidecar and the fake Envoy's admin API
 * spend over 10 s of polling near the end (one connection that never closes, threshold 0).
 */
import { readFileSync } from "node:fs";
import { type FakeEnvoy, startFakeEnvoy } from "../test/support/fake-envoy.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = [process.execPath, `${ROOT}src/cli/main.ts`];
const RUNS = 5;
const TICKS_PER_S = 100; // USER_HZ on Linux

/** Starts a sidecar against `fake` with `flags`; resolves with its process and URL once it listens. */
async function startSidecar(fake: FakeEnvoy, flags: string[]) {
  const proc = Bun.spawn(
    [...CLI, "shutdown-manager", "--serve-address", "127.0.0.1", "--serve-port", "0", "--admin-address", fake.adminAddress].concat([
      "--ready-file=",
      "--check-delay",
      "0s",
      // The fake's scripted connections carry no requests: they hold the drain, and arrive, only counted as connections.
      "--count-idle-connections",
      "--log-format",
      "json",
      ...flags,
    ]),
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  let text = "";
  for await (const chunk of proc.stderr) {
    text += new TextDecoder().decode(chunk);
    const port = /"msg":"shutdown-manager listening".*?"port":(\d+)/.exec(text)?.[1];
    if (port) return { proc, url: `http://127.0.0.1:${port}` };
  }
  throw new Error(`the sidecar did not start: ${text}`);
}

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0] ?? 0, median: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted.at(-1) ?? 0 };
};
const ms = (value: number) => `${Math.round(value)} ms`;

/** One drain whose last connection closes 2–3 s after health checks fail; the reaction in ms. */
async function reactionToLastClose(intervalFlag: string): Promise<number> {
  const closeAfterMs = 2000 + Math.random() * 1000;
  const fake = await startFakeEnvoy({ connections: 3, timeline: [{ afterFailMs: closeAfterMs, connections: 0 }] });
  const sidecar = await startSidecar(fake, ["--check-interval", intervalFlag, "--quiet-period", "0s"]);
  try {
    await fetch(`${sidecar.url}/shutdown`);
    const answeredAt = Date.now();
    const failedAt = fake.calls("/healthcheck/fail")[0]?.at ?? Number.NaN;
    return answeredAt - (failedAt + closeAfterMs);
  } finally {
    sidecar.proc.kill("SIGKILL");
    await fake.stop();
  }
}

/** One drain at 0 open whose load balancer sends new connections for 2–3 s; the reaction after the quiet period, in ms. */
async function reactionToQuiet(intervalFlag: string): Promise<number> {
  const quietMs = 2000;
  const fake = await startFakeEnvoy({ connections: 0 });
  const sidecar = await startSidecar(fake, ["--check-interval", intervalFlag, "--quiet-period", `${quietMs}ms`]);
  const sendForMs = 2000 + Math.random() * 1000;
  let lastNewAt = Date.now();
  const sending = setInterval(() => {
    // A short connection: accepted (the counter rises) and closed again.
    fake.setConnections(1);
    fake.setConnections(0);
    lastNewAt = Date.now();
  }, 50);
  setTimeout(() => clearInterval(sending), sendForMs);
  try {
    await fetch(`${sidecar.url}/shutdown`);
    return Date.now() - (lastNewAt + quietMs);
  } finally {
    clearInterval(sending);
    sidecar.proc.kill("SIGKILL");
    await fake.stop();
  }
}

/** CPU of 10 s of polling near the end: the sidecar's, and this process's (the fake Envoy's admin API), in % of a core. */
async function fastPollingCost(): Promise<{ sidecar: number; admin: number; pollsPerS: number }> {
  const fake = await startFakeEnvoy({ connections: 1 });
  const sidecar = await startSidecar(fake, ["--check-interval", "5s", "--quiet-period", "2s"]);
  const waiter = fetch(`${sidecar.url}/shutdown`).catch(() => undefined);
  await Bun.sleep(1000);
  const windowMs = 10_000;
  const before = { sidecar: cpuSeconds(sidecar.proc.pid), self: process.cpuUsage(), polls: fake.calls("/stats").length };
  await Bun.sleep(windowMs);
  const self = process.cpuUsage(before.self);
  const result = {
    sidecar: ((cpuSeconds(sidecar.proc.pid) - before.sidecar) / (windowMs / 1000)) * 100,
    admin: ((self.user + self.system) / 1e6 / (windowMs / 1000)) * 100,
    pollsPerS: (fake.calls("/stats").length - before.polls) / (windowMs / 1000),
  };
  sidecar.proc.kill("SIGKILL");
  await waiter;
  await fake.stop();
  return result;
}

console.log(`drain reaction, ${RUNS} runs each (min / median / max)`);
console.log("| end condition | --check-interval | condition held → /shutdown answered |");
console.log("| --- | --- | --- |");
for (const [name, measure] of [
  ["last connection closed", reactionToLastClose],
  ["quiet period passed", reactionToQuiet],
] as const) {
  for (const interval of ["1s", "5s"]) {
    const values: number[] = [];
    for (let i = 0; i < RUNS; i++) values.push(await measure(interval));
    const { min, median, max } = stats(values);
    console.log(`| ${name} | ${interval} | ${ms(min)} / ${ms(median)} / ${ms(max)} |`);
  }
}
const cost = await fastPollingCost();
console.log(
  `fast polling near the end: ${cost.pollsPerS.toFixed(1)} counts/s; CPU ${cost.sidecar.toFixed(1)} % of a core in the sidecar, ` +
    `${cost.admin.toFixed(1)} % in the fake Envoy's admin API (this process)`,
);
