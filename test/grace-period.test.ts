/**
 * The grace period kubelet really gives: a pod deleted with a grace period shorter than the drain's flags allow
 * (eviction, preemption, `kubectl drain --grace-period`) ends the drain before kubelet's SIGKILL, read from the pod's
 * metadata on a fake API server over TLS. Reading it never delays, extends or fails a drain, and is said once when it
 * cannot be done.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { deadlineFrom, GRACE_MARGIN_MS } from "../src/kube/grace-period.ts";
import { API_CALL_TIMEOUT_MS } from "../src/kube/in-cluster.ts";
import { fakeApiServer, podBeingDeleted, podEnvironment } from "./support/fake-kube-api.ts";
import { fakeEnvoy, fastDrain, tempDir } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";
import { FAKE_ENVOY_CLI, fakeSaid } from "./support/supervised.ts";

/** Flags sized for a 300 s grace period: nothing in them ends the drain within the few seconds the pod really has. */
const LONG_FLAGS = ["--drain-timeout", "300s", "--check-delay", "60s"];

/** The time-out line a drain cut by a grace period of `seconds` logs. */
const cutBy = (seconds: number) => `drain timed out 3s before kubelet's SIGKILL (its grace period of ${seconds}s)`;

/** A pod deleted just now with a grace period of `seconds`, as the API serves it, and the environment to reach it. */
function podDeletedWithGrace(seconds: number) {
  const api = fakeApiServer((request) =>
    request.method === "GET" ? podBeingDeleted(api.target, seconds) : new Response("{}", { status: 201 }),
  );
  return { api, env: podEnvironment(api.target) };
}

/** Runs the exec hook draining alone (no sidecar) in the pod `env` describes; resolves with its exit code and how long it took. */
async function hookAlone(env: Record<string, string>, args: string[]) {
  const fake = await fakeEnvoy({ connections: 2 });
  const { args: drainArgs, readyFile } = fastDrain(fake.adminAddress, args);
  const started = performance.now();
  const cli = spawnCli(["shutdown", "--serve-port", "0", ...drainArgs], { env });
  const code = await within(15_000, cli.exited, "shutdown");
  return { cli, code, tookMs: performance.now() - started, readyFile };
}

describe("when the drain must end", () => {
  const deletion = (seconds: number, deletedAt: number) => ({
    deletionTimestamp: new Date(deletedAt + seconds * 1000).toISOString(),
    deletionGracePeriodSeconds: seconds,
  });

  test("a margin before the grace period's end, counted from the drain's start as kubelet counts it", () => {
    const now = Date.now();
    expect(deadlineFrom(deletion(30, now), now)).toEqual({ endsAt: now + 30_000 - GRACE_MARGIN_MS, gracePeriodMs: 30_000, marginMs: 3000 });
  });

  test("by the API's deletion time when that is earlier (a drain that started late, or a clock behind the API server's)", () => {
    const now = Date.now();
    expect(deadlineFrom(deletion(30, now - 10_000), now)).toMatchObject({ endsAt: now + 20_000 - GRACE_MARGIN_MS });
  });

  test("a grace period shorter than twice the margin keeps half of it for the drain; none at all ends it at once", () => {
    const now = Date.now();
    expect(deadlineFrom(deletion(4, now), now)).toMatchObject({ endsAt: now + 2000, marginMs: 2000 });
    expect(deadlineFrom(deletion(0, now), now)).toMatchObject({ endsAt: now });
  });

  test("a pod that is not being deleted has no grace period to read", () => {
    expect(deadlineFrom({}, Date.now())).toContain("the pod is not being deleted");
  });
});

describe("a grace period cut short ends the drain before kubelet's SIGKILL", () => {
  test("the exec hook draining alone: timed out, said with the grace period, ready file written, exit 1, inside 6 s", async () => {
    const { api, env } = podDeletedWithGrace(6);
    const { cli, code, tookMs, readyFile } = await hookAlone(env, LONG_FLAGS);
    expect(code).toBe(1);
    expect(tookMs).toBeLessThan(6000 - 1000);
    expect(readFileSync(readyFile, "utf8")).toBe("timed_out\n");
    expect(cli.lines.filter((line) => String(line.msg).startsWith(cutBy(6)))).toHaveLength(1);
    expect(api.requests).toEqual([
      {
        method: "GET",
        path: "/api/v1/namespaces/edge/pods/envoy-7d9f8-abcde",
        authorization: "Bearer service-account-token",
        accept: expect.stringContaining("as=PartialObjectMetadata"),
        body: undefined,
      },
    ]);
  });

  test("the sidecar's drain, and an exec hook joined to it: both end inside 6 s, the hook with the ready file", async () => {
    const { env } = podDeletedWithGrace(6);
    const fake = await fakeEnvoy({ connections: 2 });
    const { args, readyFile } = fastDrain(fake.adminAddress, LONG_FLAGS);
    const manager = await startManager([...args, "--ready-file", ""], { env });
    const started = performance.now();
    const shutdown = fetch(`${manager.url}/shutdown`, { method: "POST" });
    const hook = spawnCli(["shutdown", "--serve-port", String(manager.port), ...args], { env });
    expect(await within(15_000, hook.exited, "shutdown")).toBe(1);
    expect(performance.now() - started).toBeLessThan(6000 - 1000);
    expect(readFileSync(readyFile, "utf8")).toBe("timed_out\n");
    expect((await within(15_000, shutdown)).status).toBe(504);
    expect(performance.now() - started).toBeLessThan(6000 - 1000);
    await manager.waitForLog((line) => String(line.msg).startsWith(cutBy(6)), 1000);
  });

  test("`run`: a stop signal's drain ends inside 6 s, and Envoy gets its SIGTERM inside the grace period", async () => {
    const { env } = podDeletedWithGrace(6);
    const dir = tempDir();
    const socket = join(dir, "admin.sock");
    const envoy = [process.execPath, FAKE_ENVOY_CLI, "--admin-socket", socket, "--info-dir", dir, "--stuck-connections", "2"];
    const run = spawnCli(
      ["run", "--serve-address", "127.0.0.1", "--serve-port", "0", "--admin-address", socket, ...LONG_FLAGS, "--", ...envoy],
      {
        env,
      },
    );
    await run.waitForLog((line) => line.msg === "Envoy's admin API answers");
    const signalledAt = Date.now();
    run.proc.kill("SIGTERM");
    const sigterm = await run.waitForLog(fakeSaid("sigterm"), 6000);
    expect(Number(sigterm.at) - signalledAt).toBeLessThan(6000 - 1000);
    await within(6000, run.exited, "run");
    expect(run.lines.filter((line) => String(line.msg).startsWith(cutBy(6)))).toHaveLength(1);
  });

  test("without API access, the flags alone apply, said once: an API server that refuses", async () => {
    const api = fakeApiServer(() => new Response('{"kind":"Status","code":403}', { status: 403 }));
    const { cli, code, tookMs } = await hookAlone(podEnvironment(api.target), ["--drain-timeout", "1s"]);
    expect(code).toBe(1);
    expect(tookMs).toBeGreaterThanOrEqual(1000);
    const said = cli.lines.filter((line) => String(line.msg).startsWith("the pod's grace period is not known"));
    expect(said.map((line) => line.msg)).toEqual([expect.stringContaining("HTTP 403")]);
    expect(String(said[0]?.msg)).toContain("get on pods");
  });

  test("a pod that is not being deleted (a container restart): the flags alone apply, said once", async () => {
    const api = fakeApiServer(() => Response.json({ metadata: { name: "envoy-7d9f8-abcde" } }));
    const { cli, code } = await hookAlone(podEnvironment(api.target), ["--drain-timeout", "1s"]);
    expect(code).toBe(1);
    const said = cli.lines.filter((line) => String(line.msg).startsWith("the pod's grace period is not known"));
    expect(said.map((line) => line.msg)).toEqual([expect.stringContaining("the pod is not being deleted")]);
  });

  test("--no-pod-grace-period does not ask", async () => {
    const { api, env } = podDeletedWithGrace(6);
    const { code, tookMs } = await hookAlone(env, ["--drain-timeout", "1s", "--no-pod-grace-period"]);
    expect(code).toBe(1);
    expect(tookMs).toBeGreaterThanOrEqual(1000);
    expect(api.requests).toEqual([]);
  });
});

describe("an API server that hangs neither delays nor extends the drain", () => {
  const hanging = () => fakeApiServer(() => new Promise<Response>(() => {}));

  test("a drain that completes at once exits at once, not after the read's bound", async () => {
    const api = hanging();
    const fake = await fakeEnvoy({ connections: 0 });
    const { args, readyFile } = fastDrain(fake.adminAddress, ["--drain-timeout", "300s"]);
    const started = performance.now();
    const cli = spawnCli(["shutdown", "--serve-port", "0", ...args], { env: podEnvironment(api.target) });
    expect(await within(15_000, cli.exited)).toBe(0);
    expect(performance.now() - started).toBeLessThan(API_CALL_TIMEOUT_MS);
    expect(readFileSync(readyFile, "utf8")).toBe("drained\n");
  });

  test("a drain that runs to its --drain-timeout ends then, neither sooner nor later; the read gives up once, said", async () => {
    const api = hanging();
    const { cli, code, tookMs } = await hookAlone(podEnvironment(api.target), ["--drain-timeout", "3s"]);
    expect(code).toBe(1);
    expect(tookMs).toBeGreaterThanOrEqual(3000);
    expect(tookMs).toBeLessThan(3000 + 1500);
    const said = cli.lines.filter((line) => String(line.msg).startsWith("the pod's grace period is not known"));
    expect(said.map((line) => line.msg)).toEqual([expect.stringContaining(`no answer within ${API_CALL_TIMEOUT_MS} ms`)]);
  });
});
