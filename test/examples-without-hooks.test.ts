/** The supervisor's examples (Docker, Compose, ECS, Nomad, a single-container pod, systemd), checked against the program. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { splitCommand } from "../src/cli/command.ts";
import { options as runCommand } from "../src/cli/commands/run.ts";
import { readOptions } from "../src/cli/option-kinds.ts";
import { parseDuration } from "../src/duration.ts";

const DIR = new URL("../examples/without-hooks/", import.meta.url).pathname;
const read = (file: string) => readFileSync(`${DIR}${file}`, "utf8");
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML and JSON, checked field by field below
type Doc = Record<string, any>;

/** What each orchestrator is told: the program's arguments after the executable, its stop signal and its patience. */
interface Wiring {
  argv: string[];
  stopSignal: string;
  graceMs: number;
}

const dockerfile = read("Dockerfile");
const entrypoint = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(dockerfile)?.[1] ?? "[]") as string[];
const dockerStopSignal = /^STOPSIGNAL (\S+)$/m.exec(dockerfile)?.[1] ?? "SIGTERM";
const seconds = (s: number) => s * 1000;

/** Nomad's HCL, read as far as these fields go: `key = "value"` and `key = [ ... ]` lists. */
function hclField(text: string, key: string): string | string[] | undefined {
  const list = new RegExp(`\\b${key}\\s*=\\s*(\\[[^\\]]*\\])`).exec(text)?.[1];
  if (list) return JSON.parse(list.replace(/,\s*\]/, "]")) as string[];
  return new RegExp(`\\b${key}\\s*=\\s*"([^"]*)"`).exec(text)?.[1];
}

/** A systemd unit's `Key=Value` lines. */
const unit = Object.fromEntries(
  read("envoy.service")
    .split("\n")
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
) as Record<string, string>;

const compose = Bun.YAML.parse(read("compose.yaml")) as Doc;
const ecs = JSON.parse(read("ecs-task-definition.json")) as Doc;
const pod = Bun.YAML.parse(read("pod-single-container.yaml")) as Doc;
const nomad = read("nomad.hcl");
const ecsContainer = ecs.containerDefinitions[0];

const WIRINGS: Record<string, Wiring> = {
  Dockerfile: { argv: entrypoint.slice(1), stopSignal: dockerStopSignal, graceMs: seconds(60) },
  "Docker Compose": {
    argv: entrypoint.slice(1),
    stopSignal: compose.services.envoy.stop_signal,
    graceMs: parseDuration(compose.services.envoy.stop_grace_period) ?? 0,
  },
  "Amazon ECS": { argv: ecsContainer.command, stopSignal: dockerStopSignal, graceMs: seconds(ecsContainer.stopTimeout) },
  Nomad: {
    argv: hclField(nomad, "args") as string[],
    stopSignal: hclField(nomad, "kill_signal") as string,
    graceMs: parseDuration(hclField(nomad, "kill_timeout") as string) ?? 0,
  },
  "single-container pod": {
    argv: pod.spec.containers[0].command.slice(1),
    stopSignal: "SIGTERM",
    graceMs: seconds(pod.spec.terminationGracePeriodSeconds),
  },
  systemd: {
    argv: unit.ExecStart?.split(" ").slice(1) ?? [],
    stopSignal: unit.KillSignal ?? "",
    graceMs: seconds(Number(unit.TimeoutStopSec)),
  },
};

const bootstrap = Bun.YAML.parse(read("envoy.yaml")) as Doc;
const adminPort = bootstrap.admin.address.socket_address.port_value;

describe.each(Object.entries(WIRINGS))("%s", (_, wiring) => {
  const { flags, command } = splitCommand(wiring.argv.slice(1));
  // readOptions throws on any flag the program does not have, or a bad value.
  const settings = readOptions(runCommand, flags, {});

  test("runs `run` with valid flags, and Envoy after `--`", () => {
    expect(wiring.argv[0]).toBe("run");
    expect(basename(command[0] ?? "")).toBe("envoy");
    expect(command).toContain("-c");
    expect(settings.admin.address.baseURL).toBe(`http://127.0.0.1:${adminPort}`);
  });

  test("stops with SIGTERM, and waits longer than the drain and Envoy's stop together", () => {
    expect(wiring.stopSignal).toBe("SIGTERM");
    expect(settings.drain.drainTimeoutMs).toBeGreaterThan(0);
    expect(wiring.graceMs).toBeGreaterThanOrEqual(settings.drain.drainTimeoutMs + settings.supervisor.stopTimeoutMs + 5000);
  });
});

describe("specific to each place", () => {
  test("the image puts the executable in front of Envoy, as PID 1", () => {
    expect(entrypoint[0]).toBe("/usr/local/bin/envoy-shutdown-manager");
    expect(dockerfile).toContain(
      "COPY --from=shutdown-manager /usr/local/bin/envoy-shutdown-manager /usr/local/bin/envoy-shutdown-manager",
    );
    expect(dockerfile).toContain("COPY envoy.yaml /etc/envoy/envoy.yaml");
    expect(ecsContainer.entryPoint).toEqual([entrypoint[0]]);
    expect(hclField(nomad, "entrypoint") as string[]).toEqual([entrypoint[0] as string]);
  });

  test("systemd signals only the supervisor, and reload is a hot restart", () => {
    expect(unit.KillMode).toBe("mixed");
    expect(unit.ExecReload).toBe("/bin/kill -HUP $MAINPID");
    expect(WIRINGS.systemd?.argv).toContain("--hot-restart");
  });

  test("the health checks use the program's own status command on its serve port", () => {
    expect(compose.services.envoy.healthcheck.test).toEqual(["CMD", entrypoint[0], "status", "--serve-port=8090"]);
    expect(ecsContainer.healthCheck.command).toEqual(["CMD", entrypoint[0], "status", "--serve-port=8090"]);
    expect(pod.spec.containers[0].livenessProbe.httpGet).toEqual({ path: "/healthz", port: 8090 });
    expect(pod.spec.containers[0].lifecycle).toBeUndefined();
  });
});
