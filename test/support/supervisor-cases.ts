/**
 * `run -- envoy ...` end to end: the real CLI supervising the fake Envoy program, driven by real signals. The cases
 * run once through `bun` on the source (supervisor.test.ts) and once through the compiled executable
 * (supervisor-compiled.test.ts): two files, so that the two runs go in parallel.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type KeepAliveClient, openClient, openClients } from "./clients.ts";
import { tempDir } from "./fixtures.ts";
import { type CliProcess, spawnCli, within } from "./process.ts";
import { fakePid, fakeSaid, startSupervised } from "./supervised.ts";
import { onTeardown } from "./teardown.ts";

/**
 * Clients sending requests back to back, as through a load balancer: a `connection: close` takes a client away
 * from this Envoy for good. A request fails when its connection dies before the answer.
 */
async function busyClients(port: number, count: number) {
  let running = true;
  let failed = 0;
  let served = 0;
  const loop = async (client: KeepAliveClient) => {
    while (running) {
      try {
        const response = await client.request();
        served += 1;
        if (response.includes("connection: close")) return;
      } catch {
        failed += 1;
        return;
      }
    }
    client.close();
  };
  const loops = (await Promise.all(Array.from({ length: count }, () => openClient(port)))).map(loop);
  const stop = async () => {
    running = false;
    await Promise.all(loops);
    return { failed, served };
  };
  onTeardown(stop);
  return { stop };
}

/** Whether a process runs (a zombie waiting to be reaped by init does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Whether this machine lets a test start a PID namespace (root, with util-linux's unshare). */
const canUnshare = Bun.spawnSync(["unshare", "--pid", "--fork", "true"], { stderr: "ignore" }).exitCode === 0;

/** Stops a supervisor with SIGTERM and checks the promise: Envoy (epoch `epoch`) gets SIGTERM only drained, exit 0. */
async function stopDrained(supervisor: CliProcess, epoch = 0): Promise<void> {
  supervisor.proc.kill("SIGTERM");
  const sigterm = await supervisor.waitForLog(fakeSaid("sigterm", epoch), 5000);
  expect(sigterm.health_check_failed).toBe(true);
  expect(await within(5000, supervisor.exited)).toBe(0);
}

/** Every supervisor case, run through `cli` (the source through Bun, or the compiled executable). */
export function supervisorCases(cli: string[]): void {
  describe("a stop signal drains Envoy, then stops it", () => {
    test("live clients see no error; SIGTERM reaches Envoy only once the count reached the threshold", async () => {
      const { supervisor, url, dataPort } = await startSupervised(["--check-delay", "300ms"], ["--response-delay", "5"], { cli });
      const clients = await busyClients(dataPort, 10);
      await Bun.sleep(200);
      // /healthz is probed until Envoy is being stopped: every probe must be answered.
      const probes: number[] = [];
      let stopping = false;
      const prober = (async () => {
        while (!stopping) {
          probes.push(
            await fetch(`${url}/healthz`).then(
              (r) => r.status,
              () => (stopping ? 200 : 0),
            ),
          );
          await Bun.sleep(20);
        }
      })();
      const signalled = Date.now();
      supervisor.proc.kill("SIGTERM");
      await supervisor.waitForLog((line) => line.msg === "SIGTERM: draining Envoy before stopping it");
      await supervisor.waitForLog((line) => line.msg === "stopping Envoy", 5000);
      stopping = true;
      await prober;
      expect(probes.length).toBeGreaterThan(3);
      expect(probes.every((status) => status === 200)).toBe(true);
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 5000);
      expect(sigterm).toMatchObject({ open_connections: 0, health_check_failed: true });
      expect(await within(5000, supervisor.exited)).toBe(0);
      const { failed, served } = await clients.stop();
      expect(served).toBeGreaterThan(50);
      expect(failed).toBe(0);
      const drained = supervisor.lines.find((line) => line.msg === "drain complete");
      expect(drained?.reason).toBe("threshold");
      expect(Number(sigterm.at)).toBeGreaterThan(signalled);
    });

    test("--drain-timeout: a count that never falls gets SIGTERM at the deadline, and the exit code says it was not drained", async () => {
      const { supervisor } = await startSupervised(["--drain-timeout", "600ms"], ["--stuck-connections", "2"], { cli });
      const signalled = Date.now();
      supervisor.proc.kill("SIGTERM");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 5000);
      expect(sigterm.open_connections).toBe(2);
      expect(Number(sigterm.at) - signalled).toBeGreaterThanOrEqual(550);
      expect(await within(3000, supervisor.exited)).toBe(1);
    });

    // Idle connections hold a drain that counts every open connection: the second signal comes while it runs.
    test("a second SIGTERM during the drain stops Envoy at once", async () => {
      const { supervisor, dataPort } = await startSupervised(["--count-idle-connections"], [], { cli });
      await openClients(dataPort, 2);
      supervisor.proc.kill("SIGTERM");
      await supervisor.waitForLog((line) => line.msg === "open connections");
      supervisor.proc.kill("SIGTERM");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 3000);
      expect(sigterm.open_connections).toBe(2);
      expect(await within(3000, supervisor.exited)).toBe(1);
      expect(supervisor.lines.some((line) => String(line.msg).startsWith("second SIGTERM"))).toBe(true);
    });

    test("SIGINT does the same as SIGTERM", async () => {
      const { supervisor } = await startSupervised([], [], { cli });
      supervisor.proc.kill("SIGINT");
      await supervisor.waitForLog(fakeSaid("sigterm"), 3000);
      expect(await within(3000, supervisor.exited)).toBe(0);
    });

    test("an Envoy that ignores SIGTERM gets SIGKILL after --stop-timeout: exit 137", async () => {
      const { supervisor } = await startSupervised(["--stop-timeout", "300ms"], ["--ignore-sigterm"], { cli });
      supervisor.proc.kill("SIGTERM");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 3000);
      expect(await within(3000, supervisor.exited)).toBe(137);
      expect(Date.now() - Number(sigterm.at)).toBeGreaterThanOrEqual(250);
    });

    test("/shutdown from a Kubernetes httpGet hook drains too; the SIGTERM after it stops Envoy at once", async () => {
      const { supervisor, url } = await startSupervised([], [], { cli });
      expect((await fetch(`${url}/shutdown`)).status).toBe(200);
      supervisor.proc.kill("SIGTERM");
      await supervisor.waitForLog(fakeSaid("sigterm"), 2000);
      expect(await within(3000, supervisor.exited)).toBe(0);
    });
  });

  describe("Envoy exits by itself", () => {
    test.each([
      ["its exit code", ["--exit-code", "7"], 7],
      ["128 + the signal that killed it", ["--exit-signal", "SIGKILL"], 137],
    ])("the supervisor exits within a second with %s", async (_, fakeFlags, code) => {
      const { supervisor, url } = await startSupervised([], ["--exit-after", "300", ...fakeFlags], { cli, waitForAdmin: false });
      const exited = await supervisor.waitForLog(fakeSaid("exit"), 3000);
      expect(await within(1000, supervisor.exited)).toBe(code);
      expect(Date.now() - Number(exited.at)).toBeLessThan(1000);
      expect(await fetch(`${url}/healthz`).catch(() => "refused")).toBe("refused");
    });
  });

  describe("Envoy exits during a drain", () => {
    test("a /shutdown waiting on an admin address that never answered: the drain ends at once, the waiter is answered", async () => {
      const { supervisor, url } = await startSupervised(["--admin-address", "/nonexistent/admin.sock"], ["--exit-after", "800"], {
        cli,
        waitForAdmin: false,
      });
      const waiter = fetch(`${url}/shutdown`);
      const exited = await supervisor.waitForLog(fakeSaid("exit"), 3000);
      expect((await within(1000, waiter)).status).toBe(200);
      expect(await within(1000, supervisor.exited)).toBe(0);
      expect(Date.now() - Number(exited.at)).toBeLessThan(1000);
      expect(supervisor.lines.some((line) => line.msg === "Envoy exited during the drain: ending it, nothing is left to drain")).toBe(true);
    });
  });

  describe("process groups", () => {
    test("a Ctrl-C to the supervisor's whole group reaches only the supervisor: Envoy is drained, then stopped", async () => {
      // setsid makes the supervisor lead a group of its own, as a shell does for a foreground job.
      const { supervisor } = await startSupervised([], [], { cli: ["setsid", ...cli] });
      process.kill(-supervisor.proc.pid, "SIGINT");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 5000);
      expect(sigterm.health_check_failed).toBe(true);
      expect((await supervisor.waitForLog(fakeSaid("exit"), 5000)).why).toBe("SIGTERM");
      expect(await within(5000, supervisor.exited)).toBe(0);
    });

    test("a shell wrapper without exec: the stop reaches Envoy under it, and nothing of it outlives the supervisor", async () => {
      // `; exit $?` keeps the shell from exec'ing its last command: it stays Envoy's parent, as such wrappers do.
      const wrap = (command: string[]) => ["sh", "-c", `${command.map((word) => `'${word}'`).join(" ")}; exit $?`];
      const { supervisor, dir } = await startSupervised([], [], { cli, wrap });
      supervisor.proc.kill("SIGTERM");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 5000);
      expect(sigterm.health_check_failed).toBe(true);
      await within(5000, supervisor.exited);
      await Bun.sleep(100);
      expect(running(fakePid(dir))).toBe(false);
    });
  });

  describe("other signals", () => {
    test("without --hot-restart, SIGHUP is passed to Envoy; SIGUSR1 always is, and signals that end a process by default end Envoy, not the supervisor alone", async () => {
      const { supervisor } = await startSupervised([], [], { cli });
      supervisor.proc.kill("SIGHUP");
      await supervisor.waitForLog(fakeSaid("sighup"), 2000);
      supervisor.proc.kill("SIGUSR1");
      await supervisor.waitForLog(fakeSaid("sigusr1"), 2000);
      expect(supervisor.lines.filter(fakeSaid("started"))).toHaveLength(1);
      // Envoy has no handler for SIGALRM, nor the fake: it dies of it, and the supervisor exits with its code.
      supervisor.proc.kill("SIGALRM");
      const gone = await supervisor.waitForLog((line) => line.msg === "Envoy exited by itself; stopping", 5000);
      expect(gone.code).toBe(128 + 14);
      expect(await within(5000, supervisor.exited)).toBe(128 + 14);
    });

    test.each([
      ["SIGQUIT", 3],
      ["SIGABRT", 6],
    ] as const)(
      "%s (a terminal's Ctrl-\\, a watchdog's abort) is passed on, said in the log: Envoy ends by it, nothing is left running",
      async (signal, number) => {
        const { supervisor } = await startSupervised([], [], { cli });
        const envoyPid = Number((await supervisor.waitForLog(fakeSaid("started"), 2000)).pid);
        supervisor.proc.kill(signal);
        expect(await within(5000, supervisor.exited)).toBe(128 + number);
        expect(supervisor.lines.some((line) => line.msg === `${signal}: passed on to Envoy`)).toBe(true);
        expect(running(envoyPid)).toBe(false);
      },
    );

    test("--hot-restart: SIGHUP starts epoch 1 beside epoch 0, which leaves by itself; SIGTERM drains and stops the newest", async () => {
      const { supervisor, url } = await startSupervised(["--hot-restart"], [], { cli });
      expect(supervisor.lines.find(fakeSaid("started"))?.restart_epoch_env).toBe("0");
      supervisor.proc.kill("SIGHUP");
      const second = await supervisor.waitForLog(fakeSaid("started", 1), 5000);
      expect(second.restart_epoch_env).toBe("1");
      await supervisor.waitForLog(fakeSaid("exit", 0), 3000);
      await supervisor.waitForLog((line) => line.msg === "an older Envoy epoch exited, as hot restart expects", 3000);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      supervisor.proc.kill("SIGUSR1");
      await supervisor.waitForLog(fakeSaid("sigusr1", 1), 2000);
      await stopDrained(supervisor, 1);
    });
  });

  describe("hot restart that fails", () => {
    test("a new epoch that exits while the old one serves is a failed restart: logged, the old epoch kept and drained", async () => {
      const { supervisor, url } = await startSupervised(["--hot-restart"], ["--fail-epoch", "1"], { cli });
      supervisor.proc.kill("SIGHUP");
      const failed = await supervisor.waitForLog((line) => String(line.msg).startsWith("hot restart failed"), 5000);
      expect(failed).toMatchObject({ level: "error", failed_epoch: 1, serving_epoch: 0, code: 1 });
      await Bun.sleep(200);
      expect(supervisor.lines.some(fakeSaid("exit", 0))).toBe(false);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      await stopDrained(supervisor, 0);
    });
  });

  describe("as a container's PID 1", () => {
    const reason = canUnshare ? "" : " (skipped: this machine cannot start a PID namespace; `unshare --pid` needs root and util-linux)";
    if (!canUnshare) console.warn(`as a container's PID 1${reason}`);
    test.skipIf(!canUnshare)(`a SIGTERM from outside is handled, not ignored: drain, stop, Envoy's exit code${reason}`, async () => {
      // In a new PID namespace the supervisor is PID 1, which the kernel spares any signal it has no handler for.
      const unshare = ["unshare", "--pid", "--fork", "--kill-child", ...cli];
      const { supervisor } = await startSupervised([], [], { cli: unshare });
      const children = readFileSync(`/proc/${supervisor.proc.pid}/task/${supervisor.proc.pid}/children`, "utf8").trim();
      const pid1 = Number(children.split(" ")[0]);
      expect(readFileSync(`/proc/${pid1}/status`, "utf8")).toMatch(/^NSpid:\s+\d+\s+1$/m);
      process.kill(pid1, "SIGTERM");
      const sigterm = await supervisor.waitForLog(fakeSaid("sigterm"), 5000);
      expect(sigterm.health_check_failed).toBe(true);
      expect(await within(5000, supervisor.exited)).toBe(0);
    });
  });

  describe("bad use", () => {
    test.each([
      [["run"], /no command: write the Envoy command after `--`/],
      [["run", "--serve-port", "0", "--"], /no command after `--`/],
      [
        ["run", "--serve-port", "0", "--", "/nonexistent/envoy", "-c", "x"],
        /cannot start "\/nonexistent\/envoy": not an executable file, or not found on PATH$/,
      ],
      [["run", "--serve-port", "0", "--", "/"], /cannot start "\/": not an executable file, or not found on PATH$/],
      [["run", "--stop-timeout", "0", "--", "envoy"], /--stop-timeout "0" is not valid/],
    ])("%p is one line and exit 2", async (args, message) => {
      const run = spawnCli(args, { cli });
      expect(await within(5000, run.exited)).toBe(2);
      const last = run.stderrText().trim().split("\n").at(-1);
      expect(last).toMatch(message);
    });

    test("a script whose #! interpreter is missing is one line naming that, exit 2, in this program's words", async () => {
      const script = join(tempDir(), "envoy");
      writeFileSync(script, "#!/nonexistent/sh\n", { mode: 0o755 });
      const run = spawnCli(["run", "--serve-address", "127.0.0.1", "--serve-port", "0", "--", script], { cli });
      expect(await within(5000, run.exited)).toBe(2);
      expect(run.stderrText().trim().split("\n").at(-1)).toBe(
        `envoy-shutdown-manager: cannot start ${JSON.stringify(script)}: the interpreter its first line (#!) names, or its loader, is not found (ENOENT)`,
      );
    });
  });
}
