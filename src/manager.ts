/** The long-running sidecar: serves the hook endpoints, heals leftover drains, exits cleanly on signals. */
import { createAdminClient } from "./admin-client.ts";
import type { Config } from "./config.ts";
import { Drain } from "./drain.ts";
import { healLeftoverDrain } from "./heal.ts";
import { log } from "./log.ts";
import { logPoll } from "./progress.ts";
import { removeStaleReadyFile, watchReadyFile } from "./ready-file.ts";
import { startServer } from "./server.ts";
import type { ManagerCounters } from "./status.ts";

const EXIT_CODE_BY_SIGNAL: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** Runs the shutdown-manager until a signal stops it; resolves with the exit code. */
export async function runShutdownManager(config: Config): Promise<number> {
  const admin = createAdminClient({ address: config.adminAddress, timeoutMs: config.adminTimeoutMs });
  const drain = new Drain(config, admin, logPoll);
  const counters: ManagerCounters = { waiters: 0, heals: 0 };
  removeStaleReadyFile(config.readyFile);
  const server = startServer({
    port: config.servePort,
    hostname: config.serveAddress,
    token: config.shutdownToken,
    drain,
    counters,
    settings: {
      adminAddress: admin.address,
      minOpenConnections: config.minOpenConnections,
      checkIntervalMs: config.checkIntervalMs,
      drainTimeoutMs: config.drainTimeoutMs,
      readyFile: config.readyFile,
    },
  });

  // A drain finished by the exec command in another container releases our waiters too.
  const stopWatching = watchReadyFile(config.readyFile, (phase) => {
    log.info("ready file appeared: the drain was completed by another process", { ready_file: config.readyFile, phase });
    void drain.finishElsewhere(phase);
  });

  const exitCode = new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn(`second ${signal}: exiting now`);
        resolve(EXIT_CODE_BY_SIGNAL[signal] ?? 1);
        return;
      }
      stopping = true;
      if (counters.waiters > 0) {
        log.info(`${signal}: finishing the drain for ${counters.waiters} waiting /shutdown request(s), then exiting`);
      } else log.info(`${signal}: exiting`);
      // stop() refuses new connections and resolves once in-flight responses (the waiters) are sent.
      void server.stop().then(() => {
        stopWatching();
        resolve(0);
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  log.info("shutdown-manager listening", { address: server.hostname, port: server.port, admin_address: admin.address });
  if (config.healOnStart && (await healLeftoverDrain(admin, drain))) counters.heals += 1;
  return exitCode;
}
