import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { options as hookCommand } from "../src/cli/commands/shutdown.ts";
import { options as sidecarCommand } from "../src/cli/commands/shutdown-manager.ts";
import { readOptions } from "../src/cli/option-kinds.ts";

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

describe.each(["envoy-deployment-httpget.yaml", "envoy-daemonset-exec.yaml"])("%s", (file) => {
  const workload = docs(file).find((d) => d.kind === "Deployment" || d.kind === "DaemonSet") as Doc;
  const pod = workload.spec.template;
  const envoy = pod.spec.containers.find((c: Doc) => c.name === "envoy");
  const sidecar = pod.spec.containers.find((c: Doc) => c.name === "shutdown-manager");
  const [command, ...args] = sidecar.args as string[];
  const config = sidecarSettings(args, sidecar.env);
  const port = config.handoff.servePort;
  const emptyDirs = new Set(pod.spec.volumes.filter((v: Doc) => "emptyDir" in v).map((v: Doc) => v.name));
  const mountedAt = (container: Doc, path: string) =>
    container.volumeMounts?.some((m: Doc) => emptyDirs.has(m.name) && m.mountPath === path) ?? false;

  test("the sidecar runs the shutdown-manager with valid flags", () => {
    expect(command).toBe("shutdown-manager");
    expect(sidecar.env.find((e: Doc) => e.name === "ENVOY_SHUTDOWN_SHUTDOWN_TOKEN").valueFrom.secretKeyRef.name).toBe(
      "envoy-shutdown-token",
    );
  });

  test("ports and paths match the program's", () => {
    expect(sidecar.ports.map((p: Doc) => p.containerPort)).toContain(port);
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: "/healthz", port: port });
    expect(envoy.lifecycle.preStop.httpGet.path).toBe("/shutdown");
    expect(envoy.lifecycle.preStop.httpGet.port).toBe(port);
    expect(envoy.lifecycle.preStop.httpGet.httpHeaders).toEqual([{ name: "Authorization", value: `Bearer ${token}` }]);
    expect(pod.metadata.annotations).toEqual({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(port),
      "prometheus.io/path": "/metrics",
    });
    expect(dockerfile).toContain(`EXPOSE ${port}`);
  });

  test("the admin address is Envoy's admin listener", () => {
    const admin = bootstrap.admin.address.socket_address;
    expect(config.admin.address.baseURL).toBe(`http://${admin.address}:${admin.port_value}`);
  });

  test("the ready file is on an emptyDir, and the grace period outlasts the drain timeout", () => {
    expect(mountedAt(sidecar, dirname(config.handoff.readyFile ?? ""))).toBe(true);
    expect(config.drain.drainTimeoutMs).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(config.drain.drainTimeoutMs / 1000 + 10);
    expect(sidecar.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  test("an exec hook, where there is one, runs `shutdown` with the manager's ready file and timeout", () => {
    const exec = sidecar.lifecycle?.preStop?.exec?.command as string[] | undefined;
    if (file.includes("httpget")) return expect(exec).toBeUndefined();
    const [binary, subcommand, ...hookArgs] = exec ?? [];
    expect([binary, subcommand]).toEqual([entrypoint, "shutdown"]);
    const hook = hookSettings(hookArgs as string[], sidecar.env);
    expect(hook.handoff.readyFile).toBe(config.handoff.readyFile);
    expect(hook.drain.drainTimeoutMs).toBe(config.drain.drainTimeoutMs);
    expect(hook.handoff.servePort).toBe(port);
    expect(mountedAt(envoy, dirname(config.handoff.readyFile ?? ""))).toBe(true);
  });
});
