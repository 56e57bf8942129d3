/**
 * `run` with an admin address that never answers: a wrong --admin-address must not keep Envoy running after a stop
 * signal. Its own file: the bound it checks is about 10 s of real time, which runs beside the other files.
 */
import { describe, expect, test } from "bun:test";
import { compiledExecutable } from "./support/compiled.ts";
import { within } from "./support/process.ts";
import { fakeSaid, startSupervised } from "./support/supervised.ts";

const cli = [await compiledExecutable()];

describe("an admin address that never answers, under run", () => {
  test("Envoy is stopped within about 10 s of the SIGTERM, the log says why, and the exit code is 1", async () => {
    const { supervisor } = await startSupervised(["--admin-address", "/nonexistent/admin.sock"], [], {
      cli,
      waitForAdmin: false,
    });
    const signalled = Date.now();
    supervisor.proc.kill("SIGTERM");
    const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 15_000);
    expect(Number(sigterm.at) - signalled).toBeLessThan(12_000);
    expect(await within(3000, supervisor.exited)).toBe(1);
    expect(supervisor.stderrText()).toContain("Envoy's admin API never answered at /nonexistent/admin.sock; check --admin-address");
  }, 20_000);
});
