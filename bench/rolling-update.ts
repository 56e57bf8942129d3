/**
 * A rolling update under load behind a real load balancer, as a model of the real world: `npm run bench:rollout`.
 *
 * Pods are fake Envoy programs (test/support/fake-envoy-cli.ts: they drain as released Envoy does, and exit at once
 * on SIGTERM, resetting every connection) wired one of the documented ways. HAProxy (Debian's package) spreads the
 * users over the pods' data ports in `http` (L7) or `tcp` (L4) mode, health-checks each pod's data port (a TCP
 * connect, or GET on the health-check filter's path, answered 503 once failing), and is told of an endpoint's
 * removal some seconds after the termination started (or never: then only its health checks take the pod out).
 * kubelet is modelled per container: each container's preStop hook runs at termination, the container gets SIGTERM
 * when its own hook returns (at once when it has none), and the grace period ends everything with SIGKILL.
 *
 * A Deployment rolls 3 pods (each new pod is up before its old one terminates); a DaemonSet rolls 10 nodes one at a
 * time (the old pod goes, then its replacement starts), with timings scaled down (a 30 s grace period and a 2-5 s
 * load-balancer lag) so that the run stays within minutes. Prints, for each row, requests served and lost,
 * long-lived sessions cut, how the drains ended, and the termination (or rollout) times.
 *
 * `bun bench/rolling-update.ts [row ...]` runs the named rows only; ROLLOUT_CLI=path/to/main.ts runs another
 * checkout's program (the figures before a change).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAKE_ENVOY_CLI } from "../test/support/supervised.ts";
import { type Check, haproxyOrSkip, LoadBalancer, type Mode } from "./haproxy.ts";
import { NO_TRAFFIC, startUsers, type TrafficMix } from "./users.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = [process.execPath, process.env.ROLLOUT_CLI ?? `${ROOT}src/cli/main.ts`];
/** The drain flags of every wiring: the program's defaults plus a 3 s check delay (and ROLLOUT_FLAGS, to compare). */
const DRAIN_FLAGS = ["--check-delay=3s", ...(process.env.ROLLOUT_FLAGS?.split(" ").filter(Boolean) ?? [])];

type Wiring = "no hook" | "httpGet sidecar" | "exec hook + sidecar" | "supervisor (run)";

interface Row {
  name: string;
  wiring: Wiring;
  kind: "Deployment" | "DaemonSet";
  pods: number;
  graceMs: number;
  mode: Mode;
  check: Check;
  /** When the load balancer is told that a terminating pod's endpoint is gone; undefined: never. */
  lagMs: [number, number] | undefined;
  traffic: TrafficMix;
}

/** Every process the bench started and that still runs, and each pod's directory: an interrupted run ends them all. */
const spawned = new Set<Bun.Subprocess>();
const podDirs = new Set<string>();
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    for (const proc of spawned) proc.kill("SIGKILL");
    for (const dir of podDirs) removePod({ dir });
    process.exit(130);
  });

/** A spawned process whose JSON log lines can be waited for. */
function spawnLogged(argv: string[]) {
  const proc = Bun.spawn(argv, {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, ENVOY_SHUTDOWN_LOG_FORMAT: "json", NO_COLOR: "1" },
  });
  spawned.add(proc);
  void proc.exited.then(() => spawned.delete(proc));
  const lines: Record<string, unknown>[] = [];
  const ended = () => lines.find((line) => /^drain (complete|timed out)/.test(String(line.msg)));
  const wakers = new Set<() => void>();
  void (async () => {
    let pending = "";
    for await (const chunk of proc.stderr) {
      pending += new TextDecoder().decode(chunk);
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        try {
          lines.push(JSON.parse(pending.slice(0, nl)));
        } catch {
          // not a JSON line
        }
        pending = pending.slice(nl + 1);
      }
      for (const wake of wakers) wake();
    }
  })();
  const waitFor = (match: (line: Record<string, unknown>) => boolean, ms = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such log line within ${ms} ms: ${argv.join(" ")}`)), ms);
      const check = () => {
        const found = lines.find(match);
        if (!found) return;
        clearTimeout(timer);
        wakers.delete(check);
        resolve(found);
      };
      wakers.add(check);
      check();
    });
  return { proc, waitFor, ended };
}
type Logged = ReturnType<typeof spawnLogged>;

interface Pod {
  dataPort: number;
  /** The containers kubelet signals: Envoy (or the supervisor), and the sidecar where there is one. */
  envoy: Logged;
  sidecar: Logged | undefined;
  sidecarPort: number;
  dir: string;
}

/** Starts one pod of `wiring`; resolves once Envoy serves (and the sidecar listens). */
async function startPod(row: Row): Promise<Pod> {
  const dir = mkdtempSync(join(tmpdir(), "esm-rollout-"));
  podDirs.add(dir);
  const socket = join(dir, "admin.sock");
  const envoyArgv = [process.execPath, FAKE_ENVOY_CLI, "--admin-socket", socket, "--info-dir", dir, "--response-delay", "5"];
  const flags = [...DRAIN_FLAGS, "--admin-address", socket, "--serve-address", "127.0.0.1", "--serve-port", "0"];
  let envoy: Logged;
  let sidecar: Logged | undefined;
  let sidecarPort = 0;
  if (row.wiring === "supervisor (run)") {
    envoy = spawnLogged([...CLI, "run", ...flags, "--", ...envoyArgv]);
  } else {
    envoy = spawnLogged(envoyArgv);
    if (row.wiring !== "no hook") {
      sidecar = spawnLogged([...CLI, "shutdown-manager", ...flags, "--ready-file", join(dir, "ready")]);
      sidecarPort = Number((await sidecar.waitFor((line) => line.msg === "shutdown-manager listening")).port);
    }
  }
  const started = await envoy.waitFor((line) => line.fake === "started");
  return { dataPort: Number(started.data_port), envoy, sidecar, sidecarPort, dir };
}

/** kubelet stopping a pod: each container's preStop hook, then its SIGTERM, all within the grace period. */
async function terminate(pod: Pod, row: Row): Promise<number> {
  const started = performance.now();
  const grace = AbortSignal.timeout(row.graceMs);
  const httpGet = () =>
    fetch(`http://127.0.0.1:${pod.sidecarPort}/shutdown`, { signal: grace, timeout: false }).then(
      (response) => response.arrayBuffer(),
      () => undefined,
    );
  const execHook = async () => {
    const hook = Bun.spawn(
      [...CLI, "shutdown", ...DRAIN_FLAGS, "--admin-address", join(pod.dir, "admin.sock")].concat([
        "--serve-port",
        String(pod.sidecarPort),
        "--ready-file",
        join(pod.dir, "ready"),
      ]),
      { stdio: ["ignore", "ignore", "ignore"] },
    );
    grace.addEventListener("abort", () => hook.kill("SIGKILL"), { once: true });
    await hook.exited;
  };
  const sigterm = (container: Logged | undefined) => container?.proc.kill("SIGTERM");
  const containers: Promise<unknown>[] = [];
  switch (row.wiring) {
    case "no hook":
    case "supervisor (run)":
      sigterm(pod.envoy);
      break;
    case "httpGet sidecar":
      // The sidecar has no hook of its own: kubelet signals it at once, while Envoy's httpGet is on its way.
      sigterm(pod.sidecar);
      containers.push(httpGet().then(() => sigterm(pod.envoy)));
      break;
    case "exec hook + sidecar":
      containers.push(httpGet().then(() => sigterm(pod.envoy)));
      containers.push(execHook().then(() => sigterm(pod.sidecar)));
      break;
  }
  await Promise.all(containers);
  const exited = Promise.all([pod.envoy.proc.exited, pod.sidecar?.proc.exited]);
  const killAll = () => {
    pod.envoy.proc.kill("SIGKILL");
    pod.sidecar?.proc.kill("SIGKILL");
  };
  grace.addEventListener("abort", killAll, { once: true });
  await exited;
  return performance.now() - started;
}

/** Kills whatever fake Envoy a pod's directory names (a SIGKILLed supervisor cannot). */
function killFakeEnvoys(dir: string): void {
  try {
    process.kill((JSON.parse(readFileSync(join(dir, "epoch-0.json"), "utf8")) as { pid: number }).pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** How a pod's drain ended: by its condition, at its deadline, or not at all (SIGKILL, or no drain). */
function drainEnd(pod: Pod): "condition" | "deadline" | "killed" {
  const line = (pod.sidecar ?? pod.envoy).ended();
  if (!line) return "killed";
  return String(line.msg).startsWith("drain complete") ? "condition" : "deadline";
}

function removePod(pod: Pick<Pod, "dir">): void {
  killFakeEnvoys(pod.dir);
  rmSync(pod.dir, { recursive: true, force: true });
  podDirs.delete(pod.dir);
}

const uniform = ([low, high]: [number, number]) => low + Math.random() * (high - low);
/** Health checks that pass once after a pod's start: it takes traffic then. */
const READY_MS = 1500;

/** Terminates `old` under the load balancer: endpoint removal after the row's lag, kubelet's order meanwhile. */
async function terminateBehind(lb: LoadBalancer, old: Pod, name: string, row: Row): Promise<number> {
  const lag = row.lagMs ? uniform(row.lagMs) : undefined;
  const removal = lag === undefined ? undefined : setTimeout(() => void lb.remove(name), lag);
  const took = await terminate(old, row);
  // The next pod goes once this one is out of the load balancer too, as a rollout paced by readiness does.
  if (lag !== undefined) await Bun.sleep(Math.max(0, lag - took));
  clearTimeout(removal);
  await lb.remove(name);
  return took;
}

/** One row: the load balancer, the pods, the users, and the rollout. */
async function rollout(row: Row) {
  const dir = mkdtempSync(join(tmpdir(), "esm-lb-"));
  const lb = await LoadBalancer.start(row.mode, row.check, dir);
  spawned.add(lb.proc);
  let serial = 0;
  const startBehind = async () => {
    const pod = await startPod(row);
    const name = `pod${serial++}`;
    await lb.add(name, pod.dataPort);
    return { pod, name };
  };
  const pods = [];
  for (let i = 0; i < row.pods; i++) pods.push(await startBehind());
  await Bun.sleep(READY_MS);
  const users = startUsers(lb.port, row.traffic);
  await Bun.sleep(5000);
  const terminations: number[] = [];
  const ends: string[] = [];
  const replacements: Pod[] = [];
  const started = performance.now();
  for (const old of pods) {
    if (row.kind === "Deployment") {
      const next = await startBehind();
      replacements.push(next.pod);
      await Bun.sleep(READY_MS);
    }
    terminations.push(await terminateBehind(lb, old.pod, old.name, row));
    ends.push(drainEnd(old.pod));
    removePod(old.pod);
    if (row.kind === "DaemonSet") {
      replacements.push((await startBehind()).pod);
      await Bun.sleep(READY_MS);
    }
  }
  const rolloutMs = performance.now() - started;
  await Bun.sleep(1000);
  const tally = await users.stop();
  for (const pod of replacements) {
    pod.envoy.proc.kill("SIGKILL");
    pod.sidecar?.proc.kill("SIGKILL");
    await pod.envoy.proc.exited;
    removePod(pod);
  }
  await lb.stop();
  rmSync(dir, { recursive: true, force: true });
  return { ...tally, terminations, ends, rolloutMs };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const LAG: [number, number] = [5000, 10_000];
const IDLE_USERS = { pausingUsers: 10, pauseMs: [60_000, 120_000] as [number, number] };
const BUSY = { backToBack: 4, newPerSecond: 20 };
const deployment = { kind: "Deployment", pods: 3, graceMs: 30_000, wiring: "httpGet sidecar" } as const;
const l4IdleUsers: Row = {
  ...deployment,
  name: "L4 + idle users",
  mode: "tcp",
  check: "tcp",
  lagMs: LAG,
  traffic: { ...NO_TRAFFIC, ...BUSY, ...IDLE_USERS },
};
const ROWS: Row[] = [
  {
    ...deployment,
    name: "L7, told of removal",
    mode: "http",
    check: "http",
    lagMs: LAG,
    traffic: { ...NO_TRAFFIC, ...BUSY, ...IDLE_USERS },
  },
  { ...deployment, name: "L7, health checks only", mode: "http", check: "http", lagMs: undefined, traffic: { ...NO_TRAFFIC, ...BUSY } },
  l4IdleUsers,
  { ...l4IdleUsers, name: "L4 + idle users, exec hook", wiring: "exec hook + sidecar" },
  { ...l4IdleUsers, name: "L4 + idle users, supervisor", wiring: "supervisor (run)" },
  { ...deployment, name: "L4, HTTP health checks only", mode: "tcp", check: "http", lagMs: undefined, traffic: { ...NO_TRAFFIC, ...BUSY } },
  {
    ...deployment,
    name: "L4 + WebSockets and streams",
    mode: "tcp",
    check: "tcp",
    lagMs: LAG,
    traffic: { ...NO_TRAFFIC, newPerSecond: 10, websockets: 6, streams: 4, streamMs: [5000, 40_000] },
  },
  {
    ...deployment,
    name: "L4 + HTTP/2 (modelled)",
    mode: "tcp",
    check: "tcp",
    lagMs: LAG,
    traffic: { ...NO_TRAFFIC, newPerSecond: 10, http2BackToBack: 4, http2Pausing: 6, pauseMs: [60_000, 120_000] },
  },
  {
    name: "DaemonSet, 10 nodes, L4 + idle users",
    kind: "DaemonSet",
    pods: 10,
    graceMs: 30_000,
    wiring: "httpGet sidecar",
    mode: "tcp",
    check: "tcp",
    lagMs: [2000, 5000],
    traffic: { ...NO_TRAFFIC, ...BUSY, ...IDLE_USERS },
  },
];

const skip = haproxyOrSkip();
if (skip) {
  console.log(`bench:rollout skipped: ${skip}`);
  process.exit(0);
}
const only = process.argv.slice(2);
const results: Record<string, unknown>[] = [];
console.log(`rolling update behind HAProxy, drain flags ${DRAIN_FLAGS.join(" ")} (program: ${CLI[1]})`);
console.log(
  "| row | wiring | requests served | lost | long-lived cut / completed | drains by condition / deadline / SIGKILL | termination median / max | rollout |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const row of ROWS) {
  if (only.length > 0 && !only.includes(row.name)) continue;
  const result = await rollout(row);
  const count = (end: string) => result.ends.filter((e) => e === end).length;
  console.log(
    `| ${row.name} | ${row.wiring} | ${result.served} | ${result.lost} | ${result.cut} / ${result.completed} | ${count("condition")} / ${count("deadline")} / ${count("killed")} | ${seconds(median(result.terminations))} / ${seconds(Math.max(...result.terminations))} | ${seconds(result.rolloutMs)} |`,
  );
  results.push({
    row: row.name,
    wiring: row.wiring,
    ...result,
    terminations: result.terminations.map(Math.round),
    rolloutMs: Math.round(result.rolloutMs),
  });
}
mkdirSync(`${ROOT}bench-results`, { recursive: true });
const file = `${ROOT}bench-results/rolling-update-${new Date().toISOString().replaceAll(":", "-")}.json`;
writeFileSync(file, JSON.stringify({ program: CLI[1], drain_flags: DRAIN_FLAGS, rows: results }, null, 2));
console.log(`results: ${file}`);
