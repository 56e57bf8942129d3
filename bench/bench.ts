/**
 * `bun run bench`: what a sidecar costs and how fast it reacts, measured on the compiled executable.
 * Not part of the pass/fail suite: prints a table against the budgets and writes the figures as JSON.
 */

import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { options as sidecarCommandOptions } from "../src/cli/commands/shutdown-manager.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { connectionStatsPath, countListenerConnections } from "../src/envoy/stats.ts";
import { BUILD_FLAGS } from "../test/support/build-flags.ts";
import { freePort, openClient, rawRequest } from "../test/support/clients.ts";
import { startFakeEnvoy } from "../test/support/fake-envoy.ts";
import { formatCpuQuota, measureUnderCpuQuota } from "./cpu-quota.ts";
import type { SidecarDefaults } from "./sidecar-only.ts";
import { spawnAsContainer } from "./spawn.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const work = mkdtempSync(join(tmpdir(), "esm-bench-"));
const MiB = 2 ** 20;
/** The idle sidecar's budget against the floor, in both page-cache states. */
const IDLE_RATIO_BUDGET = 1.35;
const spawned = new Set<Subprocess>();
// Whatever happens (a failed build, an exception), leave no process or file behind.
process.on("exit", () => {
  for (const proc of spawned) proc.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** Resident memory of a process, in bytes, as the kernel reports it: all of it, its peak, and its anonymous part. */
function memory(pid: number): { rss: number; hwm: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib("VmRSS"), hwm: kib("VmHWM"), anon: kib("RssAnon") };
}

/** Builds an executable (the program unless `entry` says otherwise) with `bun build` flags (`npm run build`'s by default). */
function build(name: string, flags: readonly string[] = BUILD_FLAGS, entry = `${ROOT}src/cli/main.ts`): string {
  const outfile = join(work, name);
  const result = Bun.spawnSync([process.execPath, "build", entry, ...flags, "--outfile", outfile], {
    stderr: "pipe",
    stdout: "pipe",
  });
  if (result.exitCode !== 0) throw new Error(`bun build ${flags.join(" ")} failed: ${result.stderr.toString()}`);
  return outfile;
}

interface Manager {
  proc: Subprocess;
  port: number;
  url: string;
  /** Milliseconds from spawn to the first 200 from /healthz. */
  readyMs: number;
  stop(): Promise<void>;
}

/** Spawns the executable as a shutdown-manager and polls /healthz on a fresh socket until it answers 200. */
async function startManager(binary: string, admin: string, extra: string[] = []): Promise<Manager> {
  const port = freePort();
  const started = performance.now();
  const proc = spawnAsContainer([
    binary,
    "shutdown-manager",
    "--serve-address",
    "127.0.0.1",
    "--serve-port",
    String(port),
    "--admin-address",
    admin,
    "--ready-file",
    join(work, `ready-${port}`),
    "--log-level",
    "error",
    ...extra,
  ]);
  spawned.add(proc);
  for (;;) {
    const answer = await rawRequest(port, "GET /healthz HTTP/1.1").catch(() => "");
    if (answer.startsWith("HTTP/1.1 200")) break;
    if (performance.now() - started > 5000) throw new Error("the manager did not answer /healthz within 5 s");
  }
  const readyMs = performance.now() - started;
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    spawned.delete(proc);
  };
  return { proc, port, url: `http://127.0.0.1:${port}`, readyMs, stop };
}

interface Figure {
  figure: string;
  value: number;
  unit: string;
  budget: string;
  ok: boolean | undefined;
  note?: string;
}
const figures: Figure[] = [];
function record(figure: string, value: number, unit: string, budget: string, ok: boolean | undefined, note?: string) {
  figures.push({ figure, value: Math.round(value * 100) / 100, unit, budget, ok, ...(note ? { note } : {}) });
  console.error(`  ${figure}: ${value.toFixed(2)} ${unit}${note ? ` (${note})` : ""}`);
}

/** Records the median of latencies against a budget in milliseconds, noting the worst. */
function recordLatency(figure: string, latencies: number[], budgetMs: number) {
  const value = median(latencies);
  record(figure, value, "ms", `≤ ${budgetMs} ms`, value <= budgetMs, `max ${Math.max(...latencies).toFixed(1)} ms`);
}

console.error(`building executables and measuring (${RUNS} runs per figure)…`);
// The shipped build: the same flags as `bun run build`.
const binary = build("esm");
const fake = await startFakeEnvoy({ mode: "live" });

// 1. Side by side with the floor, in interleaved rounds: idle memory 2 s after start, exec → first /healthz 200,
//    and the hook's exec → POST /healthcheck/fail. Library variants of the floor show what the chosen libraries
//    cost at the least, whatever this program does with them.
interface Started {
  pid: number;
  readyMs: number;
  stop(): Promise<void>;
}

/** Spawns a server binary with --serve-port and polls /healthz on fresh sockets until it answers 200. */
async function startServing(argv: string[]): Promise<Started> {
  const port = freePort();
  const started = performance.now();
  const proc = spawnAsContainer([...argv, "--serve-port", String(port)]);
  spawned.add(proc);
  while (!(await rawRequest(port, "GET /healthz HTTP/1.1").catch(() => "")).startsWith("HTTP/1.1 200")) {
    if (performance.now() - started > 5000) throw new Error(`${argv[0]} did not answer /healthz within 5 s`);
  }
  const readyMs = performance.now() - started;
  return {
    pid: proc.pid,
    readyMs,
    async stop() {
      proc.kill("SIGKILL");
      await proc.exited;
      spawned.delete(proc);
    },
  };
}

/** The floor with one library added, as it would be used at the least: what that library alone costs. */
const LIBRARY_VARIANTS: Record<string, string> = {
  "floor + ofetch (one request)": `import { ofetch } from "ofetch";
ofetch.raw("http://127.0.0.1:1/", { retry: 0, ignoreResponseError: true, responseType: "text" }).catch(() => {});`,
  "floor + consola (one line)": `import { createConsola } from "consola/core";
createConsola({ reporters: [{ log: (entry) => console.error("%s", String(entry.args[0])) }] }).info("ready");`,
  "floor + citty (parse flags)": `import { runCommand } from "citty";
void runCommand({ args: { x: { type: "string" } }, run() {} }, { rawArgs: ["--x", "1"] });`,
};

/** Builds the floor, alone or with a library variant prepended, as an executable. */
function buildFloor(name: string, prelude = ""): string {
  const source = join(ROOT, "bench", `.${name.replace(/\W+/g, "-")}.ts`);
  writeFileSync(source, `${prelude}\n${readFileSync(`${ROOT}bench/floor.ts`, "utf8")}`);
  try {
    return build(name.replace(/\W+/g, "-"), BUILD_FLAGS, source);
  } finally {
    rmSync(source, { force: true });
  }
}

/** The out-of-process admin API stand-in, and the arrival time of the next fail POST it sees. */
async function startFailReceiver() {
  const proc = Bun.spawn([process.execPath, `${ROOT}bench/fail-receiver.ts`], { stdout: "pipe", stderr: "ignore" });
  spawned.add(proc);
  const lines = (async function* () {
    let pending = "";
    for await (const chunk of proc.stdout) {
      pending += new TextDecoder().decode(chunk);
      for (let at = pending.indexOf("\n"); at >= 0; at = pending.indexOf("\n")) {
        yield JSON.parse(pending.slice(0, at)) as { port?: number; failAt?: number };
        pending = pending.slice(at + 1);
      }
    }
  })();
  const { value } = await lines.next();
  return {
    port: value?.port ?? 0,
    async nextFailAt(): Promise<number> {
      const next = await lines.next();
      return next.value?.failAt ?? Number.NaN;
    },
  };
}

// As deployed: the default log level, so its start-up lines are written (to a file, standing in for a pod's pipe).
const sidecarArgv = [binary, "shutdown-manager", "--serve-address", "127.0.0.1", "--admin-address", fake.adminAddress];
const floorBinary = buildFloor("floor");
const referenceBinary = build("reference", BUILD_FLAGS, `${ROOT}bench/reference.ts`);
// The sidecar without its command line runs with the program's defaults, read here from the flag tables.
const defaults = readOptions(sidecarCommandOptions, [], {});
const sidecarDefaults: SidecarDefaults = {
  ...defaults,
  admin: { ...defaults.admin, ignoreListeners: defaults.admin.ignoreListeners.map((pattern) => pattern.source) },
};
const sidecarOnlyBinary = build(
  "sidecar-only",
  [...BUILD_FLAGS, "--define", `SIDECAR_DEFAULTS=${JSON.stringify(sidecarDefaults)}`],
  `${ROOT}bench/sidecar-only.ts`,
);
const subjects: [string, string[]][] = [
  ["floor", [floorBinary]],
  ["shutdown-manager", [...sidecarArgv, "--ready-file", join(work, "ready-idle")]],
  // As when a native sidecar starts before Envoy: its start-up check asks again, every second at most.
  [
    "shutdown-manager, Envoy not answering",
    [
      binary,
      "shutdown-manager",
      "--serve-address",
      "127.0.0.1",
      "--admin-address",
      `127.0.0.1:${freePort()}`,
      "--ready-file",
      join(work, "ready-unanswered"),
    ],
  ],
  ["reference", [referenceBinary, "--admin-address", fake.adminAddress]],
  ["reference without its start-up check", [referenceBinary, "--admin-address", fake.adminAddress, "--startup-check", "off"]],
  ["sidecar-only", [sidecarOnlyBinary, "--admin-address", fake.adminAddress, "--ready-file", join(work, "ready-sidecar-only")]],
  ...Object.entries(LIBRARY_VARIANTS).map(([name, prelude]): [string, string[]] => [name, [buildFloor(name, prelude)]]),
];
interface Samples {
  ready: number[];
  rss: number[];
  anon: number[];
}
const failPostMs: number[] = [];
const receiver = await startFailReceiver();

/** Interleaved rounds over `names`: each started, measured 2 s later, stopped; then one hook run (when asked). */
async function sideBySideRounds(names: string[], rounds: number, withHook: boolean): Promise<Map<string, Samples>> {
  const samples = new Map(names.map((name) => [name, { ready: [], rss: [], anon: [] } as Samples]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, argv] of subjects.filter(([name]) => names.includes(name))) {
      const server = await startServing(argv);
      await Bun.sleep(2000);
      const mem = memory(server.pid);
      const sample = samples.get(name);
      sample?.ready.push(server.readyMs);
      sample?.rss.push(mem.rss);
      sample?.anon.push(mem.anon);
      await server.stop();
    }
    if (!withHook) continue;
    // The hook: exec → the POST /healthcheck/fail reaches Envoy (no sidecar to join: --serve-port 0).
    const spawnedAt = performance.timeOrigin + performance.now();
    const hook = spawnAsContainer([
      binary,
      "shutdown",
      "--serve-port",
      "0",
      "--admin-address",
      `127.0.0.1:${receiver.port}`,
      "--check-delay",
      "1h",
    ]);
    spawned.add(hook);
    failPostMs.push((await receiver.nextFailAt()) - spawnedAt);
    hook.kill("SIGKILL");
    await hook.exited;
    spawned.delete(hook);
  }
  return samples;
}

/**
 * Writes an executable back to disk and drops it from the page cache, as after a reboot or memory pressure. How much
 * of a mapped executable a process has resident depends on that state: a file just written (an image layer just
 * unpacked) maps more pages per fault than one read back from disk, by about 6 MiB for the floor here. Both states
 * are measured, each with every executable in it.
 */
function settle(path: string): boolean {
  return Bun.spawnSync(["dd", `of=${path}`, "oflag=nocache", "conv=notrunc,fdatasync", "count=0"], { stderr: "pipe" }).exitCode === 0;
}

const justWritten = await sideBySideRounds(
  subjects.map(([name]) => name),
  RUNS * 2,
  true,
);
const coreSubjects = ["floor", "shutdown-manager", "reference", "reference without its start-up check", "sidecar-only"];
const settled = [floorBinary, binary, referenceBinary, sidecarOnlyBinary].every(settle)
  ? await sideBySideRounds(coreSubjects, RUNS * 2, false)
  : undefined;
const ratio = (a: number[], b: number[]) => median(a) / median(b);
const mib = (values: number[]) => `${(median(values) / MiB).toFixed(1)} MiB`;
const sideBySide: { figure: string; floor: string; program: string; ratio: number; goal: string; met: boolean }[] = [];
for (const [state, samples] of [
  ["just written", justWritten],
  ["settled", settled],
] as const) {
  if (!samples) continue;
  const floor = samples.get("floor") as Samples;
  const program = samples.get("shutdown-manager") as Samples;
  const reference = samples.get("reference") as Samples;
  const referenceUnchecked = samples.get("reference without its start-up check") as Samples;
  const sidecarOnly = samples.get("sidecar-only") as Samples;
  sideBySide.push(
    {
      figure: `idle VmRSS, 2 s after start (executables ${state})`,
      floor: mib(floor.rss),
      program: mib(program.rss),
      ratio: ratio(program.rss, floor.rss),
      goal: `≤ ${IDLE_RATIO_BUDGET} × floor`,
      met: ratio(program.rss, floor.rss) <= IDLE_RATIO_BUDGET,
    },
    {
      figure: `idle RssAnon, private (executables ${state})`,
      floor: mib(floor.anon),
      program: mib(program.anon),
      ratio: ratio(program.anon, floor.anon),
      goal: "≤ 3 MiB",
      met: median(program.anon) <= 3 * MiB,
    },
    {
      figure: `idle VmRSS, the reference: the sidecar's start-up work alone (executables ${state})`,
      floor: mib(floor.rss),
      program: `${mib(reference.rss)} (anonymous ${mib(reference.anon)})`,
      ratio: ratio(reference.rss, floor.rss),
      goal: "what the libraries and the required work cost at the least",
      met: true,
    },
    {
      figure: `idle VmRSS, the reference without its start-up check (GET /server_info and /stats through ofetch) (executables ${state})`,
      floor: mib(floor.rss),
      program: `${mib(referenceUnchecked.rss)} (anonymous ${mib(referenceUnchecked.anon)})`,
      ratio: ratio(referenceUnchecked.rss, floor.rss),
      goal: "what the two admin requests at start cost: the reference less this",
      met: true,
    },
    {
      figure: `idle VmRSS, this program's sidecar without its command line (executables ${state})`,
      floor: mib(floor.rss),
      program: `${mib(sidecarOnly.rss)} (anonymous ${mib(sidecarOnly.anon)})`,
      ratio: ratio(sidecarOnly.rss, floor.rss),
      goal: "what the sidecar costs before any flag is read",
      met: true,
    },
  );
}
{
  const floor = justWritten.get("floor") as Samples;
  const program = justWritten.get("shutdown-manager") as Samples;
  sideBySide.push(
    {
      figure: "exec → first /healthz 200",
      floor: `${median(floor.ready).toFixed(1)} ms`,
      program: `${median(program.ready).toFixed(1)} ms`,
      ratio: ratio(program.ready, floor.ready),
      goal: "≤ 2 × floor",
      met: ratio(program.ready, floor.ready) <= 2,
    },
    {
      figure: "shutdown: exec → POST /healthcheck/fail (floor: exec → first answer)",
      floor: `${median(floor.ready).toFixed(1)} ms`,
      program: `${median(failPostMs).toFixed(1)} ms`,
      ratio: ratio(failPostMs, floor.ready),
      goal: "≤ 2 × floor",
      met: ratio(failPostMs, floor.ready) <= 2,
    },
  );
  const unanswered = justWritten.get("shutdown-manager, Envoy not answering") as Samples;
  sideBySide.push({
    figure: "idle VmRSS, Envoy's admin API not answering (executables just written)",
    floor: mib(floor.rss),
    program: `${mib(unanswered.rss)} (anonymous ${mib(unanswered.anon)})`,
    ratio: ratio(unanswered.rss, floor.rss),
    goal: "report",
    met: true,
  });
  for (const [name] of Object.entries(LIBRARY_VARIANTS)) {
    const variant = justWritten.get(name) as Samples;
    sideBySide.push({
      figure: `idle VmRSS, ${name} (executables just written)`,
      floor: mib(floor.rss),
      program: `${mib(variant.rss)} (anonymous ${mib(variant.anon)})`,
      ratio: ratio(variant.rss, floor.rss),
      goal: "what the library alone costs",
      met: true,
    });
  }
  record(
    "idle RSS of shutdown-manager, 2 s after start (executable just written)",
    median(program.rss) / MiB,
    "MiB",
    `≤ ${IDLE_RATIO_BUDGET} × floor`,
    sideBySide[0]?.met,
    `anonymous ${(median(program.anon) / MiB).toFixed(1)} MiB`,
  );
  record(
    "exec → first /healthz 200",
    median(program.ready),
    "ms",
    "≤ 2 × floor",
    ratio(program.ready, floor.ready) <= 2,
    `min ${Math.min(...program.ready).toFixed(1)} ms`,
  );
}

// 2. RSS after 10,000 /healthz requests and 1,000 concurrent /shutdown waiters.
{
  const growth: number[] = [];
  const anonGrowth: number[] = [];
  const after: number[] = [];
  for (let run = 0; run < Math.min(RUNS, 3); run++) {
    fake.restart();
    const manager = await startManager(binary, fake.adminAddress, ["--check-delay", "1h"]);
    await Bun.sleep(2000);
    const { rss: idle, anon: idleAnon } = memory(manager.proc.pid);
    for (let batch = 0; batch < 100; batch++) {
      await Promise.all(Array.from({ length: 100 }, () => fetch(`${manager.url}/healthz`).then((r) => r.arrayBuffer())));
    }
    const waiters = Array.from({ length: 1000 }, () => rawRequest(manager.port, "GET /shutdown HTTP/1.1"));
    for (let i = 0; i < 200 && ((await (await fetch(`${manager.url}/status`)).json()) as { waiters: number }).waiters < 1000; i++)
      await Bun.sleep(25);
    const loaded = memory(manager.proc.pid);
    growth.push(loaded.rss - idle);
    anonGrowth.push(loaded.anon - idleAnon);
    after.push(loaded.rss);
    await manager.stop();
    await Promise.all(waiters);
  }
  record(
    "RSS after 10,000 /healthz and 1,000 /shutdown waiters, over idle",
    median(growth) / MiB,
    "MiB",
    "≤ +5 MiB",
    median(growth) <= 5 * MiB,
    `total ${(median(after) / MiB).toFixed(1)} MiB, anonymous +${(median(anonGrowth) / MiB).toFixed(1)} MiB`,
  );
}

// 4. hand-off: the last connection closes on the fake → /shutdown answers, at --check-interval=100ms, quiet period off;
// idle connections counted, so that the close (not the end of the client's last request) ends the drain.
{
  const latencies: number[] = [];
  for (let run = 0; run < RUNS * 2; run++) {
    fake.restart();
    const manager = await startManager(binary, fake.adminAddress, [
      "--check-delay",
      "0s",
      "--check-interval",
      "100ms",
      // The count's reaction alone: the quiet period's is measured by `npm run bench:reaction`.
      "--quiet-period",
      "0s",
      "--count-idle-connections",
      "--no-heal-on-start",
    ]);
    const client = await openClient(fake.dataPort);
    await client.request();
    const answered = fetch(`${manager.url}/shutdown`).then(() => performance.now());
    while (!fake.isHealthCheckFailed) await Bun.sleep(1);
    // Close at a random point of the poll cycle, as a real client would.
    await Bun.sleep(Math.random() * 100);
    await client.request();
    await client.closed;
    const closedAt = performance.now();
    latencies.push((await answered) - closedAt);
    await manager.stop();
  }
  recordLatency("hand-off: last connection closes → /shutdown answers (100 ms interval, no quiet period)", latencies, 120);
}

// 5. ready file appears → waiting /shutdown answers.
{
  const latencies: number[] = [];
  for (let run = 0; run < RUNS * 2; run++) {
    fake.restart({ "0.0.0.0_8080": 1 });
    const dir = join(work, `handoff-${run}`);
    mkdirSync(dir);
    const readyFile = join(dir, "ready");
    const manager = await startManager(binary, fake.adminAddress, ["--check-delay", "1h", "--ready-file", readyFile]);
    const answered = fetch(`${manager.url}/shutdown`).then(() => performance.now());
    await Bun.sleep(200);
    const written = performance.now();
    writeFileSync(`${readyFile}.partial`, "drained\n");
    renameSync(`${readyFile}.partial`, readyFile);
    latencies.push((await answered) - written);
    await manager.stop();
  }
  recordLatency("ready file appears → waiting /shutdown answers", latencies, 20);
}

// 6. one poll against a fake with 5,000 listeners.
{
  const many = await startFakeEnvoy({
    connections: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`10.0.${Math.floor(i / 250)}.${i % 250}_8080`, i % 7])),
  });
  const url = `http://${many.adminAddress}${connectionStatsPath("listener")}`;
  const parse: number[] = [];
  const whole: number[] = [];
  let size = 0;
  let total = 0;
  for (let run = 0; run < RUNS * 4; run++) {
    const started = performance.now();
    const body = await (await fetch(url)).text();
    const parsing = performance.now();
    total = countListenerConnections(body, []).total;
    const done = performance.now();
    parse.push(done - parsing);
    whole.push(done - started);
    size = body.length;
  }
  // The same count in the shipped build: its JIT policy leaves the first poll to the interpreter for longer.
  const timing = build("parse-timing", BUILD_FLAGS, `${ROOT}bench/parse-timing.ts`);
  // Spawned, not spawnSync: the fake answering its polls runs in this process.
  const timingRun = Bun.spawn([timing, url, String(RUNS * 4)], { stdout: "pipe" });
  const shipped = JSON.parse(await new Response(timingRun.stdout).text()) as { times: number[] };
  await many.stop();
  record(
    "one poll, 5,000 listeners: parse in the shipped executable",
    median(shipped.times),
    "ms",
    "≤ 5 ms",
    median(shipped.times) <= 5,
    `first poll ${shipped.times[0]?.toFixed(1)} ms, default --ignore-listeners patterns`,
  );
  record(
    "one poll, 5,000 listeners: parse",
    median(parse),
    "ms",
    "≤ 5 ms",
    median(parse) <= 5,
    `body ${(size / 1024).toFixed(0)} KiB, whole poll ${median(whole).toFixed(1)} ms, counted ${total}`,
  );
}

// 7. /healthz p99 under 200 concurrent clients while a drain runs; the clients run in a process of their own.
{
  fake.restart({ "0.0.0.0_8080": 1 });
  const manager = await startManager(binary, fake.adminAddress, ["--check-delay", "0s", "--check-interval", "100ms", "--no-heal-on-start"]);
  const draining = fetch(`${manager.url}/shutdown`);
  await Bun.sleep(200);
  const load = (intervalMs: number) => {
    const args = [String(manager.port), "200", String(intervalMs), "3000"];
    const result = Bun.spawnSync([process.execPath, `${ROOT}bench/load.ts`, ...args], { stdout: "pipe", stderr: "pipe" });
    return JSON.parse(result.stdout.toString()) as { requests: number; p50: number; p99: number; max: number };
  };
  for (const [intervalMs, label] of [
    [20, "200 clients × 50 req/s"],
    [0, "200 clients, closed loop (saturation)"],
  ] as const) {
    const runs = Array.from({ length: 3 }, () => load(intervalMs));
    const p99 = median(runs.map((r) => r.p99));
    const rate = median(runs.map((r) => r.requests / 3));
    record(
      `/healthz p99 during a drain, ${label}`,
      p99,
      "ms",
      "≤ 5 ms",
      p99 <= 5,
      `p50 ${median(runs.map((r) => r.p50)).toFixed(2)} ms, ${Math.round(rate)} req/s`,
    );
  }
  fake.restart();
  await draining.catch(() => undefined);
  await manager.stop();
}

// 8. executable size, and the effect of the build flags.
{
  const plain = build("esm-plain", ["--compile"]);
  const minified = build("esm-minify", ["--compile", "--minify"]);
  const startup = async (path: string) => {
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const manager = await startManager(path, fake.adminAddress);
      times.push(manager.readyMs);
      await manager.stop();
    }
    return median(times);
  };
  for (const [name, path] of [
    [`${BUILD_FLAGS.filter((flag) => flag !== "--compile").join(" ")} (shipped)`, binary],
    ["--minify", minified],
    ["no flags", plain],
  ] as const) {
    record(
      `executable size, ${name}`,
      statSync(path).size / MiB,
      "MiB",
      "report",
      undefined,
      `exec → /healthz ${(await startup(path)).toFixed(1)} ms`,
    );
  }
}

// 9. the supervisor (`run`): exec → its child started, and its own idle memory (the child's not included).
{
  const childAfter: number[] = [];
  const idle: number[] = [];
  const anon: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const port = freePort();
    const started = performance.now();
    const proc = spawnAsContainer(
      [binary, "run", "--serve-address", "127.0.0.1", "--serve-port", String(port), "--admin-address", fake.adminAddress].concat([
        "--log-level",
        "error",
        "--",
        "sleep",
        "600",
      ]),
    );
    spawned.add(proc);
    const childrenFile = `/proc/${proc.pid}/task/${proc.pid}/children`;
    let child = "";
    while (child === "") {
      child = readFileSync(childrenFile, "utf8").trim();
      if (performance.now() - started > 5000) throw new Error("the supervisor started no child within 5 s");
    }
    childAfter.push(performance.now() - started);
    await Bun.sleep(2000);
    const mem = memory(proc.pid);
    idle.push(mem.rss);
    anon.push(mem.anon);
    proc.kill("SIGKILL");
    await proc.exited;
    spawned.delete(proc);
  }
  record(
    "supervisor: exec → Envoy (its child) started",
    median(childAfter),
    "ms",
    "report",
    undefined,
    `min ${Math.min(...childAfter).toFixed(1)} ms`,
  );
  record(
    "supervisor: idle RSS, 2 s after start, its child not included",
    median(idle) / MiB,
    "MiB",
    "report",
    undefined,
    `anonymous ${(median(anon) / MiB).toFixed(1)} MiB`,
  );
}

// 10. Under a CPU quota, as `resources.limits.cpu` applies it.
const cpuQuota = await measureUnderCpuQuota(binary, fake, { runs: RUNS, idleSeconds: Number(process.env.BENCH_IDLE_SECONDS ?? 30) });

await fake.stop();

const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? "unknown",
  bun: Bun.version,
  platform: `${process.platform}-${process.arch}`,
};
const width = Math.max(...figures.map((f) => f.figure.length));
console.log(`\nmachine: ${machine.cores} cores (${machine.cpu}), Bun ${machine.bun}, ${machine.platform}; median of ${RUNS} runs\n`);
console.log(`| ${"figure".padEnd(width)} | value | budget | |`);
console.log(`| ${"-".repeat(width)} | --- | --- | --- |`);
for (const f of figures) {
  const verdict = f.ok === undefined ? "" : f.ok ? "ok" : "MISSED";
  console.log(`| ${f.figure.padEnd(width)} | ${f.value} ${f.unit}${f.note ? ` (${f.note})` : ""} | ${f.budget} | ${verdict} |`);
}
console.log(`\nside by side with the floor (a compiled Bun.serve answering a static /healthz), ${RUNS * 2} interleaved rounds, medians:\n`);
console.log("| figure | floor | this program | ratio | goal | |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const row of sideBySide) {
  console.log(`| ${row.figure} | ${row.floor} | ${row.program} | ${row.ratio.toFixed(2)} | ${row.goal} | ${row.met ? "ok" : "MISSED"} |`);
}
console.log(`\nunder a CPU quota (CFS, period 100 ms), median of ${RUNS} runs:\n\n${formatCpuQuota(cpuQuota)}`);
mkdirSync(`${ROOT}bench-results`, { recursive: true });
const out = `${ROOT}bench-results/bench-${new Date().toISOString().replaceAll(":", "-")}.json`;
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, runs: RUNS, figures, sideBySide, cpuQuota }, null, 2)}\n`);
console.log(`\nfigures written to ${out}`);
process.exit(0);
