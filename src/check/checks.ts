/** The wiring checks: each reads one pod template and names what would make a rollout drop traffic. */
import { leastDrainMs } from "../cli/command.ts";
import { bearerToken } from "../drain/handoff.ts";
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import type { AdminAddress } from "../envoy/address.ts";
import { isLoopbackOnly } from "../sidecar/serve-address.ts";
import {
  commandLine,
  type Environment,
  environment,
  type Loose,
  listOf,
  objectsIn,
  type PodContainer,
  type PodTemplate,
  podContainers,
  quantity,
  resolvePort,
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
  sidecar?: { hookWaitMs: number; serveAddress: string };
  supervisor?: { stopTimeoutMs: number };
}

/** One line the program would exit 2 with, and how to fix it. */
export interface LineError {
  message: string;
  fix: string;
}

/** This program's command line, read exactly as the program reads it at start. */
export interface ProgramLine {
  /** As typed after the program's name: `shutdown-manager`, `envoy shutdown`, `run`, … */
  command: string;
  /** The executable as the line starts it. */
  program: string;
  role: "sidecar" | "hook" | "supervisor";
  /** Contour's or Envoy Gateway's command line: their hook leads the drain. */
  dialect: boolean;
  /** Whose command line, in messages: "Contour" or "Envoy Gateway". */
  tool?: string;
  /** The settings from every flag and variable the program would take, defaults in place of those it would refuse. */
  settings?: ProgramSettings;
  /** What the program would exit 2 with: every such flag and variable, not only the first it meets. */
  errors: LineError[];
  /** The settings (`drain.drainTimeoutMs`) whose value is not known: refused, or from a source this check cannot see. */
  unread: string[];
  /** The settings given on the command line itself. */
  given: string[];
  /** A setting's flag on this command line (`--ready-timeout` for Envoy Gateway's deadline). */
  flag: (setting: string) => string;
  /** Why no drain can complete on these settings, when none can. */
  contradiction?: string;
  /** The environment variables the command reads (ENVOY_SHUTDOWN_DRAIN_TIMEOUT for --drain-timeout). */
  variables: string[];
}

/** The names this program is started by: its own, and Contour's and Envoy Gateway's (the image links them). */
export const PROGRAM_NAMES: ReadonlySet<string> = new Set(["envoy-shutdown-manager", "contour", "envoy-gateway"]);

/** Reads a command line (with its environment and the variables whose values are unknown) as this program would; undefined when it is not this program. */
export type ProgramReader = (argv: string[], env: Record<string, string>, unknown?: string[]) => ProgramLine | undefined;

/** Kubernetes' grace period when a pod sets none. */
const DEFAULT_GRACE_S = 30;
/** Time to leave between the longest drain and the grace period: the hook's start, Envoy's exit, clock skew. */
const MARGIN_MS = 5000;
/**
 * The figures `npm run bench` measured (docs/benchmarks.md): below these limits the hook reaches Envoy late
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
  /** Envoy's preStop exec, read, when it runs this program's hook. */
  envoyHook: ProgramLine | undefined;
  environment: Environment;
  /** Command-line words whose values come from variables this check cannot see. */
  unknownArgs: string[];
}

const ENVOY_IMAGE = /(^|\/)envoy(:|@|$)/;

/** The Envoy container of a pod: named envoy, or running Envoy's image, other than the shutdown manager. */
function findEnvoy(containers: PodContainer[], manager: PodContainer): PodContainer | undefined {
  const others = containers.filter((container) => container !== manager && container.kind !== "init");
  return (
    others.find((container) => container.name === "envoy") ??
    others.find(
      (container) =>
        ENVOY_IMAGE.test(String(container.spec.image ?? "")) || String(listOf(container.spec.command)[0] ?? "").endsWith("envoy"),
    )
  );
}

/** A container's preStop exec, read as the program would: hooks run in the container's environment, with no `$(NAME)` expansion. */
function readExecHook(container: PodContainer, read: ProgramReader): ProgramLine | undefined {
  const exec = container.spec.lifecycle?.preStop?.exec?.command;
  if (!Array.isArray(exec)) return undefined;
  const { env, unknown } = environment(container.spec);
  return read(exec.map(String), env, unknown);
}

/** The shutdown manager of a pod and how it is wired. */
function findWiring(pod: PodTemplate, read: ProgramReader): Wiring | undefined {
  const containers = podContainers(pod.spec);
  for (const manager of containers) {
    const env = environment(manager.spec);
    const { argv, unknown: unknownArgs } = commandLine(manager.spec, env);
    const line = read(argv, env.env, env.unknown);
    if (!line?.settings || line.role === "hook") continue;
    const envoy = line.role === "supervisor" ? manager : findEnvoy(containers, manager);
    const envoyExec = envoy && envoy !== manager ? readExecHook(envoy, read) : undefined;
    return {
      pod,
      containers,
      manager,
      line,
      settings: line.settings,
      envoy,
      hook: readExecHook(manager, read),
      envoyHook: envoyExec?.role === "hook" ? envoyExec : undefined,
      environment: env,
      unknownArgs,
    };
  }
  return undefined;
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

/** Whether a line's settings under these prefixes (`drain.`, `handoff.servePort`) are all known. */
const known = (line: ProgramLine | undefined, ...prefixes: string[]) =>
  !line?.unread.some((setting) => prefixes.some((prefix) => setting.startsWith(prefix)));

/** The hooks of this program in the pod: the manager's own preStop exec, and Envoy's. */
const hooksOf = (w: Wiring) => [w.hook, w.envoyHook].filter((hook): hook is ProgramLine => hook?.role === "hook");

/** Every flag and variable the program (or a hook) would refuse at start, each with its fix. */
function checkFlags(w: Wiring): Finding[] {
  const lines: [ProgramLine | undefined, string, PodContainer | undefined][] = [
    [w.line, `${w.line.command} would exit 2 at start`, w.manager],
    [w.hook, `the preStop hook \`${w.hook?.command}\` would exit 2`, w.manager],
    [w.envoyHook, `Envoy's preStop hook \`${w.envoyHook?.command}\` would exit 2`, w.envoy],
  ];
  return lines.flatMap(([line, what, container]) =>
    (line?.errors ?? []).map((error) => finding("flags", "error", w.pod, container, `${what}: ${error.message}`, error.fix)),
  );
}

/** Settings under which no drain can complete, on the lines that govern a drain: Contour's and Envoy Gateway's hooks. */
function checkContradictions(w: Wiring): Finding[] {
  return hooksOf(w)
    .filter((hook) => hook.dialect && hook.contradiction && known(hook, "drain."))
    .map((hook) =>
      finding(
        "drain-impossible",
        "error",
        w.pod,
        w.manager,
        `${hook.tool}'s hook \`${hook.command}\`: ${hook.contradiction}`,
        "give the drain a deadline longer than its delays, minimum and quiet period",
      ),
    );
}

/** The deadline to advise for a drain, never under what the drain needs, and the grace period that then fits it. */
function timeoutAdvice(drain: DrainSettings, graceMs: number, stopMs: number, flag: string): string {
  const least = leastDrainMs(drain);
  const fits = Math.floor((graceMs - stopMs - MARGIN_MS) / 1000) * 1000;
  if (fits > least)
    return `set ${flag} to ${formatDuration(fits)} (what terminationGracePeriodSeconds leaves after ${stopMs ? "--stop-timeout or --hook-wait and " : ""}a ${MARGIN_MS / 1000} s margin)`;
  const timeoutMs = Math.ceil((least + drain.checkIntervalMs) / 1000) * 1000;
  return `set ${flag} to ${formatDuration(timeoutMs)} (the drain needs ${formatDuration(least)}) and terminationGracePeriodSeconds to at least ${Math.ceil((timeoutMs + stopMs + MARGIN_MS) / 1000)}`;
}

/** The sibling httpGet wiring: a sidecar with no hook of its own, which kubelet signals as Envoy's hook starts. */
const siblingHttpGet = (w: Wiring) => w.line.role === "sidecar" && w.manager.kind === "regular" && !w.hook && !w.line.dialect;

/** The grace period against the longest drain: kubelet kills Envoy mid-drain when it is shorter. */
function checkGracePeriod(w: Wiring): Finding[] {
  // A null is unset, as the API server reads it; a negative value it takes as 1 s (kubernetes/kubernetes#115606).
  const written = w.pod.spec.terminationGracePeriodSeconds ?? undefined;
  if (written !== undefined && !Number.isSafeInteger(written))
    return [
      finding(
        "grace-period",
        "error",
        w.pod,
        w.manager,
        `terminationGracePeriodSeconds ${typeof written === "number" ? written : JSON.stringify(written)} is not a whole number of seconds: the API server rejects the pod`,
        "write the grace period as a whole number of seconds, longer than the drain",
      ),
    ];
  const seconds = Number(written ?? DEFAULT_GRACE_S);
  const graceMs = (seconds < 0 ? 1 : seconds) * 1000;
  // The governing drain: the sidecar's on this program's lines (a hook only waits, bounded by its own deadline), the hook's on theirs.
  const governing = w.line.dialect ? hooksOf(w).filter((hook) => hook.dialect) : [w.line, ...hooksOf(w).filter((hook) => !hook.dialect)];
  const lines = governing.filter((line) => line.settings && known(line, "drain."));
  // After the drain, `run` gives Envoy --stop-timeout; before it, a sibling sidecar signalled first serves --hook-wait.
  const stopMs = (w.settings.supervisor?.stopTimeoutMs ?? 0) + (siblingHttpGet(w) ? (w.settings.sidecar?.hookWaitMs ?? 0) : 0);
  if (!known(w.line, "supervisor.", "sidecar.")) return [];
  const findings: Finding[] = [];
  const taken = written === undefined ? " (Kubernetes' default)" : seconds < 0 ? " (taken as 1 s)" : "";
  const grace = `terminationGracePeriodSeconds ${seconds}${taken}`;
  for (const line of lines) {
    const drain = (line.settings as ProgramSettings).drain;
    const flag = line.flag("drain.drainTimeoutMs");
    // A joining hook of this program's own is bounded by its deadline only; without one it waits for the sidecar's.
    if (line !== w.line && !line.dialect && drain.drainTimeoutMs === 0) continue;
    const bounded = drain.drainTimeoutMs > 0;
    const ms = bounded ? drain.drainTimeoutMs : leastDrainMs(drain);
    const needed = ms + stopMs + MARGIN_MS;
    if (needed <= graceMs) continue;
    const fix = bounded
      ? `set terminationGracePeriodSeconds to at least ${Math.ceil(needed / 1000)}${leastDrainMs(drain) < graceMs - stopMs - MARGIN_MS ? `, or ${timeoutAdvice(drain, graceMs, stopMs, flag)}` : ""}`
      : timeoutAdvice(drain, graceMs, stopMs, flag);
    const what = bounded
      ? `${flag} ${formatDuration(drain.drainTimeoutMs)}${stopMs ? ` plus ${formatDuration(stopMs)} (--stop-timeout or --hook-wait)` : ""} and a ${MARGIN_MS / 1000} s margin: kubelet kills Envoy mid-drain`
      : `the least the drain takes (${formatDuration(ms)}: delays, minimum, quiet period): every drain is cut short`;
    findings.push(finding("grace-period", "error", w.pod, w.manager, `${grace} is shorter than ${what}`, fix));
  }
  if (!w.line.dialect && known(w.line, "drain.") && w.settings.drain.drainTimeoutMs === 0)
    findings.push(
      finding(
        "no-drain-timeout",
        "warning",
        w.pod,
        w.manager,
        `no --drain-timeout: the drain ends only when kubelet's grace period (${graceMs / 1000} s) kills the pod, with no time-out logged`,
        timeoutAdvice(w.settings.drain, graceMs, stopMs, "--drain-timeout"),
      ),
    );
  return findings;
}

/** Envoy's preStop httpGet, read as kubelet sends it: it must reach the sidecar's /shutdown, in plain HTTP, with the token. */
function checkHttpGet(w: Wiring, envoy: PodContainer, get: Loose): Finding[] {
  const findings: Finding[] = [];
  const { servePort, shutdownToken } = w.settings.handoff;
  const add = (id: string, message: string, fix: string) => findings.push(finding(id, "error", w.pod, envoy, message, fix));
  const port = resolvePort(get.port, envoy);
  if (port === undefined && known(w.line, "handoff.servePort"))
    add(
      "prestop-port",
      `Envoy's preStop httpGet calls port ${JSON.stringify(get.port)}, which Envoy's container does not declare: kubelet looks a hook's named port up in the hook's own container only, fails the hook, and stops Envoy undrained`,
      `set lifecycle.preStop.httpGet.port to ${servePort}`,
    );
  else if (port !== servePort && known(w.line, "handoff.servePort"))
    add(
      "prestop-port",
      `Envoy's preStop httpGet calls port ${String(get.port)}${String(port) !== String(get.port) ? ` (${port})` : ""}, but the sidecar serves on ${servePort}`,
      `set lifecycle.preStop.httpGet.port to ${servePort}`,
    );
  const tokenSet = shutdownToken !== undefined || !known(w.line, "handoff.shutdownToken");
  // kubelet retries an HTTPS hook that got a plain HTTP answer over HTTP, without its Authorization header.
  if (String(get.scheme ?? "HTTP").toUpperCase() !== "HTTP")
    findings.push(
      finding(
        "prestop-scheme",
        tokenSet ? "error" : "warning",
        w.pod,
        envoy,
        `Envoy's preStop httpGet uses scheme ${String(get.scheme)}, but the sidecar serves plain HTTP: ${tokenSet ? "kubelet's retry over HTTP drops the Authorization header, so it gets 401 and nothing drains" : "it drains only through kubelet's retry over HTTP, which logs a warning event each time"}`,
        "remove lifecycle.preStop.httpGet.scheme (HTTP is the default)",
      ),
    );
  const host = typeof get.host === "string" ? get.host : "";
  const loopbackHook = w.pod.spec.hostNetwork === true && isLoopbackOnly(host);
  const serveAddress = w.settings.sidecar?.serveAddress ?? "";
  if (isLoopbackOnly(serveAddress) && !loopbackHook && known(w.line, "sidecar.serveAddress"))
    add(
      "prestop-unreachable",
      `the sidecar listens on ${serveAddress} only, but kubelet sends Envoy's httpGet hook from outside the pod, to its IP: the connection is refused and Envoy is stopped undrained`,
      "let the sidecar listen on the pod's addresses (--serve-address 0.0.0.0, the default), or wire the drain with exec hooks as examples/envoy-daemonset-hostnetwork.yaml does",
    );
  if (host !== "" && !loopbackHook)
    add(
      "prestop-host",
      `Envoy's preStop httpGet calls host ${host}: kubelet connects there rather than to the pod, where the sidecar is`,
      "remove lifecycle.preStop.httpGet.host (the pod's IP is the default)",
    );
  // kubelet sends the path with any query string; the sidecar routes on the path alone.
  const path = new URL(String(get.path ?? "/").replace(/^(?!\/)/, "/"), "http://pod").pathname;
  if (path !== "/shutdown" && path !== "/shutdown/ready")
    add(
      "prestop-path",
      `Envoy's preStop httpGet calls ${JSON.stringify(get.path ?? "/")}: the sidecar answers 404 and nothing drains`,
      "set lifecycle.preStop.httpGet.path to /shutdown",
    );
  const authorization = objectsIn(get.httpHeaders).find((header: Loose) => String(header?.name).toLowerCase() === "authorization");
  const sent = authorization ? String(authorization.value ?? "") : undefined;
  const fixToken = "add httpHeaders [{ name: Authorization, value: Bearer <token> }] to the hook, with the sidecar's token";
  if (!tokenSet) return findings;
  if (sent === undefined)
    add(
      "prestop-token",
      "the sidecar requires a bearer token for /shutdown, but Envoy's preStop httpGet sends no Authorization header: it gets 401 and nothing drains",
      fixToken,
    );
  else if (sent.includes("$("))
    add(
      "prestop-token",
      `Envoy's preStop httpGet sends Authorization ${JSON.stringify(sent)}: kubelet sends hook headers as written (it expands $(NAME) in command, args and env only), so it gets 401`,
      "write the token itself in the header",
    );
  else if (bearerToken(sent) === undefined)
    add(
      "prestop-token",
      "Envoy's preStop httpGet sends an Authorization header that is not `Bearer <token>`: the sidecar answers 401 and nothing drains",
      fixToken,
    );
  else if (shutdownToken !== undefined && bearerToken(sent) !== shutdownToken)
    add(
      "prestop-token",
      "Envoy's preStop httpGet sends a bearer token other than the sidecar's --shutdown-token: it gets 401 and nothing drains",
      "send the sidecar's token in the hook's Authorization header",
    );
  return findings;
}

/** Envoy's preStop hook reaches the drain: an httpGet to the sidecar's port and /shutdown (with the token), or an exec of the program. */
function checkPreStop(w: Wiring): Finding[] {
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
  const { servePort, readyFile } = w.settings.handoff;
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
  const findings = preStop.httpGet ? checkHttpGet(w, w.envoy, preStop.httpGet) : [];
  const waitsForFile = readyFile !== undefined && listOf(preStop.exec?.command).join(" ").includes(readyFile);
  if (!preStop.httpGet && !w.envoyHook && !(waitsForFile || !known(w.line, "handoff.readyFile")))
    findings.push(
      finding(
        "prestop-not-draining",
        "error",
        w.pod,
        w.envoy,
        `Envoy's preStop ${Object.keys(preStop).join(", ")} neither runs this program's \`shutdown\`, calls /shutdown, nor waits for the ready file: Envoy is stopped before the drain ends`,
        `use lifecycle.preStop.httpGet { path: /shutdown, port: ${servePort} }`,
      ),
    );
  if (preStop.httpGet && siblingHttpGet(w) && known(w.line, "sidecar.hookWaitMs") && (w.settings.sidecar?.hookWaitMs ?? 0) === 0)
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

/**
 * One owner per drain. On this program's lines the sidecar owns it: a hook's drain flags other than its deadline are
 * not used, and a hook that looks for the sidecar on another port drains beside it. On Contour's and Envoy Gateway's
 * lines their hook owns it: the sidecar never starts one, so it needs that hook, a deadline no shorter than the
 * hook's, and its own drain flags are not used.
 */
function checkDrainOwner(w: Wiring): Finding[] {
  if (w.line.role !== "sidecar") return [];
  const findings: Finding[] = [];
  const add = (id: string, severity: Severity, message: string, fix: string) =>
    findings.push(finding(id, severity, w.pod, w.manager, message, fix));
  const ignored = (line: ProgramLine) =>
    line.given.filter((setting) => setting.startsWith("drain.") && setting !== "drain.drainTimeoutMs").map(line.flag);
  const hooks = hooksOf(w);
  for (const hook of hooks.filter((hook) => hook.dialect !== w.line.dialect))
    add(
      "hook-mismatch",
      "error",
      `the sidecar runs ${w.line.tool ?? "this program"}'s command line but its hook \`${hook.command}\` runs ${hook.tool ?? "this program"}'s: ${w.line.dialect ? "the hook joins a sidecar that never drains" : "the hook drains Envoy beside the sidecar's own drain"}`,
      "run the sidecar and its hook on the same tool's command lines",
    );
  if (!w.line.dialect) {
    for (const hook of hooks.filter((hook) => !hook.dialect)) {
      const flags = ignored(hook);
      if (flags.length > 0)
        add(
          "ignored-flags",
          "warning",
          `the hook's ${flags.join(", ")} ${flags.length > 1 ? "are" : "is"} not used: the sidecar owns the drain, and the hook only waits for it, bounded by its --drain-timeout`,
          "give drain flags to the sidecar's command line",
        );
      const port = hook.settings?.handoff.servePort;
      if (
        port !== undefined &&
        port !== w.settings.handoff.servePort &&
        known(hook, "handoff.servePort") &&
        known(w.line, "handoff.servePort")
      )
        add(
          "hook-serve-port",
          "error",
          `the hook looks for the sidecar on port ${port}, but it serves on ${w.settings.handoff.servePort}: the hook drains Envoy on its own, beside the sidecar's drain`,
          `give the hook --serve-port=${w.settings.handoff.servePort}`,
        );
    }
    return findings;
  }
  const tool = w.line.tool ?? "";
  const own = hooks.filter((hook) => hook.dialect);
  if (own.length === 0)
    add(
      "hook-missing",
      "error",
      `${tool}'s sidecar never starts a drain: its /shutdown waits for the ready file that \`${w.line.program} envoy shutdown\` writes, and no preStop exec runs that hook${w.envoy?.spec.lifecycle?.preStop?.httpGet ? " (Envoy's httpGet only waits)" : ""}`,
      `add lifecycle.preStop.exec { command: [${w.line.program}, envoy, shutdown] } to the ${w.manager.name} container`,
    );
  const flags = ignored(w.line);
  if (flags.length > 0)
    add(
      "ignored-flags",
      "warning",
      `the sidecar's ${flags.join(", ")} ${flags.length > 1 ? "are" : "is"} not used: on ${tool}'s command lines the hook owns the drain, and the sidecar only waits for its ready file`,
      `give drain flags to \`${w.line.program} envoy shutdown\``,
    );
  const deadline = w.settings.drain.drainTimeoutMs;
  for (const hook of own) {
    const hookDeadline = hook.settings?.drain.drainTimeoutMs ?? 0;
    if (deadline > 0 && hookDeadline > deadline && known(w.line, "drain.drainTimeoutMs") && known(hook, "drain.drainTimeoutMs"))
      add(
        "sidecar-deadline",
        "error",
        `the sidecar's ${w.line.flag("drain.drainTimeoutMs")} ${formatDuration(deadline)} is shorter than the hook's ${hook.flag("drain.drainTimeoutMs")} ${formatDuration(hookDeadline)}: Envoy's /shutdown returns before the drain ends, and kubelet stops Envoy mid-drain`,
        `set ${w.line.flag("drain.drainTimeoutMs")} to at least ${formatDuration(hookDeadline)}`,
      );
  }
  return findings;
}

/** A shutdown manager in a plain init container: Kubernetes waits for it to exit before starting Envoy, and it never does. */
function checkInitContainer(w: Wiring): Finding[] {
  if (w.manager.kind !== "init") return [];
  return [
    finding(
      "init-not-sidecar",
      "error",
      w.pod,
      w.manager,
      "the shutdown manager is an init container without restartPolicy: Always: Kubernetes waits for it to exit before it starts Envoy, and it never exits, so the pod never starts",
      "set restartPolicy: Always on it (a native sidecar), or move it to containers",
    ),
  ];
}

/** The mounts of a container by path, and whether each is read-only. */
const mounts = (container: PodContainer): { path: string; name: string; readOnly: boolean }[] =>
  objectsIn(container.spec.volumeMounts).map((mount: Loose) => ({
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
  if (!known(w.line, "handoff.readyFile") || !known(w.hook, "handoff.readyFile")) return findings;
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
  if (!known(w.line, "admin.address")) return [];
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
  // Under `run` Envoy shares the supervisor's container, and so does its liveness probe.
  const liveness = w.envoy?.spec.livenessProbe?.httpGet;
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

/** CPU and memory limits under the measured figures, and limits the API server would refuse. */
function checkResources(w: Wiring): Finding[] {
  const limits = w.manager.spec.resources?.limits ?? {};
  const findings: Finding[] = [];
  const add = (id: string, message: string, fix: string) => findings.push(finding(id, "warning", w.pod, w.manager, message, fix));
  const cpu = quantity(limits.cpu);
  const memory = quantity(limits.memory);
  for (const [name, value] of [
    ["cpu", cpu],
    ["memory", memory],
  ] as const)
    if (value === "invalid")
      add(
        `${name}-limit`,
        `resources.limits.${name} ${JSON.stringify(limits[name])} is not a Kubernetes quantity: the API server refuses the pod`,
        `write it as Kubernetes does (${name === "cpu" ? "200m, 0.5, 1" : "128Mi, 134217728, 128M"})`,
      );
  if (typeof cpu === "number" && cpu * 1000 < MEASURED.cpuMillicores)
    add(
      "cpu-limit",
      `a CPU limit of ${limits.cpu} slows the hook: ${MEASURED.cpuNote}`,
      `raise resources.limits.cpu to ${MEASURED.cpuMillicores}m or more`,
    );
  if (typeof memory === "number" && memory < MEASURED.memoryBytes && w.line.role !== "supervisor")
    add(
      "memory-limit",
      `a memory limit of ${limits.memory} leaves no room: ${MEASURED.memoryNote}`,
      "raise resources.limits.memory to 64Mi or more",
    );
  return findings;
}

/** Settings read from sources this check cannot see (a Secret, a ConfigMap, an envFrom): said, not guessed. */
function checkUnknownEnv(w: Wiring): Finding[] {
  const add = (message: string, fix: string) => finding("env-unknown", "warning", w.pod, w.manager, message, fix);
  return [
    ...w.environment.unknown
      .filter((name) => name.startsWith("ENVOY_SHUTDOWN_") && name !== "ENVOY_SHUTDOWN_SHUTDOWN_TOKEN")
      .map((name) => add(`${name} comes from a valueFrom: its value is not checked`, "check that value by hand")),
    ...w.environment.envFrom.map((source) =>
      add(
        `envFrom ${source} may set ENVOY_SHUTDOWN_* variables: the verdict is on the flags and defaults, not on those values`,
        "set drain settings as flags or env values, or check that source by hand",
      ),
    ),
    ...w.unknownArgs.map((word) =>
      add(
        `the argument ${JSON.stringify(word)} takes its value from a variable this check cannot see: not checked`,
        "check that value by hand",
      ),
    ),
  ];
}

/** ENVOY_SHUTDOWN_* variables of the manager's container that none of its commands reads: misspelt or misplaced, they change nothing. */
function checkUnusedEnv(w: Wiring): Finding[] {
  const lines = [w.line, ...(w.hook ? [w.hook] : [])];
  const read = new Set(lines.flatMap((line) => line.variables));
  const names = new Set([...Object.keys(w.environment.env), ...w.environment.unknown]);
  const commands = lines.map((line) => `\`${line.command}\``).join(" and ");
  return [...names]
    .filter((name) => name.startsWith("ENVOY_SHUTDOWN_") && !read.has(name))
    .map((name) =>
      finding(
        "env-unused",
        "warning",
        w.pod,
        w.manager,
        `${name} is read by no command of this container (${commands}): it changes nothing`,
        "remove it, or write the variable the command's --help names for that flag",
      ),
    );
}

/**
 * A container whose command line names this program, or whose own preStop runs this program's hook, but cannot be
 * read as one of its lines (a wrapper such as `tini --` before it, a script, a misspelt command word): said, so a
 * shutdown manager never goes unchecked unnoticed.
 */
function checkUnreadCommands(pod: PodTemplate, w: Wiring | undefined, read: ProgramReader): Finding[] {
  return podContainers(pod.spec)
    .filter((container) => container !== w?.manager)
    .flatMap((container) => {
      const env = environment(container.spec);
      const { argv } = commandLine(container.spec, env);
      const named = argv.some((word) => word.includes("envoy-shutdown-manager")) || readExecHook(container, read)?.role === "hook";
      if (!named || read(argv, env.env, env.unknown)) return [];
      // Started by one of its own names, the program refuses such a line itself (exit 2): not only unchecked.
      const program = String(argv[0] ?? "");
      if (PROGRAM_NAMES.has(program.slice(program.lastIndexOf("/") + 1)))
        return finding(
          "unread-command",
          "error",
          pod,
          container,
          `this container starts ${program} with no command of it (${JSON.stringify(argv.slice(1).join(" "))}): it would exit 2 at start`,
          "write one of its commands: `shutdown-manager`, `run`, or `envoy shutdown-manager` on Contour's and Envoy Gateway's lines",
        );
      return finding(
        "unread-command",
        "warning",
        pod,
        container,
        "this container's command line names envoy-shutdown-manager (or its preStop runs the hook), but not as one of its command lines check can read: its wiring is not checked",
        "start it as `envoy-shutdown-manager <command> …`, directly or through `sh -c 'exec …'`",
      );
    });
}

/** The pods the input holds, wired or not, and the findings for each. */
export interface PodsChecked {
  findings: Finding[];
  /** Pods that run this program. */
  wired: number;
}

/** Every finding for the pod templates, and how many run the shutdown manager. */
export function checkPods(pods: PodTemplate[], read: ProgramReader): PodsChecked {
  const findings: Finding[] = [];
  let wired = 0;
  for (const pod of pods) {
    const w = findWiring(pod, read);
    if (pod.guessedAt)
      findings.push(
        finding(
          "unknown-workload",
          "warning",
          pod,
          w?.manager,
          `${pod.object.split("/")[0]} is not a workload kind check knows: its pod spec at ${pod.guessedAt} was read as one${w ? "" : ", and no container there runs envoy-shutdown-manager"}`,
          "check the pods it creates as well: kubectl get pods -o yaml | envoy-shutdown-manager check -",
        ),
      );
    findings.push(...checkUnreadCommands(pod, w, read));
    if (!w) continue;
    wired++;
    findings.push(
      ...checkFlags(w),
      ...checkInitContainer(w),
      ...checkContradictions(w),
      ...checkGracePeriod(w),
      ...checkPreStop(w),
      ...checkDrainOwner(w),
      ...checkReadyFile(w),
      ...checkAdminAddress(w),
      ...checkProbes(w),
      ...checkResources(w),
      ...checkUnknownEnv(w),
      ...checkUnusedEnv(w),
    );
  }
  return { findings, wired };
}

/** Input that passes nothing: no document at all, or no pod that runs this program. Named, so a gate never passes it silently. */
export function checkInput(documents: number, wired: number): Finding[] {
  const input = (id: string, message: string, fix: string): Finding => ({
    id,
    severity: "warning",
    object: "-",
    container: "-",
    message,
    fix,
  });
  if (documents === 0)
    return [
      input(
        "empty-input",
        "the input holds no document: nothing was checked",
        "check that the command rendering the manifests succeeded (set -o pipefail)",
      ),
    ];
  if (wired === 0)
    return [
      input(
        "nothing-wired",
        "no pod in the input runs envoy-shutdown-manager: nothing was checked",
        "name the manifests that hold Envoy's pods",
      ),
    ];
  return [];
}
