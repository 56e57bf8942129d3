/**
 * `run` with an admin address that gives no usable answer: a wrong --admin-address must not keep Envoy running after
 * a stop signal, nor end in exit 0. Its own file: the bound it checks is about 10 s of real time, which runs beside
 * the other files.
 */
import { describe, expect, test } from "bun:test";
import { compiledExecutable } from "./support/compiled.ts";
import { within } from "./support/process.ts";
import { fakeSaid, startSupervised } from "./support/supervised.ts";
import { onTeardown } from "./support/teardown.ts";

const cli = [await compiledExecutable()];

/** An HTTP server on loopback that answers 404 to everything: another program at the admin address. */
function answers404(): string {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("not found\n", { status: 404 }) });
  onTeardown(() => server.stop(true));
  return `127.0.0.1:${server.port}`;
}

/** A port on loopback that accepts connections and never answers. */
function neverAnswers(): string {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  onTeardown(() => listener.stop(true));
  return `127.0.0.1:${listener.port}`;
}

describe("an admin address that gives no usable answer, under run", () => {
  test.each([
    ["refuses (nothing there)", () => "/nonexistent/admin.sock", "Envoy's admin API never answered at /nonexistent/admin.sock"],
    ["answers 404", answers404, "answers, but not as Envoy's admin API; check --admin-address"],
    ["accepts and never answers", neverAnswers, "Envoy's admin API never answered at 127.0.0.1:"],
  ])(
    "one that %s: Envoy is stopped within about 10 s of the SIGTERM, the log says why, exit 1",
    async (_, address, why) => {
      const { supervisor } = await startSupervised(["--admin-address", address(), "--admin-timeout", "1s"], [], {
        cli,
        waitForAdmin: false,
      });
      const signalled = Date.now();
      supervisor.proc.kill("SIGTERM");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 15_000);
      expect(Number(sigterm.at) - signalled).toBeLessThan(12_000);
      expect(await within(3000, supervisor.exited)).toBe(1);
      expect(supervisor.stderrText()).toContain(why);
    },
    20_000,
  );
});
