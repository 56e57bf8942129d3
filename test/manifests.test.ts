import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { type Config, loadConfig, OPTIONS } from "../src/config.ts";

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

/** Parses `--name=value` flags as the program would, rejecting any flag it does not have. */
function flagsOf(args: string[]): Record<string, string> {
  return Object.fromEntries(
    args.map((arg) => {
      const [, name = "", value = ""] = /^--([^=]+)=(.*)$/.exec(arg) ?? [];
      expect(Object.keys(OPTIONS)).toContain(name);
      return [name, value];
    }),
  );
}

/** The config a container's args and env produce (a Secret reference stands for the Secret's token). */
function configOf(args: string[], env: Doc[] = []): Config {
  const environment = Object.fromEntries(env.map((e) => [e.name, e.value ?? (e.valueFrom?.secretKeyRef ? token : "")]));
  return loadConfig(flagsOf(args), environment);
}

describe.each(["envoy-deployment-httpget.yaml", "envoy-daemonset-exec.yaml"])("%s", (file) => {
  const workload = docs(file).find((d) => d.kind === "Deployment" || d.kind === "DaemonSet") as Doc;
  const pod = workload.spec.template;
  const envoy = pod.spec.containers.find((c: Doc) => c.name === "envoy");
  const sidecar = pod.spec.containers.find((c: Doc) => c.name === "shutdown-manager");
  const [command, ...args] = sidecar.args as string[];
  const config = configOf(args, sidecar.env);
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
    expect(sidecar.ports.map((p: Doc) => p.containerPort)).toContain(config.servePort);
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: "/healthz", port: config.servePort });
    expect(envoy.lifecycle.preStop.httpGet.path).toBe("/shutdown");
    expect(envoy.lifecycle.preStop.httpGet.port).toBe(config.servePort);
    expect(envoy.lifecycle.preStop.httpGet.httpHeaders).toEqual([{ name: "Authorization", value: `Bearer ${token}` }]);
    expect(pod.metadata.annotations).toEqual({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(config.servePort),
      "prometheus.io/path": "/metrics",
    });
    expect(dockerfile).toContain(`EXPOSE ${config.servePort}`);
  });

  test("the admin address is Envoy's admin listener", () => {
    const admin = bootstrap.admin.address.socket_address;
    expect(config.adminAddress.baseURL).toBe(`http://${admin.address}:${admin.port_value}`);
  });

  test("the ready file is on an emptyDir, and the grace period outlasts the drain timeout", () => {
    expect(mountedAt(sidecar, dirname(config.readyFile))).toBe(true);
    expect(config.drainTimeoutMs).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(config.drainTimeoutMs / 1000 + 10);
    expect(sidecar.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  test("an exec hook, where there is one, runs `shutdown` with the manager's ready file and timeout", () => {
    const exec = sidecar.lifecycle?.preStop?.exec?.command as string[] | undefined;
    if (file.includes("httpget")) return expect(exec).toBeUndefined();
    const [binary, subcommand, ...hookArgs] = exec ?? [];
    expect([binary, subcommand]).toEqual([entrypoint, "shutdown"]);
    const hook = configOf(hookArgs as string[], sidecar.env);
    expect(hook.readyFile).toBe(config.readyFile);
    expect(hook.drainTimeoutMs).toBe(config.drainTimeoutMs);
    expect(hook.servePort).toBe(config.servePort);
    expect(mountedAt(envoy, dirname(config.readyFile))).toBe(true);
  });
});
