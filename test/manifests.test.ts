import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { options as hookCommand } from "../src/cli/commands/shutdown.ts";
import { options as sidecarCommand } from "../src/cli/commands/shutdown-manager.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { BUILD_FLAGS } from "./support/build-flags.ts";

const ROOT = new URL("..", import.meta.url).pathname;
// biome-ignore lint/suspicious/noExplicitAny: arbitrary Kubernetes YAML, checked field by field below
type Doc = Record<string, any>;

function docs(file: string): Doc[] {
  return [Bun.YAML.parse(readFileSync(`${ROOT}examples/${file}`, "utf8"))].flat() as Doc[];
}

const token = docs("shutdown-token-secret.yaml")[0]?.stringData.token as string;
const bootstrap = Bun.YAML.parse(docs("envoy-bootstrap.yaml")[0]?.data["envoy.yaml"]) as Doc;
const dockerfile = readFileSync(`${ROOT}Dockerfile`, "utf8");
const entrypoint = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(dockerfile)?.[1] ?? "[]")[0] as string;

/** The environment a container's env produces (a Secret reference stands for the Secret's token). */
function environmentOf(env: Doc[] = []): Record<string, string> {
  return Object.fromEntries(env.map((e) => [e.name, e.value ?? (e.valueFrom?.secretKeyRef ? token : "")]));
}

/** The sidecar's settings from a container's args and env, as the program reads them (an unknown flag throws). */
const sidecarSettings = (args: string[], env?: Doc[]) => readOptions(sidecarCommand, args, environmentOf(env));
/** The hook's settings, likewise. */
const hookSettings = (args: string[], env?: Doc[]) => readOptions(hookCommand, args, environmentOf(env));

/** Kubernetes quantities as examples write them: `64Mi`, `200m`, `1`. */
function quantity(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(Mi|Gi|m)?$/.exec(text);
  const unit = { Mi: 2 ** 20, Gi: 2 ** 30, m: 1e-3 }[match?.[2] ?? ""] ?? 1;
  return Number(match?.[1]) * unit;
}

// What `npm run bench` measured (docs/benchmarks.md): the sidecar's RSS once 1,000 /shutdown waiters are
// served is about 42 MiB (37.4 MiB idle from a just-written executable, plus 5.0 MiB; 44 MiB covers the day's other
// runs), and the hook reaches Envoy within 0.1 to 0.3 s under a 100m CPU limit.
const SIDECAR_RSS_UNDER_LOAD = 44 * 2 ** 20;

const WIRINGS = [
  "envoy-deployment-httpget.yaml",
  "envoy-daemonset-exec.yaml",
  "envoy-deployment-native-sidecar.yaml",
  "envoy-daemonset-hostnetwork.yaml",
];

describe.each(WIRINGS)("%s", (file) => {
  const workload = docs(file).find((d) => d.kind === "Deployment" || d.kind === "DaemonSet") as Doc;
  const pod = workload.spec.template;
  const envoy = pod.spec.containers.find((c: Doc) => c.name === "envoy");
  const sidecar = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((c: Doc) => c.name === "shutdown-manager");
  const [command, ...args] = sidecar.args as string[];
  const config = sidecarSettings(args, sidecar.env);
  const port = config.handoff.servePort;
  const hostNetwork = pod.spec.hostNetwork === true;
  const emptyDirs = new Set(pod.spec.volumes.filter((v: Doc) => "emptyDir" in v).map((v: Doc) => v.name));
  const mountedAt = (container: Doc, path: string) =>
    container.volumeMounts?.some((m: Doc) => emptyDirs.has(m.name) && m.mountPath === path) ?? false;

  test("the sidecar runs the shutdown-manager with valid flags", () => {
    expect(command).toBe("shutdown-manager");
    const tokenVariable = sidecar.env?.find((e: Doc) => e.name === "ENVOY_SHUTDOWN_SHUTDOWN_TOKEN");
    if (tokenVariable) expect(tokenVariable.valueFrom.secretKeyRef.name).toBe("envoy-shutdown-token");
  });

  test("ports, paths and probes match the program's", () => {
    if (hostNetwork) {
      // On the node's network: loopback only, and an exec probe, since kubelet would reach the node address.
      expect(config.sidecar.serveAddress).toBe("127.0.0.1");
      expect(port).not.toBe(8090);
      expect(sidecar.livenessProbe.exec.command).toEqual([entrypoint, "status", `--serve-port=${port}`]);
      expect(sidecar.ports).toBeUndefined();
    } else {
      expect(sidecar.ports.map((p: Doc) => p.containerPort)).toContain(port);
      expect(sidecar.livenessProbe.httpGet).toEqual({ path: "/healthz", port });
      expect(dockerfile).toContain(`EXPOSE ${port}`);
    }
    if (pod.metadata.annotations)
      expect(pod.metadata.annotations).toEqual({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(port),
        "prometheus.io/path": "/metrics",
      });
  });

  test("Envoy's preStop hook waits for the drain", () => {
    const hook = envoy.lifecycle.preStop;
    if (hostNetwork) {
      expect(hook.exec.command.join(" ")).toContain(`[ ! -e ${config.handoff.readyFile} ]`);
      expect(mountedAt(envoy, dirname(config.handoff.readyFile ?? ""))).toBe(true);
      return;
    }
    expect(hook.httpGet.path).toBe("/shutdown");
    expect(hook.httpGet.port).toBe(port);
    expect(hook.httpGet.httpHeaders).toEqual([{ name: "Authorization", value: `Bearer ${token}` }]);
  });

  test("a native sidecar starts before Envoy, once its /healthz answers", () => {
    const native = pod.spec.initContainers?.includes(sidecar) ?? false;
    expect(native).toBe(file.includes("native-sidecar"));
    if (!native) return;
    expect(sidecar.restartPolicy).toBe("Always");
    expect(sidecar.startupProbe.httpGet).toEqual({ path: "/healthz", port });
    expect(sidecar.startupProbe.periodSeconds * sidecar.startupProbe.failureThreshold).toBeGreaterThanOrEqual(10);
  });

  test("the admin address is Envoy's admin listener", () => {
    const admin = bootstrap.admin.address.socket_address;
    expect(config.admin.address.baseURL).toBe(`http://${admin.address}:${admin.port_value}`);
  });

  test("the grace period outlasts the drain timeout, and resources fit the measured figures", () => {
    expect(config.drain.drainTimeoutMs).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(config.drain.drainTimeoutMs / 1000 + 10);
    expect(sidecar.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(quantity(sidecar.resources.requests.memory)).toBeGreaterThanOrEqual(SIDECAR_RSS_UNDER_LOAD);
    expect(quantity(sidecar.resources.limits.memory)).toBeGreaterThanOrEqual(2 * SIDECAR_RSS_UNDER_LOAD);
    expect(quantity(sidecar.resources.limits.cpu)).toBeGreaterThanOrEqual(0.1);
  });

  test("an exec hook, where there is one, runs `shutdown` with the sidecar's ready file, timeout and port", () => {
    const exec = sidecar.lifecycle?.preStop?.exec?.command as string[] | undefined;
    if (!exec) return expect(file).not.toMatch(/exec|hostnetwork/);
    const [binary, subcommand, ...hookArgs] = exec;
    expect([binary, subcommand]).toEqual([entrypoint, "shutdown"]);
    const hook = hookSettings(hookArgs as string[], sidecar.env);
    expect(hook.handoff.readyFile).toBe(config.handoff.readyFile);
    expect(hook.drain.drainTimeoutMs).toBe(config.drain.drainTimeoutMs);
    expect(hook.handoff.servePort).toBe(port);
    expect(mountedAt(sidecar, dirname(config.handoff.readyFile ?? ""))).toBe(true);
  });
});

test("the image builds the executable with the flags of `npm run build`", () => {
  const buildLine = /^RUN bun build (\S+) (.+) --outfile \S+$/m.exec(dockerfile);
  expect(buildLine?.[1]).toBe("src/cli/main.ts");
  expect(buildLine?.[2]?.split(" ")).toEqual([...BUILD_FLAGS]);
});
