/** The supervisor (`run`) around the fake Envoy program, started as the supervisor's tests and the demo need it. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./fixtures.ts";
import { type CliProcess, spawnCli } from "./process.ts";
import { onTeardown } from "./teardown.ts";

/** The pid a fake Envoy epoch wrote into `dir`. */
export function fakePid(dir: string, epoch = 0): number {
  return (JSON.parse(readFileSync(join(dir, `epoch-${epoch}.json`), "utf8")) as { pid: number }).pid;
}

/** Kills every fake Envoy epoch that wrote its pid into `dir`: a supervisor killed by a test cannot stop them itself. */
function killFakeEnvoys(dir: string): void {
  for (const file of readdirSync(dir).filter((name) => /^epoch-\d+\.json$/.test(name))) {
    try {
      process.kill((JSON.parse(readFileSync(join(dir, file), "utf8")) as { pid: number }).pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

export const FAKE_ENVOY_CLI = new URL("./fake-envoy-cli.ts", import.meta.url).pathname;

/** A log line of the fake Envoy (they carry a `fake` field) or of the supervisor. */
type Line = Record<string, unknown>;
export const fakeSaid =
  (event: string, epoch = 0) =>
  (line: Line) =>
    line.fake === event && line.epoch === epoch;

/** Starts `run` with fast drain flags around the fake Envoy program; resolves once both serve. */
export async function startSupervised(
  flags: string[] = [],
  fakeFlags: string[] = [],
  {
    cli,
    waitForAdmin = true,
    wrap = (command) => command,
  }: { cli?: string[]; waitForAdmin?: boolean; wrap?: (command: string[]) => string[] } = {},
) {
  const dir = tempDir();
  const socket = join(dir, "admin.sock");
  const envoy = [process.execPath, FAKE_ENVOY_CLI, "-c", "envoy.yaml", "--admin-socket", socket, "--info-dir", dir, ...fakeFlags];
  const supervisor: CliProcess = spawnCli(
    [
      ...["run", "--serve-address", "127.0.0.1", "--serve-port", "0", "--admin-address", socket],
      ...["--check-delay", "0s", "--check-interval", "100ms", "--quiet-period", "0s", ...flags],
      ...["--", ...wrap(envoy)],
    ],
    { cli },
  );
  onTeardown(() => killFakeEnvoys(dir));
  const listening = await supervisor.waitForLog((line) => line.msg === "shutdown-manager listening");
  const started = await supervisor.waitForLog(fakeSaid("started"));
  if (waitForAdmin) await supervisor.waitForLog((line) => line.msg === "Envoy's admin API answers");
  return { supervisor, url: `http://127.0.0.1:${listening.port}`, dataPort: started.data_port as number, dir, socket };
}
