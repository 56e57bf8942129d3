/**
 * The Envoy Gateway swap (examples/envoy-gateway/envoyproxy.yaml) against what Envoy Gateway generates: its patch
 * changes the shutdown manager's image only, and the Deployment it produces runs this program on Envoy Gateway's
 * own command lines, which `check` reads in their dialect.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { checkPods } from "../src/check/checks.ts";
import { podTemplates } from "../src/check/pods.ts";
import { readProgram } from "../src/cli/commands/check.ts";
import { type Manifest, strategicMerge } from "./support/kubernetes-schema.ts";

const example = Bun.YAML.parse(readFileSync(new URL("../examples/envoy-gateway/envoyproxy.yaml", import.meta.url), "utf8")) as Manifest;

/**
 * The proxy Deployment as Envoy Gateway generates it, reduced to what the swap touches (read in its sources:
 * internal/infrastructure/kubernetes/proxy, testdata/deployments/shutdown-manager.yaml): Envoy's preStop
 * `GET /shutdown/ready` on 19002, the `shutdown-manager` container running `envoy-gateway envoy shutdown-manager
 * --ready-timeout` with its preStop `envoy-gateway envoy shutdown --drain-timeout --min-drain-duration`, the
 * liveness probes it writes, and a grace period of the drain timeout plus 300 s.
 */
function generatedDeployment(drainTimeoutS: number, minDrainS: number): Manifest {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "envoy-default-37a8eec1", namespace: "envoy-gateway-system" },
    spec: {
      template: {
        spec: {
          terminationGracePeriodSeconds: drainTimeoutS + 300,
          containers: [
            {
              name: "envoy",
              image: "docker.io/envoyproxy/envoy:distroless-v1.36.2",
              command: ["envoy"],
              lifecycle: { preStop: { httpGet: { path: "/shutdown/ready", port: 19002, scheme: "HTTP" } } },
              livenessProbe: { httpGet: { path: "/ready", port: 19003 }, periodSeconds: 10, failureThreshold: 3 },
              readinessProbe: { httpGet: { path: "/ready", port: 19003 }, periodSeconds: 5, failureThreshold: 1 },
            },
            {
              name: "shutdown-manager",
              image: "docker.io/envoyproxy/gateway:v1.6.0",
              command: ["envoy-gateway"],
              args: ["envoy", "shutdown-manager", `--ready-timeout=${drainTimeoutS + 10}s`],
              lifecycle: {
                preStop: {
                  exec: {
                    command: [
                      "envoy-gateway",
                      "envoy",
                      "shutdown",
                      `--drain-timeout=${drainTimeoutS}s`,
                      `--min-drain-duration=${minDrainS}s`,
                    ],
                  },
                },
              },
              livenessProbe: { httpGet: { path: "/healthz", port: 19002 }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 1 },
              resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "200m", memory: "96Mi" } },
            },
          ],
        },
      },
    },
  };
}

const seconds = (duration: string) => Number(/^(\d+)s$/.exec(duration)?.[1]);

describe("the Envoy Gateway swap", () => {
  test("is an EnvoyProxy whose Kubernetes provider patches the generated Deployment, strategically", () => {
    expect(example).toMatchObject({
      apiVersion: "gateway.envoyproxy.io/v1alpha1",
      kind: "EnvoyProxy",
      spec: { provider: { type: "Kubernetes", kubernetes: { envoyDeployment: { patch: { type: "StrategicMerge" } } } } },
    });
  });

  test("changes the shutdown-manager container's image and nothing else: Envoy Gateway's command lines stay as written", () => {
    const containers = example.spec.provider.kubernetes.envoyDeployment.patch.value.spec.template.spec.containers;
    expect(containers).toHaveLength(1);
    expect(Object.keys(containers[0]).sort()).toEqual(["image", "name"]);
    expect(containers[0].name).toBe("shutdown-manager");
    expect(containers[0].image).toStartWith("envoy-shutdown-manager:");
  });

  test("the Deployment it produces runs this program on Envoy Gateway's command lines, read in their dialect", () => {
    const drainTimeoutS = seconds(example.spec.shutdown.drainTimeout);
    const minDrainS = seconds(example.spec.shutdown.minDrainDuration);
    const generated = generatedDeployment(drainTimeoutS, minDrainS);
    const patched = strategicMerge(generated, example.spec.provider.kubernetes.envoyDeployment.patch.value);
    const [envoy, manager] = patched.spec.template.spec.containers;
    expect(manager.image).toBe(example.spec.provider.kubernetes.envoyDeployment.patch.value.spec.template.spec.containers[0].image);
    expect([manager.command, manager.args, manager.lifecycle]).toEqual([
      ["envoy-gateway"],
      ["envoy", "shutdown-manager", `--ready-timeout=${drainTimeoutS + 10}s`],
      generated.spec.template.spec.containers[1].lifecycle,
    ]);
    expect(envoy).toEqual(generated.spec.template.spec.containers[0]);
    // The hook's line, as this program reads it under Envoy Gateway's name.
    const hook = readProgram(manager.lifecycle.preStop.exec.command, {});
    expect(hook).toMatchObject({ command: "envoy shutdown", role: "hook", dialect: true });
    expect(hook?.settings?.drain).toMatchObject({
      drainTimeoutMs: drainTimeoutS * 1000,
      minDrainMs: minDrainS * 1000,
      drainListeners: false,
    });
    // `check` finds nothing wrong with the wiring but the liveness probe Envoy Gateway puts on Envoy's /ready.
    const { findings, wired } = checkPods(podTemplates([{ source: "generated", object: patched }]), readProgram);
    expect(wired).toBe(1);
    expect(findings.map((finding) => finding.id)).toEqual(["envoy-liveness"]);
  });

  test("a --ready-timeout shorter than the hook's --drain-timeout is an error: Envoy's /shutdown/ready would return mid-drain", () => {
    const generated = generatedDeployment(60, 10);
    const manager = generated.spec.template.spec.containers[1];
    manager.args = ["envoy", "shutdown-manager", "--ready-timeout=30s"];
    const { findings } = checkPods(podTemplates([{ source: "generated", object: generated }]), readProgram);
    expect(findings.find((finding) => finding.id === "sidecar-deadline")?.message).toMatch(
      /the sidecar's --ready-timeout 30s is shorter than the hook's --drain-timeout 1m0s/,
    );
  });
});
