/**
 * `check`: every example passes; each check catches a manifest broken from an example by one change, naming the
 * field; unreadable input is exit 2; standard input and JSON work.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkPods, type Finding } from "../src/check/checks.ts";
import { podTemplates } from "../src/check/pods.ts";
import { readProgram } from "../src/cli/commands/check.ts";
import { tempDir } from "./support/fixtures.ts";
import { spawnCli, within } from "./support/process.ts";

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, changed field by field
type Doc = any;

/** An example's documents, parsed afresh (each test changes its own copy). */
const example = (file: string): Doc[] => [Bun.YAML.parse(readFileSync(join(EXAMPLES, file), "utf8"))].flat();

/** The pod spec of an example's workload, and its containers by name. */
function pod(docs: Doc[]) {
  const workload = docs.find((doc) => doc?.spec?.template?.spec);
  const spec = workload.spec.template.spec;
  const container = (name: string) => [...spec.containers, ...(spec.initContainers ?? [])].find((c: Doc) => c.name === name);
  return { spec, container };
}

/** The findings for documents, checked in process. */
const findingsOf = (docs: Doc[]): Finding[] =>
  checkPods(podTemplates(docs.map((object) => ({ source: "test", object }))), readProgram).findings;

describe("every example passes", () => {
  test("`check examples/` exits 0 with no error, through the CLI", async () => {
    const cli = spawnCli(["check", EXAMPLES, "--format", "json"]);
    const [code, out] = await within(10_000, Promise.all([cli.exited, cli.stdout()]));
    const findings = JSON.parse(out) as Finding[];
    expect(findings.filter((f) => f.severity === "error")).toEqual([]);
    expect(code).toBe(0);
  });
});

const HTTPGET = "envoy-deployment-httpget.yaml";
const EXEC = "envoy-daemonset-exec.yaml";

/** A change to one container of an example's pod (`c`): Envoy's, or the shutdown manager's. */
const envoy = (change: (c: Doc) => unknown) => (docs: Doc[]) => change(pod(docs).container("envoy"));
const sidecar = (change: (c: Doc) => unknown) => (docs: Doc[]) => change(pod(docs).container("shutdown-manager"));

/** Replaces one item of a list (an argument, a command word) in place. */
const replace = (list: string[], from: string, to: string) => list.splice(list.indexOf(from), 1, to);

/** A broken manifest: the example and the one change that breaks it, with the finding it must produce. */
const BROKEN: [id: string, file: string, change: (docs: Doc[]) => unknown, field: RegExp][] = [
  [
    "grace-period",
    EXEC,
    (docs) => Object.assign(pod(docs).spec, { terminationGracePeriodSeconds: 300 }),
    /terminationGracePeriodSeconds 300 is shorter than --drain-timeout 10m/,
  ],
  ["prestop-missing", HTTPGET, envoy((c) => delete c.lifecycle), /Envoy has no preStop hook/],
  [
    "prestop-port",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { port: 8091 })),
    /preStop httpGet calls port 8091, but the sidecar serves on 8090/,
  ],
  ["prestop-path", HTTPGET, envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { path: "/drain" })), /calls "\/drain"/],
  ["prestop-token", EXEC, envoy((c) => delete c.lifecycle.preStop.httpGet.httpHeaders), /sends no Authorization header/],
  ["hook-wait-zero", HTTPGET, sidecar((c) => replace(c.args, "--hook-wait=5s", "--hook-wait=0s")), /--hook-wait 0s lets it exit first/],
  [
    "ready-file-mismatch",
    EXEC,
    sidecar((c) => replace(c.lifecycle.preStop.exec.command, "--ready-file=/admin/ok", "--ready-file=/admin/ready")),
    /the hook writes "\/admin\/ready" but the sidecar watches "\/admin\/ok"/,
  ],
  [
    "ready-file-read-only",
    EXEC,
    sidecar((c) => Object.assign(c.volumeMounts[0], { readOnly: true })),
    /the ready file \/admin\/ok is on a read-only mount \(admin\)/,
  ],
  [
    "admin-socket-volume",
    EXEC,
    sidecar((c) => c.args.push("--admin-address=/run/envoy/admin.sock")),
    /the admin socket \/run\/envoy\/admin.sock is not on a volume both Envoy and the shutdown manager mount/,
  ],
  [
    "envoy-liveness",
    HTTPGET,
    envoy((c) => Object.assign(c, { livenessProbe: { httpGet: { path: "/ready", port: 8002 } } })),
    /Envoy's liveness probe calls \/ready/,
  ],
  [
    "sidecar-liveness",
    HTTPGET,
    sidecar((c) => Object.assign(c.livenessProbe, { failureThreshold: 1 })),
    /liveness probe gives up after 10 s/,
  ],
  ["cpu-limit", HTTPGET, sidecar((c) => Object.assign(c.resources.limits, { cpu: "50m" })), /a CPU limit of 50m slows the hook/],
  ["memory-limit", HTTPGET, sidecar((c) => Object.assign(c.resources.limits, { memory: "32Mi" })), /a memory limit of 32Mi leaves no room/],
  [
    "flags",
    HTTPGET,
    sidecar((c) => replace(c.args, "--drain-timeout=300s", "--drain-timout=300s")),
    /shutdown-manager would exit 2 at start: unknown flag --drain-timout/,
  ],
  [
    "flags",
    HTTPGET,
    sidecar((c) => c.env.push({ name: "ENVOY_SHUTDOWN_ADMIN_TIMEOUT", value: "2" })),
    /ENVOY_SHUTDOWN_ADMIN_TIMEOUT "2" is not valid/,
  ],
  [
    "prestop-not-draining",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle, { preStop: { exec: { command: ["sleep", "15"] } } })),
    /neither runs this program's `shutdown` nor waits for the ready file/,
  ],
  [
    "admin-host-network",
    "envoy-daemonset-hostnetwork.yaml",
    sidecar((c) => c.args.push("--admin-address=0.0.0.0:19000")),
    /with hostNetwork, the admin address 0\.0\.0\.0:19000 is on the node's network/,
  ],
  [
    "env-unknown",
    HTTPGET,
    sidecar((c) => c.env.push({ name: "ENVOY_SHUTDOWN_MIN_DRAIN_DURATION", valueFrom: { configMapKeyRef: { name: "x", key: "y" } } })),
    /ENVOY_SHUTDOWN_MIN_DRAIN_DURATION comes from a valueFrom/,
  ],
  [
    "no-envoy",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { containers: [pod(docs).container("shutdown-manager")] }),
    /no Envoy container found beside the shutdown manager/,
  ],
  ["no-drain-timeout", HTTPGET, sidecar((c) => c.args.splice(c.args.indexOf("--drain-timeout=300s"), 1)), /no --drain-timeout/],
];

describe("each check catches its broken manifest", () => {
  test.each(BROKEN)("%s (%s)", (id, file, change, message) => {
    const docs = example(file);
    expect(findingsOf(docs).filter((f) => f.severity === "error")).toEqual([]);
    change(docs);
    const found = findingsOf(docs).filter((f) => f.id === id);
    expect(found.map((f) => f.message)).toContainEqual(expect.stringMatching(message));
    expect(found[0]?.fix).not.toBe("");
  });

  test("through the CLI a broken manifest is exit 1, its finding in the table", async () => {
    const docs = example("envoy-deployment-httpget.yaml");
    pod(docs).container("envoy").lifecycle.preStop.httpGet.port = 8091;
    const file = join(tempDir(), "broken.yaml");
    writeFileSync(file, docs.map((doc) => Bun.YAML.stringify(doc)).join("---\n"));
    const cli = spawnCli(["check", file]);
    const [code, out] = await within(10_000, Promise.all([cli.exited, cli.stdout()]));
    expect(code).toBe(1);
    expect(out).toMatch(/^error +prestop-port +Deployment\/envoy +envoy +Envoy's preStop httpGet calls port 8091/m);
    expect(out).not.toContain("\x1b[");
  });
});

describe("input", () => {
  test("standard input and JSON output: `kubectl kustomize … | check - --format json`", async () => {
    const cli = Bun.spawn([process.execPath, new URL("../src/cli/main.ts", import.meta.url).pathname, "check", "-", "--format", "json"], {
      stdin: new Blob([readFileSync(join(EXAMPLES, "envoy-daemonset-exec.yaml"))]),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, out] = await within(10_000, Promise.all([cli.exited, new Response(cli.stdout).text()]));
    expect(code).toBe(0);
    expect(Array.isArray(JSON.parse(out))).toBe(true);
  });

  test.each([
    ["a YAML file that does not parse", "bad.yaml", "kind: Pod\nspec: [unclosed\n", /bad\.yaml:1: not valid YAML/],
    ["a JSON file that does not parse", "bad.json", '{"kind": "Pod",', /bad\.json:1: not valid JSON/],
  ])("%s is exit 2 with the file in one line", async (_, name, text, message) => {
    const file = join(tempDir(), name);
    writeFileSync(file, text);
    const cli = spawnCli(["check", file]);
    expect(await within(10_000, cli.exited)).toBe(2);
    expect(cli.stderrText().trim().split("\n")).toHaveLength(1);
    expect(cli.stderrText()).toMatch(message);
  });

  test("a path that does not exist is exit 2; input with no pod of this program says so and passes", async () => {
    const missing = spawnCli(["check", "/nonexistent/manifests"]);
    expect(await within(10_000, missing.exited)).toBe(2);
    expect(missing.stderrText()).toContain("/nonexistent/manifests: cannot be read (ENOENT)");
    const file = join(tempDir(), "config.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: {}\n");
    const none = spawnCli(["check", file]);
    expect(await within(10_000, none.exited)).toBe(0);
    expect(none.stderrText()).toContain("no pod in the input runs envoy-shutdown-manager");
  });

  test("--strict fails on warnings too", async () => {
    const docs = example("envoy-deployment-httpget.yaml");
    pod(docs).container("shutdown-manager").resources.limits.cpu = "50m";
    const file = join(tempDir(), "warned.yaml");
    writeFileSync(file, docs.map((doc) => Bun.YAML.stringify(doc)).join("---\n"));
    expect(await within(10_000, spawnCli(["check", file]).exited)).toBe(0);
    expect(await within(10_000, spawnCli(["check", file, "--strict"]).exited)).toBe(1);
  });
});
