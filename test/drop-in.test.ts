/**
 * Contour's and Envoy Gateway's container arguments, unchanged, against the compiled executable started under their
 * names (the image links `/bin/contour` and `envoy-gateway` to it). Only the environment points the processes at
 * the test's fake Envoy, ports and files.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { compiledAs, compiledExecutable } from "./support/compiled.ts";
import type { FakeEnvoyOptions } from "./support/fake-envoy.ts";
import { closesAfter, fakeEnvoy, tempDir } from "./support/fixtures.ts";
import { spawnCli, within } from "./support/process.ts";

await compiledExecutable(); // built before the tests' clocks start
const ROOT = new URL("..", import.meta.url).pathname;

// Contour's command lines, as its DaemonSet (examples/contour) starts the shutdown manager and runs its hook.
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, read field by field
const contourDaemonSet = Bun.YAML.parse(readFileSync(`${ROOT}examples/contour/envoy-daemonset.yaml`, "utf8")) as any;
const contourContainer = contourDaemonSet.spec.template.spec.containers.find((c: { name: string }) => c.name === "shutdown-manager");
const [contourExecutable = ""] = contourContainer.command as string[];
const contourSidecarArgs = contourContainer.args as string[];
const [hookExecutable, ...contourHookArgs] = contourContainer.lifecycle.preStop.exec.command as string[];

/** Starts a sidecar with `args` as the other tool's manifest has them; resolves with its port. */
async function startSidecar(cli: string, args: string[], env: Record<string, string>) {
  const sidecar = spawnCli(args, { cli: [cli], env: { ...env, ENVOY_SHUTDOWN_SERVE_PORT: "0" } });
  const listening = await sidecar.waitForLog((line) => line.msg === "shutdown-manager listening");
  return { sidecar, port: listening.port as number };
}

/** Runs a hook command line as kubelet would, under another tool's name, joined to the sidecar on `port`. */
function execHook(cli: string, args: string[], env: Record<string, string>, port: number) {
  return spawnCli(args, { cli: [cli], env: { ...env, ENVOY_SHUTDOWN_SERVE_PORT: String(port) } });
}

describe("Contour's DaemonSet: `contour envoy shutdown-manager` and the preStop `contour envoy shutdown`", () => {
  test("the image starts the executable under the name Contour's manifest uses", () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, "utf8");
    expect(dockerfile).toContain(`ln -s /usr/local/bin/envoy-shutdown-manager /out/bin/${basename(contourExecutable)}`);
    expect(dockerfile).toContain("COPY --from=build /out/bin/ /bin/");
    expect(contourExecutable).toBe("/bin/contour");
    expect(dockerfile).toContain("ln -s envoy-shutdown-manager /out/local-bin/envoy-gateway");
  });

  test("the unchanged arguments drain Envoy with Contour's meaning: HTTP connections counted, first count at once", async () => {
    const dir = tempDir();
    const socket = join(dir, "admin.sock");
    const fake = await fakeEnvoy({ unixSocket: socket, connections: 2, timeline: [{ afterFailMs: 300, connections: 0 }] });
    const env = {
      ENVOY_SHUTDOWN_ADMIN_ADDRESS: socket,
      ENVOY_SHUTDOWN_READY_FILE: join(dir, "ok"),
      ENVOY_SHUTDOWN_CHECK_INTERVAL: "100ms",
    };
    expect(hookExecutable).toBe(contourExecutable);
    const contour = await compiledAs(basename(contourExecutable));
    const { sidecar, port } = await startSidecar(contour, contourSidecarArgs, env);
    // kubelet: Envoy's httpGet /shutdown, and the sidecar's exec hook, at once.
    const envoyHook = fetch(`http://127.0.0.1:${port}/shutdown`);
    const hook = execHook(contour, contourHookArgs, env, port);
    expect(await within(10_000, hook.exited)).toBe(0);
    expect((await within(5000, envoyHook)).status).toBe(200);
    expect(readFileSync(join(dir, "ok"), "utf8")).toBe("drained\n");
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(1);
    // The hook drained Envoy; the sidecar only waited for its ready file.
    expect(hook.lines.some((line) => line.msg === "drain started")).toBe(true);
    expect(sidecar.lines.some((line) => line.msg === "drain started")).toBe(false);
    // Contour counts HTTP connection managers from the Prometheus output, and begins right after the fail.
    const polls = fake.calls("/stats/prometheus");
    expect(polls.length).toBeGreaterThan(0);
    expect((polls[0]?.at ?? 0) - (fake.calls("/healthcheck/fail")[0]?.at ?? 0)).toBeLessThan(1000);
  });

  test("the hook's own --drain-delay and --check-delay hold when Envoy's /shutdown arrives first", async () => {
    const dir = tempDir();
    const fake = await fakeEnvoy({ connections: 0 });
    const env = { ENVOY_SHUTDOWN_ADMIN_ADDRESS: fake.adminAddress, ENVOY_SHUTDOWN_READY_FILE: join(dir, "ok") };
    const contour = await compiledAs("contour");
    const { port } = await startSidecar(contour, contourSidecarArgs, env);
    const started = Date.now();
    const envoyHook = fetch(`http://127.0.0.1:${port}/shutdown`);
    await Bun.sleep(100); // kubelet's httpGet first: it must not start a drain on the sidecar's settings
    const hook = execHook(
      contour,
      ["envoy", "shutdown", "--drain-delay=600ms", "--check-delay=600ms", "--check-interval=100ms"],
      env,
      port,
    );
    expect(await within(10_000, hook.exited)).toBe(0);
    expect((await within(5000, envoyHook)).status).toBe(200);
    const failedAt = fake.calls("/healthcheck/fail", "POST")[0]?.at ?? 0;
    expect(failedAt - started).toBeGreaterThanOrEqual(600);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
  });

  test("every flag Contour's commands take is accepted, --admin-port too (and ignored)", async () => {
    const dir = tempDir();
    const socket = join(dir, "admin.sock");
    const fake = await fakeEnvoy({ unixSocket: socket, connections: 0 });
    const contour = await compiledAs("contour");
    const readyFile = join(dir, "ok");
    const hook = spawnCli(
      ["envoy", "shutdown", `--admin-address=${socket}`, "--admin-port=9001", "--check-delay=0s", "--check-interval=100ms"].concat([
        "--drain-delay=0s",
        "--min-open-connections=0",
        `--ready-file=${readyFile}`,
      ]),
      { cli: [contour], env: { ENVOY_SHUTDOWN_SERVE_PORT: "0" } },
    );
    expect(await within(5000, hook.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    const sidecar = spawnCli(["envoy", "shutdown-manager", "--serve-port=0", `--ready-file=${readyFile}`], { cli: [contour] });
    await sidecar.waitForLog((line) => line.msg === "shutdown-manager listening");
  });
});

/**
 * An Envoy Gateway pod at termination: the sidecar as its manifest starts it, Envoy's preStop `GET /shutdown/ready`
 * already waiting, and `hookWith` to run the sidecar container's preStop `envoy shutdown` with the given flags.
 */
async function gatewayPod(envoy: FakeEnvoyOptions) {
  const readyFile = join(tempDir(), "shutdown-ready");
  const fake = await fakeEnvoy(envoy);
  const env = { ENVOY_SHUTDOWN_ADMIN_ADDRESS: fake.adminAddress, ENVOY_SHUTDOWN_READY_FILE: readyFile };
  const gateway = await compiledAs("envoy-gateway");
  const { sidecar, port } = await startSidecar(gateway, ["envoy", "shutdown-manager", "--ready-timeout=610s"], env);
  const envoyHook = fetch(`http://127.0.0.1:${port}/shutdown/ready`);
  const hookWith = (flags: string[]) => execHook(gateway, ["envoy", "shutdown", ...flags], env, port);
  return { fake, sidecar, port, envoyHook, hookWith, readyFile };
}

describe("Envoy Gateway's proxy: `envoy-gateway envoy shutdown-manager` and the preStop `envoy-gateway envoy shutdown`", () => {
  test("the unchanged arguments drain Envoy: no listener drain, /shutdown/ready released, never before --min-drain-duration", async () => {
    const { fake, envoyHook, hookWith } = await gatewayPod(closesAfter(1, 200));
    const started = Date.now();
    // The hook's minimum governs (the sidecar's default of 10 s is not the hook's setting): 1 s keeps the test short.
    const hook = hookWith(["--drain-timeout=60s", "--min-drain-duration=1s", "--exit-at-connections=0"]);
    expect(await within(10_000, hook.exited)).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await within(5000, envoyHook)).status).toBe(200);
    expect(fake.calls("/healthcheck/fail", "POST")).toHaveLength(1);
    expect(fake.calls("/drain_listeners", "POST")).toEqual([]);
  });

  test("the hook's --exit-at-connections holds in the sidecar's drain: 1 open connection is done at 1", async () => {
    const { envoyHook, hookWith, readyFile } = await gatewayPod({ connections: 1 });
    const hook = hookWith(["--drain-timeout=5s", "--min-drain-duration=0s", "--exit-at-connections=1"]);
    expect(await within(10_000, hook.exited)).toBe(0);
    expect((await within(5000, envoyHook)).status).toBe(200);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });

  test("a previous release's hook joining the sidecar is answered 409, so it drains Envoy itself; nothing starts a drain there", async () => {
    const { fake, sidecar, port, envoyHook, hookWith } = await gatewayPod({ connections: 1 });
    const join = await fetch(`http://127.0.0.1:${port}/shutdown/ready`, {
      method: "POST",
      body: JSON.stringify({ drain: { minOpenConnections: 1_000_000 } }),
    });
    expect(join.status).toBe(409);
    await Bun.sleep(300);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    // This release's hook never asks: it drains Envoy and writes the ready file.
    const hook = hookWith(["--drain-timeout=5s", "--min-drain-duration=0s", "--exit-at-connections=1"]);
    expect(await within(10_000, hook.exited)).toBe(0);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
    expect((await within(5000, envoyHook)).status).toBe(200);
    expect(sidecar.lines.some((line) => line.msg === "drain started")).toBe(false);
  });
});
