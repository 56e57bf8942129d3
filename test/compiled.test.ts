import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { fakeEnvoy, fastDrain } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";
import { startSupervised } from "./support/supervised.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const binary = join(ROOT, "dist", "envoy-shutdown-manager");

beforeAll(async () => {
  const build = Bun.spawn([process.execPath, "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const code = await within(60_000, build.exited, "bun build --compile");
  if (code !== 0) throw new Error(`build failed: ${await new Response(build.stderr).text()}`);
}, 70_000);

describe("the compiled executable", () => {
  test("prints --help", async () => {
    const cli = spawnCli(["shutdown-manager", "--help"], { cli: [binary] });
    const [code, help] = await Promise.all([cli.exited, cli.stdout()]);
    expect(code).toBe(0);
    expect(help).toContain("--check-interval");
  });

  test("serves /healthz and completes a drain", async () => {
    const fake = await fakeEnvoy({ connections: 1, timeline: [{ afterFailMs: 300, connections: 0 }] });
    const manager = await startManager(fastDrain(fake.adminAddress).args, { cli: [binary] });
    expect(await (await fetch(`${manager.url}/healthz`)).text()).toBe("OK");
    const response = await within(10_000, fetch(`${manager.url}/shutdown`));
    expect(response.status).toBe(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("supervises Envoy: SIGTERM drains, then stops it, and the exit code is Envoy's", async () => {
    const { supervisor } = await startSupervised([], [], { cli: [binary] });
    supervisor.proc.kill("SIGTERM");
    const sigterm = await supervisor.waitForLog((line) => line.fake === "sigterm", 5000);
    expect(sigterm.health_check_failed).toBe(true);
    expect(await within(5000, supervisor.exited)).toBe(0);
  });
});
