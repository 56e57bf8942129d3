/** The compiled executable's sidecar and hook (the supervisor runs compiled in supervisor.test.ts). */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./support/clients.ts";
import { compiledExecutable } from "./support/compiled.ts";
import { closesAfter, fakeEnvoy, fastDrain, tempDir } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";

const binary = await compiledExecutable();

describe("the compiled executable", () => {
  test("prints --help", async () => {
    const cli = spawnCli(["shutdown-manager", "--help"], { cli: [binary] });
    const [code, help] = await Promise.all([cli.exited, cli.stdout()]);
    expect(code).toBe(0);
    expect(help).toContain("--check-interval");
  });

  test("started as Envoy Gateway, prints its help under its own command line", async () => {
    const cli = spawnCli(["envoy", "shutdown", "--help"], { cli: [binary], argv0: "envoy-gateway" });
    const [code, help] = await Promise.all([cli.exited, cli.stdout()]);
    expect(code).toBe(0);
    expect(help).toContain("envoy-gateway envoy shutdown [OPTIONS]");
    expect(help).toContain("--exit-at-connections");
  });

  test("serves /healthz and completes a drain", async () => {
    const fake = await fakeEnvoy(closesAfter(1, 300));
    const manager = await startManager(fastDrain(fake.adminAddress).args, { cli: [binary] });
    expect(await (await fetch(`${manager.url}/healthz`)).text()).toBe("OK");
    const response = await within(10_000, fetch(`${manager.url}/shutdown`));
    expect(response.status).toBe(200);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(1);
  });

  test("takes no settings from a .env file in its working directory", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, ".env"), "ENVOY_SHUTDOWN_LOG_LEVEL=loud\n");
    // `status` against a port where no sidecar listens: exit 1 as it should, not 2 for a log level it never read.
    const status = Bun.spawn([binary, "status", "--serve-port", String(freePort())], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stderr] = await Promise.all([status.exited, new Response(status.stderr).text()]);
    expect(stderr).not.toContain("loud");
    expect(code).toBe(1);
  });
});
