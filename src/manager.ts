/** The long-running sidecar: serves the hook endpoints, heals leftover drains, exits cleanly on signals. */
import type { Server } from "bun";
import { createAdminClient } from "./admin-client.ts";
import type { Config } from "./config.ts";
import { Drain } from "./drain.ts";
import { healLeftoverDrain } from "./heal.ts";
import { log } from "./log.ts";
import { logPoll } from "./progress.ts";
import { removeStaleReadyFile, watchReadyFile } from "./ready-file.ts";
import { startServer } from "./server.ts";
import type { ManagerCounters } from "./status.ts";

export interface RunningManager {
  server: Server<undefined>;
  drain: Drain;
  counters: ManagerCounters;
  /** Settles once the start-up check for a leftover drain is done: true when it undid one. */
  healed: Promise<boolean>;
  /** Stops accepting, waits for in-flight responses (the /shutdown waiters), and releases every resource. */
  stop(): Promise<void>;
}

/** Starts the sidecar: removes a stale ready file, serves, watches the ready file, heals a leftover drain. */
export function startShutdownManager(config: Config): RunningManager {
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
  log.info("shutdown-manager listening", { address: server.hostname, port: server.port, admin_address: admin.address });
  // In the background: /healthz must answer at once, even while Envoy is slow to tell its state.
  const healed = config.healOnStart ? healLeftoverDrain(admin, drain) : Promise.resolve(false);
  void healed.then((done) => {
    if (done) counters.heals += 1;
  });
  return {
    server,
    drain,
    counters,
    healed,
    async stop() {
      stopWatching();
      await server.stop();
    },
  };
}

const EXIT_CODE_BY_SIGNAL: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** Runs the shutdown-manager until a signal stops it; resolves with the exit code. */
export async function runShutdownManager(config: Config): Promise<number> {
  let manager: RunningManager | undefined;
  let stopping = false;
  let exit: (code: number) => void = () => {};
  const exitCode = new Promise<number>((resolve) => {
    exit = resolve;
  });
  // Installed before the server starts, so a signal that arrives early is never handled by the default action.
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`second ${signal}: exiting now`);
      return exit(EXIT_CODE_BY_SIGNAL[signal] ?? 1);
    }
    stopping = true;
    const waiters = manager?.counters.waiters ?? 0;
    if (waiters > 0) log.info(`${signal}: finishing the drain for ${waiters} waiting /shutdown request(s), then exiting`);
    else log.info(`${signal}: exiting`);
    void (manager?.stop() ?? Promise.resolve()).then(() => exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  manager = startShutdownManager(config);
  return exitCode;
}
