/** The wiring checks: each reads one pod template and names what would make a rollout drop traffic. */
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import type { AdminAddress } from "../envoy/address.ts";
import {
  bytes,
  commandLine,
  environment,
  type Loose,
  millicores,
  type PodContainer,
  type PodTemplate,
  resolvePort,
  runningContainers,
} from "./pods.ts";

export type Severity = "error" | "warning";

/** One finding: a stable id, how bad, where, what, and the one-line fix. */
export interface Finding {
  id: string;
  severity: Severity;
  object: string;
  container: string;
  message: string;
  fix: string;
}

/** This program's settings as a command line in a container gives them; each role reads the groups it has. */
export interface ProgramSettings {
  admin: { address: AdminAddress };
  drain: DrainSettings;
  handoff: { servePort: number; readyFile: string | undefined; shutdownToken: string | undefined };
  sidecar?: { hookWaitMs: number };
  supervisor?: { stopTimeoutMs: number };
}

/** This program's command line, read exactly as the program reads it at start. */
export interface ProgramLine {
  /** As typed after the program's name: `shutdown-manager`, `envoy shutdown`, `run`, … */
  command: string;
  role: "sidecar" | "hook" | "supervisor";
  /** Contour's or Envoy Gateway's command line: their hook leads the drain. */
  dialect: boolean;
  settings?: ProgramSettings;
  /** The one line the program would exit 2 with. */
  error?: string;
}

/** Reads a command line (and its environment) as this program would; undefined when it is not this program. */
export type ProgramReader = (argv: string[], env: Record<string, string>) => ProgramLine | undefined;

/** Kubernetes' grace period when a pod sets none. */
const DEFAULT_GRACE_S = 30;
/** Time to leave between the longest drain and the grace period: the hook's start, Envoy's exit, clock skew. */
const MARGIN_MS = 5000;
/**
 * The figures `npm run bench` measured (README, "Cost and speed"): below these limits the hook reaches Envoy late
 * and the sidecar's memory has no room for a pod's /shutdown waiters.
 */
const MEASURED = {
  cpuMillicores: 100,
  cpuNote: "the hook reached /healthcheck/fail 0.2 to 0.7 s after exec at 50m and 0.1 to 0.4 s at 100m, against 0.07 to 0.2 s at 200m",
  memoryBytes: 64 * 2 ** 20,
  memoryNote: "the sidecar holds 31 to 38 MiB idle and about 5 MiB more with 1,000 /shutdown waiters",
};

/** The pod's parts the checks look at, found once. */
interface Wiring {
  pod: PodTemplate;
  containers: PodContainer[];
  manager: PodContainer;
  line: ProgramLine;
  settings: ProgramSettings;
  envoy: PodContainer | undefined;
  /** The manager container's own preStop exec of the hook, read. */
  hook: ProgramLine | undefined;
  unknownEnv: string[];
}

const ENVOY_IMAGE = /(^|\/)envoy(:|@|$)/;

/** The Envoy container of a pod: named envoy, or running Envoy's image, other than the shutdown manager. */
function findEnvoy(containers: PodContainer[], manager: PodContainer): PodContainer | undefined {
  const others = containers.filter((container) => container !== manager);
  return (
    others.find((container) => container.name === "envoy") ??
    others.find((container) => ENVOY_IMAGE.test(String(container.spec.image ?? "")) || commandLine(container.spec)[0] === "envoy")
  );
}

/** The shutdown manager of a pod and how it is wired, or the findings that say it cannot run at all. */
function findWiring(pod: PodTemplate, read: ProgramReader): { wiring?: Wiring; findings: Finding[] } {
  const containers = runningContainers(pod.spec);
  for (const manager of containers) {
    const { env, unknown } = environment(manager.spec);
    const line = read(commandLine(manager.spec), env);
    if (!line || line.role === "hook") continue;
    if (!line.settings)
      return {
        findings: [
          finding(
            "flags",
            "error",
            pod,
            manager,
            `${line.command} would exit 2 at start: ${line.error}`,
            "fix the flag or variable it names",
          ),
        ],
      };
    const exec = manager.spec.lifecycle?.preStop?.exec?.command;
    const hook = Array.isArray(exec) ? read(exec.map(String), env) : undefined;
    const envoy = line.role === "supervisor" ? manager : findEnvoy(containers, manager);
    return { wiring: { pod, containers, manager, line, settings: line.settings, envoy, hook, unknownEnv: unknown }, findings: [] };
  }
  return { findings: [] };
}

function finding(
  id: string,
  severity: Severity,
  pod: PodTemplate,
  container: PodContainer | undefined,
  message: string,
  fix: string,
): Finding {
  return { id, severity, object: pod.object, container: container?.name ?? "-", message, fix };
}

/** The longest a drain may take with these settings, when it has a deadline; else the least it takes. */
function drainBound(drain: DrainSettings): { ms: number; bounded: boolean } {
  if (drain.drainTimeoutMs > 0) return { ms: drain.drainTimeoutMs, bounded: true };
  return { ms: drain.drainDelayMs + drain.checkDelayMs + Math.max(drain.minDrainMs, drain.quietPeriodMs), bounded: false };
}

/** The sibling httpGet wiring: a sidecar with no hook of its own, which kubelet signals as Envoy's hook starts. */
const siblingHttpGet = (w: Wiring) => w.line.role === "sidecar" && !w.manager.nativeSidecar && !w.hook && !w.line.dialect;

/** The grace period against the longest drain: kubelet kills Envoy mid-drain when it is shorter. */
function checkGracePeriod(w: Wiring): Finding[] {
  const graceMs = (Number(w.pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_S) || 0) * 1000;
  const drains = [w.settings.drain, ...(w.hook?.settings ? [w.hook.settings.drain] : [])];
  // After the drain, `run` gives Envoy --stop-timeout; before it, a sibling sidecar signalled first serves --hook-wait.
  const stopMs = (w.settings.supervisor?.stopTimeoutMs ?? 0) + (siblingHttpGet(w) ? (w.settings.sidecar?.hookWaitMs ?? 0) : 0);
  const findings: Finding[] = [];
  const grace = `terminationGracePeriodSeconds ${graceMs / 1000}${w.pod.spec.terminationGracePeriodSeconds === undefined ? " (Kubernetes' default)" : ""}`;
  for (const drain of drains) {
    const { ms, bounded } = drainBound(drain);
    const needed = ms + stopMs + MARGIN_MS;
    if (needed <= graceMs) continue;
    const [what, fix] = bounded
      ? [
          `--drain-timeout ${formatDuration(drain.drainTimeoutMs)}${stopMs ? ` plus ${formatDuration(stopMs)} (--stop-timeout or --hook-wait)` : ""} and a ${MARGIN_MS / 1000} s margin: kubelet kills Envoy mid-drain`,
          `set terminationGracePeriodSeconds to at least ${Math.ceil(needed / 1000)}, or shorten --drain-timeout`,
        ]
      : [
          `the least the drain takes (${formatDuration(ms)}: delays, minimum, quiet period): every drain is cut short`,
          `set terminationGracePeriodSeconds past ${Math.ceil(needed / 1000)} and give the drain a --drain-timeout under it`,
        ];
    findings.push(finding("grace-period", "error", w.pod, w.manager, `${grace} is shorter than ${what}`, fix));
  }
  if (w.settings.drain.drainTimeoutMs === 0 && !w.line.dialect)
    findings.push(
      finding(
        "no-drain-timeout",
        "warning",
        w.pod,
        w.manager,
        `no --drain-timeout: the drain ends only when kubelet's grace period (${graceMs / 1000} s) kills the pod, with no time-out logged`,
        "set --drain-timeout a few seconds under terminationGracePeriodSeconds",
      ),
    );
  return findings;
}

/** Envoy's preStop hook reaches the drain: an httpGet to the sidecar's port and /shutdown (with the token), or an exec of the program. */
function checkPreStop(w: Wiring, read: ProgramReader): Finding[] {
  if (w.line.role === "supervisor") return [];
  if (!w.envoy)
    return [
      finding(
        "no-envoy",
        "error",
        w.pod,
        w.manager,
        "no Envoy container found beside the shutdown manager",
        "name Envoy's container `envoy`",
      ),
    ];
  const preStop = w.envoy.spec.lifecycle?.preStop;
  const { servePort, shutdownToken } = w.settings.handoff;
  if (!preStop)
    return [
      finding(
        "prestop-missing",
        "error",
        w.pod,
        w.envoy,
        "Envoy has no preStop hook: kubelet sends it SIGTERM at once, and it closes every connection undrained",
        `add lifecycle.preStop.httpGet { path: /shutdown, port: ${servePort} } to Envoy's container`,
      ),
    ];
  if (preStop.exec) {
    const hook = read((preStop.exec.command ?? []).map(String), environment(w.envoy.spec).env);
    const waitsForFile = (preStop.exec.command ?? []).join(" ").includes(w.settings.handoff.readyFile ?? "\0");
    if (hook?.role === "hook" || waitsForFile) return [];
    return [
      finding(
        "prestop-not-draining",
        "error",
        w.pod,
        w.envoy,
        "Envoy's preStop exec neither runs this program's `shutdown` nor waits for the ready file",
        `use lifecycle.preStop.httpGet { path: /shutdown, port: ${servePort} }`,
      ),
    ];
  }
  const get = preStop.httpGet;
  if (!get) return [];
  const findings: Finding[] = [];
  const port = resolvePort(get.port, w.containers);
  if (port !== servePort)
    findings.push(
      finding(
        "prestop-port",
        "error",
        w.pod,
        w.envoy,
        `Envoy's preStop httpGet calls port ${String(get.port)}${port !== undefined && String(port) !== String(get.port) ? ` (${port})` : ""}, but the sidecar serves on ${servePort}`,
        `set lifecycle.preStop.httpGet.port to ${servePort}`,
      ),
    );
  if (get.path !== "/shutdown" && get.path !== "/shutdown/ready")
    findings.push(
      finding(
        "prestop-path",
        "error",
        w.pod,
        w.envoy,
        `Envoy's preStop httpGet calls ${JSON.stringify(get.path ?? "/")}: the sidecar answers 404 and nothing drains`,
        "set lifecycle.preStop.httpGet.path to /shutdown",
      ),
    );
  const authorization = (get.httpHeaders ?? []).find((header: Loose) => String(header?.name).toLowerCase() === "authorization");
  const tokenSet = shutdownToken !== undefined || w.unknownEnv.includes("ENVOY_SHUTDOWN_SHUTDOWN_TOKEN");
  if (tokenSet && !authorization)
    findings.push(
      finding(
        "prestop-token",
        "error",
        w.pod,
        w.envoy,
        "the sidecar requires a bearer token for /shutdown, but Envoy's preStop httpGet sends no Authorization header: it gets 401 and nothing drains",
        "add httpHeaders [{ name: Authorization, value: Bearer <token> }] to the hook",
      ),
    );
  if (siblingHttpGet(w) && (w.settings.sidecar?.hookWaitMs ?? 0) === 0)
    findings.push(
      finding(
        "hook-wait-zero",
        "error",
        w.pod,
        w.manager,
        "the sidecar has no hook of its own, so kubelet signals it while Envoy's httpGet is on its way, and --hook-wait 0s lets it exit first: Envoy is then stopped undrained",
        "leave --hook-wait at its default (5s), or make the sidecar a native sidecar",
      ),
    );
  return findings;
}

/** The mounts of a container by path, and whether each is read-only. */
const mounts = (container: PodContainer): { path: string; name: string; readOnly: boolean }[] =>
  (container.spec.volumeMounts ?? []).map((mount: Loose) => ({
    path: String(mount.mountPath).replace(/\/$/, ""),
    name: String(mount.name),
    readOnly: mount.readOnly === true,
  }));

/** The mount a path lives on, the deepest one. */
function mountOf(container: PodContainer, path: string) {
  return mounts(container)
    .filter((mount) => path === mount.path || path.startsWith(`${mount.path}/`))
    .sort((a, b) => b.path.length - a.path.length)[0];
}

/** The ready file: the hook and the sidecar name the same one, on a path the hook can write. */
function checkReadyFile(w: Wiring): Finding[] {
  const findings: Finding[] = [];
  const sidecarFile = w.settings.handoff.readyFile;
  const hookFile = w.hook?.settings?.handoff.readyFile;
  if (w.hook?.settings && hookFile !== sidecarFile)
    findings.push(
      finding(
        "ready-file-mismatch",
        "error",
        w.pod,
        w.manager,
        `the hook writes ${JSON.stringify(hookFile ?? "no ready file")} but the sidecar watches ${JSON.stringify(sidecarFile ?? "none")}: a drain finished by the hook never releases Envoy's /shutdown`,
        "give both the same --ready-file",
      ),
    );
  // The hook writes the file in the shutdown manager's container.
  const written = hookFile;
  if (written === undefined) return findings;
  const mount = mountOf(w.manager, written.slice(0, written.lastIndexOf("/")) || "/");
  const readOnlyRoot = w.manager.spec.securityContext?.readOnlyRootFilesystem === true;
  if (mount?.readOnly || (!mount && readOnlyRoot))
    findings.push(
      finding(
        "ready-file-read-only",
        "error",
        w.pod,
        w.manager,
        `the ready file ${written} is on a ${mount ? `read-only mount (${mount.name})` : "read-only root filesystem"}: the hook refuses it before the drain`,
        "put the ready file on a writable emptyDir mounted in this container",
      ),
    );
  return findings;
}

/** The admin address: a Unix socket both containers mount; a TCP address that fits the pod's network. */
function checkAdminAddress(w: Wiring): Finding[] {
  const { address } = w.settings.admin;
  if (address.socketPath && w.envoy && w.envoy !== w.manager) {
    const directory = address.socketPath.slice(0, address.socketPath.lastIndexOf("/")) || "/";
    const managerMount = mountOf(w.manager, directory);
    const envoyMount = mountOf(w.envoy, directory);
    if (!managerMount || !envoyMount || managerMount.name !== envoyMount.name)
      return [
        finding(
          "admin-socket-volume",
          "error",
          w.pod,
          w.manager,
          `the admin socket ${address.socketPath} is not on a volume both Envoy and the shutdown manager mount: the drain cannot reach Envoy`,
          `mount one emptyDir at ${directory} in both containers`,
        ),
      ];
  }
  const host = address.socketPath ? undefined : new URL(address.baseURL).hostname;
  if (w.pod.spec.hostNetwork === true && host !== undefined && !["127.0.0.1", "localhost", "[::1]"].includes(host))
    return [
      finding(
        "admin-host-network",
        "warning",
        w.pod,
        w.manager,
        `with hostNetwork, the admin address ${address.display} is on the node's network: Envoy's admin API would be open to it`,
        "bind Envoy's admin listener and --admin-address to 127.0.0.1",
      ),
    ];
  return [];
}

/** Probes: none on Envoy that fails during a drain; the sidecar's liveness lenient enough for a busy node. */
function checkProbes(w: Wiring): Finding[] {
  const findings: Finding[] = [];
  const liveness = w.envoy && w.envoy !== w.manager ? w.envoy.spec.livenessProbe?.httpGet : undefined;
  const readiness = w.envoy?.spec.readinessProbe?.httpGet;
  if (
    liveness &&
    (liveness.path === "/ready" || (readiness && liveness.path === readiness.path && String(liveness.port) === String(readiness.port)))
  )
    findings.push(
      finding(
        "envoy-liveness",
        "error",
        w.pod,
        w.envoy,
        `Envoy's liveness probe calls ${liveness.path}, which fails as soon as the drain starts: kubelet restarts Envoy mid-drain`,
        "probe Envoy's liveness elsewhere (a TCP check on a listener), or not at all",
      ),
    );
  const probe = w.manager.spec.livenessProbe;
  if (probe && w.line.role === "sidecar") {
    const toleratedS = Number(probe.periodSeconds ?? 10) * Number(probe.failureThreshold ?? 3);
    if (toleratedS < 30 || Number(probe.timeoutSeconds ?? 1) < 1)
      findings.push(
        finding(
          "sidecar-liveness",
          "warning",
          w.pod,
          w.manager,
          `the shutdown manager's liveness probe gives up after ${toleratedS} s: a busy node's slow answers restart it`,
          "use periodSeconds 10, failureThreshold 3, timeoutSeconds 1 or more",
        ),
      );
  }
  return findings;
}

/** CPU and memory limits under the measured figures. */
function checkResources(w: Wiring): Finding[] {
  const limits = w.manager.spec.resources?.limits ?? {};
  const findings: Finding[] = [];
  const cpu = millicores(limits.cpu);
  if (cpu !== undefined && cpu < MEASURED.cpuMillicores)
    findings.push(
      finding(
        "cpu-limit",
        "warning",
        w.pod,
        w.manager,
        `a CPU limit of ${limits.cpu} slows the hook: ${MEASURED.cpuNote}`,
        `raise resources.limits.cpu to ${MEASURED.cpuMillicores}m or more`,
      ),
    );
  const memory = bytes(limits.memory);
  if (memory !== undefined && memory < MEASURED.memoryBytes && w.line.role !== "supervisor")
    findings.push(
      finding(
        "memory-limit",
        "warning",
        w.pod,
        w.manager,
        `a memory limit of ${limits.memory} leaves no room: ${MEASURED.memoryNote}`,
        "raise resources.limits.memory to 64Mi or more",
      ),
    );
  return findings;
}

/** Settings read from sources this check cannot see (a secret, a config map): said, not guessed. */
function checkUnknownEnv(w: Wiring): Finding[] {
  return w.unknownEnv
    .filter((name) => name.startsWith("ENVOY_SHUTDOWN_") && name !== "ENVOY_SHUTDOWN_SHUTDOWN_TOKEN")
    .map((name) =>
      finding(
        "env-unknown",
        "warning",
        w.pod,
        w.manager,
        `${name} comes from a valueFrom: its value is not checked`,
        "check that value by hand",
      ),
    );
}

/** Every finding for the pod templates, and whether any pod runs the shutdown manager at all. */
export function checkPods(pods: PodTemplate[], read: ProgramReader): { findings: Finding[]; wired: number } {
  const findings: Finding[] = [];
  let wired = 0;
  for (const pod of pods) {
    const found = findWiring(pod, read);
    findings.push(...found.findings);
    if (found.findings.length > 0) wired++;
    const w = found.wiring;
    if (!w) continue;
    wired++;
    if (w.hook && !w.hook.settings)
      findings.push(
        finding(
          "flags",
          "error",
          pod,
          w.manager,
          `the preStop hook \`${w.hook.command}\` would exit 2: ${w.hook.error}`,
          "fix the flag it names",
        ),
      );
    findings.push(
      ...checkGracePeriod(w),
      ...checkPreStop(w, read),
      ...checkReadyFile(w),
      ...checkAdminAddress(w),
      ...checkProbes(w),
      ...checkResources(w),
      ...checkUnknownEnv(w),
    );
  }
  return { findings, wired };
}
