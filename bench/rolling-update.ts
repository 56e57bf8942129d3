/**
 * A rolling update under load, as a model of the real world: `npm run bench:rollout`.
 *
 * Three pods, each a fake Envoy program (its data plane answers requests; on SIGTERM it exits at once, closing every
 * connection, as Envoy does) wired one of the documented ways. A load balancer spreads new connections over the
 * pods' data ports and drops a terminating pod only some seconds after its termination started (kube-proxy and
 * cloud load balancers follow endpoint removal late). Four keep-alive clients send requests back to back, and 20
 * new short connections a second arrive. kubelet is modelled per container: each container's preStop hook runs at
 * termination, and the container gets SIGTERM when its own hook returns (at once when it has none); the grace
 * period (30 s) ends everything. A request fails when its connection is refused or dies before the answer.
 *
 * Prints, for each wiring and load-balancer lag, the requests served and lost and how long terminations took.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KeepAliveClient, openClient } from "../test/support/clients.ts";
import { FAKE_ENVOY_CLI } from "../test/support/supervised.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = [process.execPath, `${ROOT}src/cli/main.ts`];
const GRACE_MS = 30_000;
const PODS = 3;
const KEEP_ALIVE_CLIENTS = 4;
const NEW_CONNECTIONS_PER_S = 20;
/** The drain flags of every wiring: the program's defaults plus a 3 s check delay. */
const DRAIN_FLAGS = ["--check-delay=3s"];

type Wiring = "no hook" | "httpGet sidecar" | "exec hook + sidecar" | "supervisor (run)";
const WIRINGS: Wiring[] = ["no hook", "httpGet sidecar", "exec hook + sidecar", "supervisor (run)"];

interface Scenario {
  wiring: Wiring;
  lagMs: [number, number];
  /** Flags added to the drain's, to compare (the quiet period off: the drain before it existed). */
  extra: string[];
}

/** A spawned process whose JSON log lines can be waited for. */
function spawnLogged(argv: string[]) {
  const proc = Bun.spawn(argv, {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, ENVOY_SHUTDOWN_LOG_FORMAT: "json", NO_COLOR: "1" },
  });
  const lines: Record<string, unknown>[] = [];
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
  return { proc, waitFor };
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
async function startPod(scenario: Scenario): Promise<Pod> {
  const dir = mkdtempSync(join(tmpdir(), "esm-rollout-"));
  const socket = join(dir, "admin.sock");
  const envoyArgv = [process.execPath, FAKE_ENVOY_CLI, "--admin-socket", socket, "--info-dir", dir, "--response-delay", "5"];
  const flags = [...DRAIN_FLAGS, ...scenario.extra, "--admin-address", socket, "--serve-address", "127.0.0.1", "--serve-port", "0"];
  let envoy: Logged;
  let sidecar: Logged | undefined;
  let sidecarPort = 0;
  if (scenario.wiring === "supervisor (run)") {
    envoy = spawnLogged([...CLI, "run", ...flags, "--", ...envoyArgv]);
  } else {
    envoy = spawnLogged(envoyArgv);
    if (scenario.wiring !== "no hook") {
      sidecar = spawnLogged([...CLI, "shutdown-manager", ...flags, "--ready-file", join(dir, "ready")]);
      sidecarPort = Number((await sidecar.waitFor((line) => line.msg === "shutdown-manager listening")).port);
    }
  }
  const started = await envoy.waitFor((line) => line.fake === "started");
  return { dataPort: Number(started.data_port), envoy, sidecar, sidecarPort, dir };
}

/** kubelet stopping a pod: each container's preStop hook, then its SIGTERM, all within the grace period. */
async function terminate(pod: Pod, scenario: Scenario): Promise<number> {
  const started = performance.now();
  const grace = AbortSignal.timeout(GRACE_MS);
  const httpGet = () =>
    fetch(`http://127.0.0.1:${pod.sidecarPort}/shutdown`, { signal: grace, timeout: false }).then(
      (response) => response.arrayBuffer(),
      () => undefined,
    );
  const execHook = async () => {
    const hook = Bun.spawn(
      [...CLI, "shutdown", ...DRAIN_FLAGS, ...scenario.extra, "--admin-address", join(pod.dir, "admin.sock")].concat([
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
  switch (scenario.wiring) {
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
  const ms = performance.now() - started;
  killFakeEnvoys(pod.dir);
  rmSync(pod.dir, { recursive: true, force: true });
  return ms;
}

/** Kills whatever fake Envoy a pod's directory names (a SIGKILLed supervisor cannot). */
function killFakeEnvoys(dir: string): void {
  try {
    process.kill((JSON.parse(readFileSync(join(dir, "epoch-0.json"), "utf8")) as { pid: number }).pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** The load balancer: new connections go round-robin to the endpoints it still has. */
class LoadBalancer {
  private endpoints: number[] = [];
  private turn = 0;
  add(port: number) {
    this.endpoints.push(port);
  }
  remove(port: number) {
    this.endpoints = this.endpoints.filter((p) => p !== port);
  }
  pick(): number | undefined {
    return this.endpoints[this.turn++ % Math.max(1, this.endpoints.length)];
  }
}

/** The traffic: keep-alive clients back to back and new short connections, through the load balancer. */
function startTraffic(lb: LoadBalancer) {
  let running = true;
  let served = 0;
  let failed = 0;
  const count = (ok: boolean) => (ok ? served++ : failed++);
  const keepAlive = async () => {
    let client: KeepAliveClient | undefined;
    while (running) {
      try {
        if (!client || client.isClosed) {
          const port = lb.pick();
          if (port === undefined) throw new Error("no endpoint");
          client = await openClient(port);
        }
        // A `connection: close` sends the client back to the load balancer for its next connection.
        if ((await client.request()).includes("connection: close")) client = undefined;
        count(true);
      } catch {
        count(false);
        client = undefined;
      }
      await Bun.sleep(20);
    }
    client?.close();
  };
  const loops = Array.from({ length: KEEP_ALIVE_CLIENTS }, keepAlive);
  const shorts = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const port = lb.pick();
    if (port === undefined) return void count(false);
    // A new connection for one request, closed by the client once answered.
    const one = openClient(port)
      .then(async (client) => {
        try {
          await client.request();
        } finally {
          client.close();
        }
      })
      .then(
        () => void count(true),
        () => void count(false),
      );
    shorts.add(one);
    void one.finally(() => shorts.delete(one));
  }, 1000 / NEW_CONNECTIONS_PER_S);
  return {
    async stop() {
      running = false;
      clearInterval(timer);
      await Promise.all([...loops, ...shorts]);
      return { served, failed };
    },
  };
}

const uniform = ([low, high]: [number, number]) => low + Math.random() * (high - low);

/** Rolls every pod once (a new pod first, then the old one terminated), under traffic. */
async function rollout(scenario: Scenario) {
  const lb = new LoadBalancer();
  const pods: Pod[] = [];
  for (let i = 0; i < PODS; i++) pods.push(await startPod(scenario));
  for (const pod of pods) lb.add(pod.dataPort);
  const traffic = startTraffic(lb);
  await Bun.sleep(1000);
  const terminations: number[] = [];
  const replacements: Pod[] = [];
  for (const old of pods) {
    const replacement = await startPod(scenario);
    replacements.push(replacement);
    lb.add(replacement.dataPort);
    const lag = uniform(scenario.lagMs);
    const removal = setTimeout(() => lb.remove(old.dataPort), lag);
    const took = await terminate(old, scenario);
    terminations.push(took);
    // The next pod is replaced once this one is gone from the load balancer too, as a rollout paced by readiness is.
    await Bun.sleep(Math.max(0, lag - took));
    clearTimeout(removal);
    lb.remove(old.dataPort);
  }
  await Bun.sleep(1000);
  const { served, failed } = await traffic.stop();
  for (const pod of replacements) {
    pod.envoy.proc.kill("SIGKILL");
    pod.sidecar?.proc.kill("SIGKILL");
    await pod.envoy.proc.exited;
    killFakeEnvoys(pod.dir);
    rmSync(pod.dir, { recursive: true, force: true });
  }
  return { served, failed, terminations };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const lags: [string, [number, number]][] = [
  ["5–10 s", [5000, 10_000]],
  ["0.5–1.5 s", [500, 1500]],
];
const only = process.argv.slice(2);
const rows: Record<string, unknown>[] = [];
console.log(
  `rolling update: ${PODS} pods, ${KEEP_ALIVE_CLIENTS} keep-alive clients + ${NEW_CONNECTIONS_PER_S} new connections/s, drain flags ${DRAIN_FLAGS.join(" ")}`,
);
console.log("| wiring | quiet period | load-balancer lag | requests served | lost | termination (min–max) |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const [lagName, lagMs] of lags) {
  for (const wiring of WIRINGS) {
    const variants: string[][] = wiring === "no hook" ? [[]] : lagName === "5–10 s" ? [[], ["--quiet-period=0s"]] : [[]];
    for (const extra of variants) {
      const scenario = { wiring, lagMs, extra };
      if (only.length > 0 && !only.includes(wiring)) continue;
      const { served, failed, terminations } = await rollout(scenario);
      const quiet = wiring === "no hook" ? "-" : extra.length ? "off" : "2s (default)";
      const range = `${seconds(Math.min(...terminations))}–${seconds(Math.max(...terminations))}`;
      console.log(`| ${wiring} | ${quiet} | ${lagName} | ${served} | ${failed} | ${range} |`);
      rows.push({ wiring, quiet, lag: lagName, served, failed, terminations_ms: terminations.map(Math.round) });
    }
  }
}
mkdirSync(`${ROOT}bench-results`, { recursive: true });
const file = `${ROOT}bench-results/rolling-update-${new Date().toISOString().replaceAll(":", "-")}.json`;
writeFileSync(file, JSON.stringify({ drain_flags: DRAIN_FLAGS, rows }, null, 2));
console.log(`results: ${file}`);
