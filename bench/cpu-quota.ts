/**
 * The compiled executable under a CFS CPU quota, as Kubernetes applies `resources.limits.cpu`: exec → first /healthz,
 * exec → POST /healthcheck/fail from the hook, and idle CPU per minute. Part of `npm run bench`; alone:
 * `bun bench/cpu-quota.ts <executable>`. Needs a writable cgroup (v1 `cpu` or v2 with the cpu controller);
 * elsewhere it says why in one line and measures nothing.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, rawRequest } from "../test/support/clients.ts";
import type { FakeEnvoy } from "../test/support/fake-envoy.ts";
import { spawnAsContainer } from "./spawn.ts";

const PERIOD_US = 100_000;
const CLOCK_TICKS_PER_SECOND = 100;

/** A cgroup whose CPU quota can be set, and how to put a process in it. */
interface QuotaGroup {
  dir: string;
  setMillicores(millicores: number): void;
  remove(): void;
}

/** Makes a cgroup under the v2 root or the v1 `cpu` hierarchy; throws with the reason when neither is writable. */
function makeQuotaGroup(name: string): QuotaGroup {
  const v2 = "/sys/fs/cgroup";
  if (existsSync(join(v2, "cgroup.controllers")) && readFileSync(join(v2, "cgroup.controllers"), "utf8").includes("cpu")) {
    writeFileSync(join(v2, "cgroup.subtree_control"), "+cpu");
    const dir = join(v2, name);
    mkdirSync(dir);
    return {
      dir,
      setMillicores: (m) => writeFileSync(join(dir, "cpu.max"), `${(m * PERIOD_US) / 1000} ${PERIOD_US}`),
      remove: () => rmdirSync(dir),
    };
  }
  const v1 = "/sys/fs/cgroup/cpu";
  if (!existsSync(join(v1, "cpu.cfs_quota_us"))) throw new Error("no cgroup v2 cpu controller and no cgroup v1 cpu hierarchy");
  const dir = join(v1, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "cpu.cfs_period_us"), String(PERIOD_US));
  return {
    dir,
    setMillicores: (m) => writeFileSync(join(dir, "cpu.cfs_quota_us"), String((m * PERIOD_US) / 1000)),
    remove: () => rmdirSync(dir),
  };
}

/** Spawns a command already inside the cgroup: a shell moves itself in, then becomes the command. */
function spawnInGroup(group: QuotaGroup, argv: string[]) {
  return spawnAsContainer(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group.dir, ...argv]);
}

/** Starts the sidecar inside the cgroup and waits for its first /healthz 200; `readyMs` is how long that took. */
async function startSidecarInGroup(group: QuotaGroup, binary: string, fake: FakeEnvoy) {
  const port = freePort();
  const started = performance.now();
  const argv = [binary, "shutdown-manager", "--serve-address", "127.0.0.1", "--serve-port", String(port)];
  const proc = spawnInGroup(group, [...argv, "--admin-address", fake.adminAddress, "--log-level", "error", "--ready-file", ""]);
  while (!(await rawRequest(port, "GET /healthz HTTP/1.1").catch(() => "")).startsWith("HTTP/1.1 200")) await Bun.sleep(1);
  return Object.assign(proc, { readyMs: performance.now() - started });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** CPU time a process has used, in milliseconds (user + system, from /proc). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

export interface QuotaFigures {
  millicores: number;
  healthzMs: number;
  failPostMs: number;
}

export interface CpuQuotaResult {
  skipped?: string;
  quotas: QuotaFigures[];
  idleCpuMsPerMinute?: number;
}

/** Measures the executable under each quota (median of `runs`), and its idle CPU over `idleSeconds`. */
export async function measureUnderCpuQuota(
  binary: string,
  fake: FakeEnvoy,
  { millicores = [50, 100, 200], runs = 5, idleSeconds = 30 } = {},
): Promise<CpuQuotaResult> {
  let group: QuotaGroup;
  try {
    group = makeQuotaGroup(`esm-bench-${process.pid}`);
  } catch (error) {
    return { skipped: `CPU quota section skipped: ${(error as Error).message}`, quotas: [] };
  }
  try {
    const quotas: QuotaFigures[] = [];
    for (const m of millicores) {
      group.setMillicores(m);
      const healthz: number[] = [];
      const failPost: number[] = [];
      for (let run = 0; run < runs; run++) {
        const sidecar = await startSidecarInGroup(group, binary, fake);
        healthz.push(sidecar.readyMs);
        sidecar.kill("SIGKILL");
        await sidecar.exited;

        fake.restart({ "0.0.0.0_8080": 1 });
        const before = fake.calls("/healthcheck/fail").length;
        const spawnedAt = Date.now();
        const hook = spawnInGroup(group, [
          binary,
          "shutdown",
          "--serve-port",
          "0",
          "--admin-address",
          fake.adminAddress,
          "--check-delay",
          "1h",
          "--ready-file",
          "",
        ]);
        while (fake.calls("/healthcheck/fail").length === before) await Bun.sleep(1);
        failPost.push((fake.calls("/healthcheck/fail").at(-1)?.at ?? 0) - spawnedAt);
        hook.kill("SIGKILL");
        await hook.exited;
      }
      quotas.push({ millicores: m, healthzMs: median(healthz), failPostMs: median(failPost) });
    }
    // Idle CPU: a sidecar that has started and checked Envoy, doing nothing for `idleSeconds`.
    group.setMillicores(millicores[0] ?? 50);
    const idle = await startSidecarInGroup(group, binary, fake);
    await Bun.sleep(2000);
    const before = cpuMs(idle.pid);
    await Bun.sleep(idleSeconds * 1000);
    const idleCpuMsPerMinute = ((cpuMs(idle.pid) - before) * 60) / idleSeconds;
    idle.kill("SIGKILL");
    await idle.exited;
    return { quotas, idleCpuMsPerMinute };
  } finally {
    group.remove();
  }
}

/** The section's lines for the benchmark's output. */
export function formatCpuQuota(result: CpuQuotaResult): string {
  if (result.skipped) return result.skipped;
  const lines = [
    "| CPU limit | exec → first /healthz 200 | shutdown: exec → POST /healthcheck/fail |",
    "| --- | --- | --- |",
    ...result.quotas.map((q) => `| ${q.millicores}m | ${q.healthzMs.toFixed(0)} ms | ${q.failPostMs.toFixed(0)} ms |`),
  ];
  return `${lines.join("\n")}\n\nidle CPU: ${result.idleCpuMsPerMinute?.toFixed(1)} ms per minute (${(((result.idleCpuMsPerMinute ?? 0) / 60_000) * 1000).toFixed(3)} millicores)`;
}

if (import.meta.main) {
  const { startFakeEnvoy } = await import("../test/support/fake-envoy.ts");
  const binary = process.argv[2];
  if (!binary) throw new Error("usage: bun bench/cpu-quota.ts <executable>");
  const fake = await startFakeEnvoy({ connections: 1 });
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
  console.log(formatCpuQuota(await measureUnderCpuQuota(binary, fake, { idleSeconds })));
  await fake.stop();
}
