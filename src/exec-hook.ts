/** The preStop exec hook: join the sidecar's drain if one listens on loopback, else drain Envoy here. */
import { createAdminClient } from "./admin-client.ts";
import type { Config } from "./config.ts";
import { Drain, type FinalPhase, type PollReport } from "./drain.ts";
import { parseDuration } from "./duration.ts";
import { log } from "./log.ts";
import { writeReadyFile } from "./ready-file.ts";
import { fetchStatus } from "./status.ts";

/** Exit codes of the `shutdown` command. */
const EXIT = { drained: 0, failed: 1 } as const;

const PHASE_BY_STATUS: Record<number, FinalPhase> = { 200: "drained", 504: "timed_out", 500: "failed" };

/** Reports the manager's polls (read from its /status) while this process waits on its drain. */
function followManagerPolls(port: number, intervalMs: number, onPoll: (report: PollReport) => void) {
  let lastPoll = 0;
  const report = async () => {
    const status = await fetchStatus(port).catch(() => undefined);
    if (!status || status.open_connections === null || status.polls === lastPoll) return;
    lastPoll = status.polls;
    const elapsedMs = (status.duration_seconds ?? 0) * 1000;
    const timeoutMs = parseDuration(status.drain_timeout) ?? 0;
    onPoll({
      openConnections: status.open_connections,
      minOpenConnections: status.min_open_connections,
      elapsedMs,
      remainingMs: timeoutMs > 0 ? Math.max(0, timeoutMs - elapsedMs) : undefined,
    });
  };
  const timer = setInterval(report, intervalMs);
  return { report, stop: () => clearInterval(timer) };
}

/** Joins the drain of a shutdown-manager on 127.0.0.1; undefined when none answers as one would. */
async function joinManagerDrain(config: Config, onPoll: (report: PollReport) => void): Promise<FinalPhase | undefined> {
  const { servePort: port, shutdownToken: token } = config;
  const url = `http://127.0.0.1:${port}/shutdown`;
  const follow = followManagerPolls(port, config.checkIntervalMs, onPoll);
  try {
    // The drain may take as long as the grace period: no idle timeout on this request.
    const response = await fetch(url, { method: "POST", headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: false });
    await response.arrayBuffer();
    const phase = PHASE_BY_STATUS[response.status];
    if (phase) {
      await follow.report(); // the last poll, which ended the drain
      return phase;
    }
    log.error(`the shutdown-manager on port ${port} answered HTTP ${response.status}; draining Envoy from here instead`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "ECONNREFUSED" && code !== "ConnectionRefused") {
      log.warn(
        `lost the shutdown-manager on port ${port} (${error instanceof Error ? error.message : String(error)}); draining Envoy from here instead`,
      );
    }
  } finally {
    follow.stop();
  }
  return undefined;
}

/** Runs the whole hook and returns the exit code: 0 drained, 1 timed out or failed. */
export async function runShutdownHook(config: Config, onPoll: (report: PollReport) => void): Promise<number> {
  let phase = config.servePort > 0 ? await joinManagerDrain(config, onPoll) : undefined;
  if (phase) log.info("joined the shutdown-manager's drain", { serve_port: config.servePort, phase });
  else {
    const admin = createAdminClient({ address: config.adminAddress, timeoutMs: config.adminTimeoutMs });
    phase = (await new Drain(config, admin, onPoll).start()).phase;
  }
  writeReadyFile(config.readyFile, phase);
  return phase === "drained" ? EXIT.drained : EXIT.failed;
}
