/**
 * `check`: every example passes; each check catches a manifest broken from an example by one change, naming the
 * field; unreadable input is exit 2; standard input and JSON work.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkPods, type Finding } from "../src/check/checks.ts";
import { MAX_DOCUMENTS, MAX_INPUT_BYTES } from "../src/check/manifests.ts";
import { podTemplates } from "../src/check/pods.ts";
import { readProgram } from "../src/cli/commands/check.ts";
import { tempDir } from "./support/fixtures.ts";
import { spawnCli, within } from "./support/process.ts";

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, changed field by field
type Doc = any;

/** An example's documents, parsed afresh (each test changes its own copy). */
const example = (file: string): Doc[] => [Bun.YAML.parse(readFileSync(join(EXAMPLES, file), "utf8"))].flat();

/** The pod spec of an example's workload (or Pod), and its containers by name. */
function pod(docs: Doc[]) {
  const workload = docs.find((doc) => doc?.spec?.template?.spec || doc?.kind === "Pod");
  const spec = workload.spec.template?.spec ?? workload.spec;
  const container = (name: string) => [...spec.containers, ...(spec.initContainers ?? [])].find((c: Doc) => c.name === name);
  return { spec, container };
}

/** The findings for documents, and how many pods run the program, checked in process. */
const checked = (docs: Doc[]) => checkPods(podTemplates(docs.map((object) => ({ source: "test", object }))), readProgram);
const findingsOf = (docs: Doc[]): Finding[] => checked(docs).findings;

describe("every example passes", () => {
  test("`check examples/ --strict` exits 0 with no finding, through the CLI", async () => {
    const cli = spawnCli(["check", EXAMPLES, "--format", "json", "--strict"]);
    const [code, out] = await within(10_000, Promise.all([cli.exited, cli.stdout()]));
    const findings = JSON.parse(out) as Finding[];
    expect(findings).toEqual([]);
    expect(code).toBe(0);
  });
});

const HTTPGET = "envoy-deployment-httpget.yaml";
const EXEC = "envoy-daemonset-exec.yaml";
const NATIVE = "envoy-deployment-native-sidecar.yaml";
const CONTOUR = "contour/envoy-daemonset.yaml";
const RUN = "without-hooks/pod-single-container.yaml";

/** A change to one container of an example's pod (`c`): Envoy's, or the shutdown manager's. */
const envoy = (change: (c: Doc) => unknown) => (docs: Doc[]) => change(pod(docs).container("envoy"));
const sidecar = (change: (c: Doc) => unknown) => (docs: Doc[]) => change(pod(docs).container("shutdown-manager"));
/** A change to the command of the shutdown manager's own preStop hook. */
const hook = (change: (command: string[]) => unknown) => sidecar((c) => change(c.lifecycle.preStop.exec.command));
/** Changes a workload's kind (and API group), as another controller's workload of the same shape. */
const kind = (to: string, apiVersion: string) => (docs: Doc[]) =>
  Object.assign(
    docs.find((doc) => doc?.spec?.template),
    { kind: to, apiVersion },
  );

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
  [
    "grace-period",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { terminationGracePeriodSeconds: "abc" }),
    /terminationGracePeriodSeconds "abc" is not a whole number of seconds/,
  ],
  [
    "grace-period",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { terminationGracePeriodSeconds: Number.POSITIVE_INFINITY }),
    /terminationGracePeriodSeconds Infinity is not a whole number of seconds/,
  ],
  [
    "grace-period",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { terminationGracePeriodSeconds: [330] }),
    /terminationGracePeriodSeconds \[330\] is not a whole number of seconds/,
  ],
  [
    "grace-period",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { terminationGracePeriodSeconds: null }),
    /terminationGracePeriodSeconds 30 \(Kubernetes' default\) is shorter than/,
  ],
  [
    "grace-period",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { terminationGracePeriodSeconds: -1 }),
    /terminationGracePeriodSeconds -1 \(taken as 1 s\) is shorter than/,
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
    /neither runs this program's `shutdown`, calls \/shutdown, nor waits for the ready file/,
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
    "env-unused",
    HTTPGET,
    sidecar((c) => c.env.push({ name: "ENVOY_SHUTDOWN_DRAIN_TIMOUT", value: "300s" })),
    /ENVOY_SHUTDOWN_DRAIN_TIMOUT is read by no command of this container \(`shutdown-manager`\): it changes nothing/,
  ],
  [
    "no-envoy",
    HTTPGET,
    (docs) => Object.assign(pod(docs).spec, { containers: [pod(docs).container("shutdown-manager")] }),
    /no Envoy container found beside the shutdown manager/,
  ],
  ["no-drain-timeout", HTTPGET, sidecar((c) => c.args.splice(c.args.indexOf("--drain-timeout=300s"), 1)), /no --drain-timeout/],
  // kubelet resolves a hook's named port in the hook's own container only: the sidecar's port name is not Envoy's.
  [
    "prestop-port",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { port: "shutdown" })),
    /calls port "shutdown", which Envoy's container does not declare/,
  ],
  [
    "prestop-scheme",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { scheme: "HTTPS" })),
    /uses scheme HTTPS.*drops the Authorization header/,
  ],
  ["prestop-host", HTTPGET, envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { host: "10.0.0.1" })), /calls host 10\.0\.0\.1/],
  [
    "prestop-token",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet.httpHeaders[0], { value: "Token change-me-to-a-long-random-string" })),
    /not `Bearer <token>`/,
  ],
  [
    "prestop-token",
    HTTPGET,
    sidecar((c) => c.args.push("--shutdown-token=another-token")),
    /a bearer token other than the sidecar's --shutdown-token/,
  ],
  [
    "prestop-token",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet.httpHeaders[0], { value: "Bearer $(TOKEN)" })),
    /kubelet sends hook headers as written/,
  ],
  [
    "prestop-unreachable",
    HTTPGET,
    sidecar((c) => c.args.push("--serve-address=127.0.0.1")),
    /the sidecar listens on 127\.0\.0\.1 only, but kubelet sends Envoy's httpGet hook from outside the pod/,
  ],
  // Loopback in any spelling is loopback all the same.
  ["prestop-unreachable", HTTPGET, sidecar((c) => c.args.push("--serve-address=127.0.0.2")), /the sidecar listens on 127\.0\.0\.2 only/],
  [
    "prestop-unreachable",
    HTTPGET,
    sidecar((c) => c.args.push("--serve-address=0:0:0:0:0:0:0:1")),
    /the sidecar listens on 0:0:0:0:0:0:0:1 only/,
  ],
  ["prestop-unreachable", HTTPGET, sidecar((c) => c.args.push("--serve-address=LOCALHOST")), /the sidecar listens on LOCALHOST only/],
  [
    "prestop-unreachable",
    HTTPGET,
    sidecar((c) => c.args.push("--serve-address=::ffff:127.0.0.1")),
    /the sidecar listens on ::ffff:127\.0\.0\.1 only/,
  ],
  ["flags", HTTPGET, sidecar((c) => c.args.push("--serve-address=127.0.0.1:8090")), /--serve-address "127\.0\.0\.1:8090" is not valid/],
  // The resolver reads these as names, kubelet and Go not at all: refused, as the sidecar refuses them.
  ["flags", HTTPGET, sidecar((c) => c.args.push("--serve-address=127.1")), /--serve-address "127\.1" is not valid/],
  ["flags", HTTPGET, sidecar((c) => c.args.push("--serve-address=[::1]:8090")), /--serve-address "\[::1\]:8090" is not valid/],
  // A token from a Secret given as `--shutdown-token=$(TOKEN)` is a token all the same.
  [
    "prestop-token",
    EXEC,
    (docs) => {
      sidecar((c) => {
        c.env[0].name = "TOKEN";
        c.args.push("--shutdown-token=$(TOKEN)");
      })(docs);
      envoy((c) => delete c.lifecycle.preStop.httpGet.httpHeaders)(docs);
    },
    /sends no Authorization header/,
  ],
  ["hook-missing", CONTOUR, sidecar((c) => delete c.lifecycle), /Contour's sidecar never starts a drain/],
  [
    "hook-mismatch",
    EXEC,
    sidecar((c) => Object.assign(c.lifecycle.preStop.exec, { command: ["/bin/contour", "envoy", "shutdown", "--ready-file=/admin/ok"] })),
    /its hook `envoy shutdown` runs Contour's/,
  ],
  ["ignored-flags", CONTOUR, sidecar((c) => c.args.push("--check-delay=10s")), /the sidecar's --check-delay is not used: on Contour's/],
  ["ignored-flags", EXEC, hook((command) => command.push("--check-delay=10s")), /the hook's --check-delay is not used: the sidecar owns/],
  [
    "hook-serve-port",
    EXEC,
    hook((command) => command.push("--serve-port=9000")),
    /looks for the sidecar on port 9000, but it serves on 8090/,
  ],
  [
    "sidecar-deadline",
    CONTOUR,
    (docs) => {
      sidecar((c) => c.args.push("--drain-timeout=30s"))(docs);
      hook((command) => command.push("--drain-timeout=60s"))(docs);
    },
    /the sidecar's --drain-timeout 30s is shorter than the hook's --drain-timeout 1m0s/,
  ],
  ["flags", HTTPGET, sidecar((c) => c.args.push("--check-delay=300s")), /--check-delay.* not shorter than --drain-timeout 5m0s/],
  ["flags", HTTPGET, sidecar((c) => c.args.push("--quiet-period=5m")), /--quiet-period 5m0s is not shorter than --drain-timeout 5m0s/],
  [
    "drain-impossible",
    CONTOUR,
    hook((command) => command.push("--drain-timeout=10s", "--check-delay=10s")),
    /Contour's hook `envoy shutdown`: .*--check-delay.* not shorter than --drain-timeout 10s/,
  ],
  [
    "envoy-liveness",
    RUN,
    (docs) => Object.assign(pod(docs).container("envoy"), { livenessProbe: { httpGet: { path: "/ready", port: 8002 } } }),
    /Envoy's liveness probe calls \/ready/,
  ],
  ["init-not-sidecar", NATIVE, sidecar((c) => delete c.restartPolicy), /an init container without restartPolicy: Always/],
  // `$$` is a literal `$`: the program gets "$(DRAIN_TIMEOUT)", as kubelet passes it.
  [
    "flags",
    HTTPGET,
    sidecar((c) => {
      c.env.push({ name: "DRAIN_TIMEOUT", value: "300s" });
      replace(c.args, "--drain-timeout=300s", "--drain-timeout=$$(DRAIN_TIMEOUT)");
    }),
    /--drain-timeout "\$\(DRAIN_TIMEOUT\)" is not valid/,
  ],
  [
    "env-unknown",
    HTTPGET,
    sidecar((c) => Object.assign(c, { envFrom: [{ configMapRef: { name: "drain" } }] })),
    /envFrom ConfigMap drain may set/,
  ],
  [
    "cpu-limit",
    HTTPGET,
    sidecar((c) => Object.assign(c.resources.limits, { cpu: "50000000n" })),
    /a CPU limit of 50000000n slows the hook/,
  ],
  [
    "memory-limit",
    HTTPGET,
    sidecar((c) => Object.assign(c.resources.limits, { memory: "32000k" })),
    /a memory limit of 32000k leaves no room/,
  ],
  ["memory-limit", HTTPGET, sidecar((c) => Object.assign(c.resources.limits, { memory: "128K" })), /"128K" is not a Kubernetes quantity/],
  // Another controller's workload: read where such workloads keep their pod spec, and said.
  ["unknown-workload", HTTPGET, kind("CloneSet", "apps.kruise.io/v1alpha1"), /CloneSet is not a workload kind check knows/],
  [
    "unread-command",
    HTTPGET,
    sidecar((c) => Object.assign(c, { command: ["/sbin/tini", "--", "envoy-shutdown-manager"] })),
    /names envoy-shutdown-manager \(or its preStop runs the hook\), but not as one of its command lines check can read/,
  ],
  // A misspelt command word: the program exits 2 on it, and the hook beside it would go unchecked.
  [
    "unread-command",
    CONTOUR,
    sidecar((c) => replace(c.args, "shutdown-manager", "shutdown-manger")),
    /starts \/bin\/contour with no command of it \("envoy shutdown-manger"\): it would exit 2 at start/,
  ],
  // Wrapped or renamed command lines are still read: a misspelled flag in them is found.
  [
    "flags",
    HTTPGET,
    sidecar((c) => {
      replace(c.args, "--drain-timeout=300s", "--drain-timout=300s");
      Object.assign(c, { command: ["/bin/sh", "-c", `exec envoy-shutdown-manager ${c.args.join(" ")}`], args: undefined });
    }),
    /unknown flag --drain-timout/,
  ],
  [
    "flags",
    HTTPGET,
    sidecar((c) =>
      Object.assign(c, { command: ["/opt/bin/esm"], args: c.args.map((a: string) => a.replace("--drain-timeout", "--drain-timout")) }),
    ),
    /unknown flag --drain-timout/,
  ],
];

/** Changes that Kubernetes and the program accept: each example stays free of errors, with its pod still wired. */
const FINE: [what: string, file: string, change: (docs: Doc[]) => unknown][] = [
  ["a host name that only looks like loopback", HTTPGET, sidecar((c) => c.args.push("--serve-address=127.example"))],
  [
    "a $(VAR) reference in args, expanded from env",
    HTTPGET,
    sidecar((c) => {
      c.env.push({ name: "DRAIN_TIMEOUT", value: "300s" });
      replace(c.args, "--drain-timeout=300s", "--drain-timeout=$(DRAIN_TIMEOUT)");
    }),
  ],
  [
    "a query string on the hook's path",
    HTTPGET,
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { path: "/shutdown?from=kubelet" })),
  ],
  ["the sidecar's own token as a flag", HTTPGET, sidecar((c) => c.args.push("--shutdown-token=change-me-to-a-long-random-string"))],
  ["quantities in other units", HTTPGET, sidecar((c) => Object.assign(c.resources.limits, { cpu: "200000000n", memory: "0.125Gi" }))],
  ["an Argo Rollout", HTTPGET, kind("Rollout", "argoproj.io/v1alpha1")],
  [
    "`sh -c 'exec envoy-shutdown-manager …'`",
    HTTPGET,
    sidecar((c) => Object.assign(c, { command: ["/bin/sh", "-c", `exec envoy-shutdown-manager ${c.args.join(" ")}`], args: undefined })),
  ],
  [
    "`sh -c` with a `$NAME` from a Secret",
    HTTPGET,
    sidecar((c) => {
      c.env.push({ name: "DT", valueFrom: { secretKeyRef: { name: "s", key: "k" } } });
      Object.assign(c, {
        command: ["sh", "-c", `exec envoy-shutdown-manager ${c.args.join(" ")} --check-interval="$DT"`],
        args: undefined,
      });
    }),
  ],
  ["the program under another file name", HTTPGET, sidecar((c) => Object.assign(c, { command: ["/opt/bin/esm"] }))],
  // A native sidecar's own preStop runs as termination starts, beside Envoy's: it may lead the drain.
  [
    "a native sidecar with its own exec hook",
    NATIVE,
    sidecar((c) =>
      Object.assign(c, { lifecycle: { preStop: { exec: { command: ["envoy-shutdown-manager", "shutdown", "--drain-timeout=300s"] } } } }),
    ),
  ],
  ["Envoy Gateway's hook path", HTTPGET, envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { path: "/shutdown/ready" }))],
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

  test.each(FINE)("%s passes (%s)", (_, file, change) => {
    const docs = example(file);
    change(docs);
    const { findings, wired } = checked(docs);
    expect(findings.filter((f) => f.severity === "error")).toEqual([]);
    expect(wired).toBe(1);
  });

  test("names that are JavaScript's own (valueOf, constructor) are plain text: no crash, no false wiring", () => {
    const docs = [
      { kind: "valueOf", metadata: { name: "a" }, spec: { template: { spec: { containers: [{ name: "x" }] } } } },
      {
        kind: "Pod",
        metadata: { name: "b" },
        spec: { containers: [{ name: "x", args: ["constructor"], env: [{ name: "toString", value: "1" }] }] },
      },
      { kind: "Pod", metadata: { name: "c" }, spec: { containers: [{ name: "x", args: ["envoy", "valueOf"] }] } },
      { kind: "Pod", metadata: { name: "d" }, spec: { containers: [{ name: "x", command: ["/bin/esm", "hasOwnProperty"] }] } },
    ];
    const { findings, wired } = checked(docs);
    expect(wired).toBe(0);
    expect(findings.map((f) => f.id)).toEqual(["unknown-workload"]);
  });

  test("an Argo Rollout is read: its broken port is found", () => {
    const docs = example(HTTPGET);
    kind("Rollout", "argoproj.io/v1alpha1")(docs);
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { port: 8091 }))(docs);
    expect(findingsOf(docs).map((f) => f.id)).toContain("prestop-port");
  });

  test("every finding at once: a misspelled flag says what was meant, and the checks that do not need it still run", () => {
    const docs = example(HTTPGET);
    sidecar((c) => replace(c.args, "--check-interval=5s", "--check-intervl=5s"))(docs);
    envoy((c) => Object.assign(c.lifecycle.preStop.httpGet, { port: 8091 }))(docs);
    sidecar((c) => Object.assign(c.resources.limits, { cpu: "50m" }))(docs);
    const found = findingsOf(docs);
    expect(found.map((f) => f.id).sort()).toEqual(["cpu-limit", "flags", "prestop-port"]);
    const flags = found.find((f) => f.id === "flags");
    expect(flags?.message).toMatch(/unknown flag --check-intervl: did you mean --check-interval\?/);
    expect(flags?.fix).toBe("write --check-interval");
  });

  test("a misspelled deadline skips the checks that need it, rather than judging the default", () => {
    const docs = example(HTTPGET);
    sidecar((c) => replace(c.args, "--drain-timeout=300s", "--drain-timout=300s"))(docs);
    expect(findingsOf(docs).map((f) => f.id)).toEqual(["flags"]);
  });

  test("the grace-period advice never leads to a drain that cannot complete: followed, it passes", () => {
    const docs = example(HTTPGET);
    // A --check-delay longer than Kubernetes' default grace period (30 s).
    sidecar((c) => {
      c.args = c.args.filter((arg: string) => !/^--(check-delay|drain-timeout)=/.test(arg));
      c.args.push("--check-delay=40s");
    })(docs);
    delete pod(docs).spec.terminationGracePeriodSeconds;
    const advice = findingsOf(docs).find((f) => f.id === "no-drain-timeout")?.fix ?? "";
    const [, timeout, grace] = /set --drain-timeout to (\S+) .* terminationGracePeriodSeconds to at least (\d+)/.exec(advice) ?? [];
    expect(timeout).toBeDefined();
    sidecar((c) => c.args.push(`--drain-timeout=${timeout}`))(docs);
    pod(docs).spec.terminationGracePeriodSeconds = Number(grace);
    expect(findingsOf(docs)).toEqual([]);
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

/** The CLI with this standard input. */
const stdinCli = (args: string[], stdin: Blob | string) =>
  Bun.spawn([process.execPath, new URL("../src/cli/main.ts", import.meta.url).pathname, ...args], {
    stdin: typeof stdin === "string" ? new Blob([stdin]) : stdin,
    stdout: "pipe",
    stderr: "pipe",
  });

describe("input", () => {
  test("standard input and JSON output: `kubectl kustomize … | check - --format json`", async () => {
    const cli = stdinCli(["check", "-", "--format", "json"], new Blob([readFileSync(join(EXAMPLES, "envoy-daemonset-exec.yaml"))]));
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

  test("a path that does not exist is exit 2", async () => {
    const missing = spawnCli(["check", "/nonexistent/manifests"]);
    expect(await within(10_000, missing.exited)).toBe(2);
    expect(missing.stderrText()).toContain("/nonexistent/manifests: cannot be read (ENOENT");
  });

  test("no silent pass: no pod of this program, or no document at all, is named on stdout and fails under --strict", async () => {
    const file = join(tempDir(), "config.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: {}\n");
    const none = spawnCli(["check", file]);
    expect(await within(10_000, none.exited)).toBe(0);
    expect(await none.stdout()).toMatch(/^warning +nothing-wired .*no pod in the input runs envoy-shutdown-manager/m);
    expect(await within(10_000, spawnCli(["check", file, "--strict"]).exited)).toBe(1);
    for (const strict of [[], ["--strict"]]) {
      const empty = stdinCli(["check", "-", ...strict], "");
      const [code, out] = await within(10_000, Promise.all([empty.exited, new Response(empty.stdout).text()]));
      expect(out).toMatch(/^warning +empty-input .*the input holds no document/m);
      expect(code).toBe(strict.length);
    }
  });

  test("the summary line says what was read and found; a file named twice is read once", async () => {
    const cli = spawnCli(["check", join(EXAMPLES, HTTPGET), join(EXAMPLES, EXEC), `${EXAMPLES}/./${HTTPGET}`]);
    const [code, out] = await within(10_000, Promise.all([cli.exited, cli.stdout()]));
    expect(code).toBe(0);
    expect(out).toBe("2 files, 2 documents, 2 pods wired, 0 errors, 0 warnings\n");
    // Standard input redirected from a file named too (`check f - < f`) is that file.
    const redirected = stdinCli(["check", join(EXAMPLES, HTTPGET), "-"], Bun.file(join(EXAMPLES, HTTPGET)));
    expect(await within(10_000, new Response(redirected.stdout).text())).toBe("1 file, 1 document, 1 pod wired, 0 errors, 0 warnings\n");
  });

  /** The httpget example with a broken port, its documents joined by `separator`. */
  const broken = (separator: string, preamble = "") => {
    const docs = example(HTTPGET);
    pod(docs).container("envoy").lifecycle.preStop.httpGet.port = 8091;
    const config = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n";
    return `${preamble}${config}${separator}${docs.map((doc) => Bun.YAML.stringify(doc, null, 2)).join(separator)}`;
  };

  test.each([
    ["`--- # comment`", broken("--- # the Deployment\n"), "x.yaml"],
    ["`--- !!map`", broken("--- !!map\n"), "x.yaml"],
    ["a `%YAML 1.2` directive", broken("---\n", "%YAML 1.2\n---\n"), "x.yaml"],
    ["CRLF line ends", broken("---\n").replaceAll("\n", "\r\n"), "x.yaml"],
    ["a `.YAML` file", broken("---\n"), "X.YAML"],
    ["a `.yml` file", broken("---\n"), "x.yml"],
  ])("%s: the document is read, in a directory too", async (_, text, name) => {
    const dir = tempDir();
    writeFileSync(join(dir, name), text);
    const cli = spawnCli(["check", dir, "--strict"]);
    const [code, out] = await within(10_000, Promise.all([cli.exited, cli.stdout()]));
    expect(out).toContain("prestop-port");
    expect(out).toContain("1 file, 2 documents, 1 pod wired, 1 error");
    expect(code).toBe(1);
  });

  /** `check` on a directory holding one hostile entry: exit 2 in one line naming it, quickly. */
  async function refused(make: (path: string) => unknown, name = "hostile.yaml") {
    const dir = tempDir();
    writeFileSync(join(dir, "a.yaml"), readFileSync(join(EXAMPLES, HTTPGET)));
    const path = join(dir, name);
    await make(path);
    const cli = spawnCli(["check", dir]);
    expect(await within(10_000, cli.exited)).toBe(2);
    expect(cli.stderrText().trim().split("\n")).toHaveLength(1);
    expect(cli.stderrText()).toContain(path);
    return cli.stderrText();
  }

  test("a FIFO named *.yaml in a directory is refused, never opened", async () => {
    expect(await refused((path) => Bun.spawnSync(["mkfifo", path]))).toContain("a FIFO");
  });

  test("dangling and looping links, and sockets, are refused naming the entry", async () => {
    expect(await refused((path) => symlinkSync("/nonexistent/target.yaml", path))).toContain("a link to nothing");
    expect(await refused((path) => symlinkSync(path, path))).toContain("a loop of links");
    const server = (path: string) => Bun.listen({ unix: path, socket: { data() {} } });
    let listener: ReturnType<typeof server> | undefined;
    expect(await refused((path) => (listener = server(path)))).toContain("a socket");
    listener?.stop(true);
  });

  test("a link back up the tree is read once", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "a.yaml"), readFileSync(join(EXAMPLES, HTTPGET)));
    symlinkSync(dir, join(dir, "up"));
    const cli = spawnCli(["check", dir]);
    expect(await within(10_000, cli.exited)).toBe(0);
    expect(await cli.stdout()).toContain("1 file, 1 document, 1 pod wired");
  });

  test("100,000 nested Lists are refused in one line, as JSON and as YAML", async () => {
    const depth = 100_000;
    const json = `${'{"kind":"List","items":['.repeat(depth)}${"]}".repeat(depth)}`;
    for (const [name, text] of [
      ["deep.json", json],
      ["deep.yaml", json],
    ]) {
      const file = join(tempDir(), name as string);
      writeFileSync(file, text as string);
      const cli = spawnCli(["check", file]);
      expect(await within(10_000, cli.exited)).toBe(2);
      expect(cli.stderrText()).toMatch(/deep\.(json|yaml):1: .*nested/);
      expect(cli.stderrText().trim().split("\n")).toHaveLength(1);
    }
  });

  test("more documents than the cap are refused in one line", async () => {
    const file = join(tempDir(), "many.yaml");
    writeFileSync(file, "---\na: 1\n".repeat(MAX_DOCUMENTS + 1));
    const cli = spawnCli(["check", file]);
    expect(await within(10_000, cli.exited)).toBe(2);
    expect(cli.stderrText()).toContain("many.yaml: more than 100,000 documents in the input");
  });

  test("standard input named twice is one line and exit 2, never a crash", async () => {
    const cli = stdinCli(["check", "-", "-"], new Blob([readFileSync(join(EXAMPLES, "envoy-daemonset-exec.yaml"))]));
    const [code, err] = await within(10_000, Promise.all([cli.exited, new Response(cli.stderr).text()]));
    expect(code).toBe(2);
    expect(err).toStartWith("envoy-shutdown-manager: - is named more than once: standard input is read once");
    expect(err.trimEnd().split("\n")).toHaveLength(1);
  });

  test("standard input past the size cap is refused, reading stops", async () => {
    const cli = stdinCli(["check", "-"], new Blob([new Uint8Array(MAX_INPUT_BYTES + 1).fill(0x20)]));
    const [code, err] = await within(10_000, Promise.all([cli.exited, new Response(cli.stderr).text()]));
    expect(code).toBe(2);
    expect(err).toContain("<stdin>: the input is larger than 32 MiB");
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
