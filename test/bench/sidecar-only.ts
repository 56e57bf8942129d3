/**
 * The benchmark's sidecar without its command line: the program's own sidecar (server, drain, hand-off, start-up
 * check, logging) started with its default settings written here as a literal, so no flag table, argument or
 * environment parsing, validation or command loading runs. `--serve-port N --admin-address ADDRESS [--ready-file
 * PATH]`, looked up as the floor looks up its port. What it measures is what the sidecar itself costs over the
 * reference (test/bench/reference.ts).
 */
import { parseAdminAddress } from "../../src/envoy/address.ts";
import { configureLogging } from "../../src/log.ts";
import { runSidecar } from "../../src/sidecar/sidecar.ts";

const given = (flag: string) => {
  const at = process.argv.indexOf(flag);
  return at < 0 ? undefined : process.argv[at + 1];
};

void configureLogging({ level: "info", format: "json" }).then(() =>
  runSidecar({
    admin: {
      address: parseAdminAddress(given("--admin-address") ?? "127.0.0.1:9001"),
      timeoutMs: 2000,
      connectionStat: "listener",
      ignoreListeners: [/_8002$/, /_19001$/, /_19003$/],
    },
    drain: {
      drainDelayMs: 0,
      checkDelayMs: 60_000,
      checkIntervalMs: 5000,
      minOpenConnections: 0,
      drainTimeoutMs: 0,
      drainListeners: false,
      adminUnreachableThreshold: 3,
      minDrainMs: 0,
      healthCheckFailDelayMs: 0,
    },
    handoff: { servePort: Number(given("--serve-port") ?? 8090), readyFile: given("--ready-file"), shutdownToken: undefined },
    sidecar: { serveAddress: "127.0.0.1", healOnStart: true, hookWaitMs: 5000 },
  }),
);
