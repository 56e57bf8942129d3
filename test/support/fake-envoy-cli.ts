/**
 * The fake Envoy as a program, for the supervisor's tests: `bun fake-envoy-cli.ts [Envoy-like flags]`.
 * It serves the fake admin API on a Unix socket and a live data plane whose connections are drain-closed after
 * /healthcheck/fail, and reports what happens to it as JSON lines on stderr (`{"fake":"started",...}`).
 *
 *   -c FILE                      ignored, as Envoy's config would be here
 *   --restart-epoch N            recorded; from epoch 1 on, the previous epoch hands over and exits by itself
 *   --admin-socket PATH          where the admin API listens (required)
 *   --info-dir DIR               where each epoch writes {pid, dataPort} as epoch-N.json (required)
 *   --ignore-sigterm             keep running on SIGTERM (to test the supervisor's SIGKILL)
 *   --exit-after MS              exit by itself after MS ...
 *   --exit-code N                ... with this code (default 0)
 *   --exit-signal NAME           ... or by killing itself with this signal
 *   --response-delay MS          the data plane's latency, so that requests are in flight
 *   --stuck-connections N        N connections (of a TCP proxy listener) that never close: a count that stays
 *   --parent-exit-after MS       as a replaced epoch, exit this long after the hand-over (default 200)
 *   --fail-epoch N               epoch N exits at once with code 1, before taking over (a bad config)
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startFakeEnvoy } from "./fake-envoy.ts";

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
};
const has = (name: string) => argv.includes(name);

const epoch = Number(flag("--restart-epoch") ?? 0);
const adminSocket = flag("--admin-socket");
const infoDir = flag("--info-dir");
if (!adminSocket || !infoDir) {
  process.stderr.write("fake-envoy: --admin-socket and --info-dir are required\n");
  process.exit(2);
}
const report = (event: string, fields: Record<string, unknown> = {}) =>
  process.stderr.write(`${JSON.stringify({ fake: event, epoch, pid: process.pid, at: Date.now(), ...fields })}\n`);

if (flag("--fail-epoch") === String(epoch)) {
  report("exit", { why: "bad config", code: 1 });
  process.exit(1);
}

// Hot restart: the previous epoch gives up the admin socket and leaves, as Envoy's parent process does.
const parentInfo = join(infoDir, `epoch-${epoch - 1}.json`);
const handedOver = (n: number) => join(infoDir, `epoch-${n}.handed-over`);
if (epoch > 0 && existsSync(parentInfo)) {
  const parent = JSON.parse(readFileSync(parentInfo, "utf8")) as { pid: number };
  process.kill(parent.pid, "SIGUSR2");
  for (let i = 0; i < 500 && !existsSync(handedOver(epoch - 1)); i++) await Bun.sleep(10);
}
rmSync(adminSocket, { force: true });

const envoy = await startFakeEnvoy({
  mode: "live",
  unixSocket: adminSocket,
  responseDelayMs: Number(flag("--response-delay") ?? 0),
  stuckConnections: Number(flag("--stuck-connections") ?? 0),
});
writeFileSync(join(infoDir, `epoch-${epoch}.json`), JSON.stringify({ pid: process.pid, dataPort: envoy.dataPort }));
report("started", { data_port: envoy.dataPort, restart_epoch_env: process.env.RESTART_EPOCH ?? null });

let replaced = false;

/** Exits the way Envoy does on SIGTERM: at once, closing every connection, saying how many were still open. */
async function exit(code: number, why: string) {
  report("exit", { why, open_connections: envoy.openConnections, code });
  await envoy.stop();
  // A replaced epoch's socket path belongs to its successor now.
  if (!replaced) rmSync(adminSocket as string, { force: true });
  process.exit(code);
}

process.on("SIGTERM", () => {
  report("sigterm", { open_connections: envoy.openConnections, health_check_failed: envoy.isHealthCheckFailed });
  if (!has("--ignore-sigterm")) void exit(0, "SIGTERM");
});
process.on("SIGINT", () => void exit(0, "SIGINT"));
process.on("SIGHUP", () => report("sighup"));
process.on("SIGUSR1", () => report("sigusr1"));
// Replaced by a newer epoch: stop serving admin (the new one takes it), then leave by itself.
process.on("SIGUSR2", () => {
  report("replaced");
  replaced = true;
  envoy.stopAdmin();
  writeFileSync(handedOver(epoch), "");
  setTimeout(() => void exit(0, "replaced by a newer epoch"), Number(flag("--parent-exit-after") ?? 200));
});

const exitAfter = flag("--exit-after");
if (exitAfter !== undefined) {
  setTimeout(() => {
    const signal = flag("--exit-signal");
    if (signal) {
      report("exit", { why: `killed by ${signal}` });
      process.kill(process.pid, signal as NodeJS.Signals);
    } else void exit(Number(flag("--exit-code") ?? 0), "exit-after");
  }, Number(exitAfter));
}
