/**
 * `run -- envoy ...`: Envoy as a child of this process, for places with no preStop hook (Docker, Compose, ECS,
 * Nomad, systemd, a single-container pod). A stop signal drains Envoy first, then stops it; hot restart starts a
 * new epoch beside the old one. The sidecar's endpoints and its shared drain serve here unchanged.
 */
import type { Subprocess } from "bun";
import { formatDuration } from "../duration.ts";
import { errorMessage, OperatorError } from "../errors.ts";
import { log } from "../log.ts";
import { type SidecarSettings, startSidecar } from "../sidecar/sidecar.ts";

export interface SupervisorSettings {
  /** How long Envoy may take to exit after SIGTERM before it gets SIGKILL. */
  stopTimeoutMs: number;
  /** Start each child with `--restart-epoch N` (and RESTART_EPOCH=N); SIGHUP starts the next epoch. */
  hotRestart: boolean;
}

/** The command could not be started at all (not found, not executable). */
export class ChildStartError extends OperatorError {
  override name = "ChildStartError";
}

interface Child {
  epoch: number;
  proc: Subprocess<"inherit", "inherit", "inherit">;
}

/** Starts one epoch of the command with inherited stdio. */
function startChild(command: string[], epoch: number, hotRestart: boolean): Child {
  const argv = hotRestart ? [...command, "--restart-epoch", String(epoch)] : command;
  try {
    const proc = Bun.spawn(argv, {
      stdio: ["inherit", "inherit", "inherit"],
      env: hotRestart ? { ...process.env, RESTART_EPOCH: String(epoch) } : process.env,
    });
    log.info("started Envoy", { pid: proc.pid, command: argv.join(" "), ...(hotRestart ? { restart_epoch: epoch } : {}) });
    return { epoch, proc };
  } catch (error) {
    throw new ChildStartError(`cannot start ${JSON.stringify(argv[0])}: ${errorMessage(error)}`);
  }
}

/** Runs the command under supervision until it exits or a stop signal has drained and stopped it; returns the exit code. */
export async function runSupervisor(sidecarSettings: SidecarSettings, settings: SupervisorSettings, command: string[]): Promise<number> {
  const children: Child[] = [];
  const live = () => children.filter((child) => child.proc.exitCode === null && child.proc.signalCode === null);
  const newest = () => children.at(-1) as Child;
  const exit = Promise.withResolvers<number>();
  let stopping: "no" | "draining" | "stopping" = "no";

  /** Starts an epoch and ends the supervisor when the newest one exits (Bun reports a signal N as 128 + N). */
  const spawnEpoch = (epoch: number) => {
    const child = startChild(command, epoch, settings.hotRestart);
    children.push(child);
    void child.proc.exited.then((code) => {
      if (child !== newest()) return log.info("an older Envoy epoch exited, as hot restart expects", { restart_epoch: epoch, code });
      if (stopping === "no") log.warn("Envoy exited by itself; stopping", { code });
      void finish(code);
    });
  };

  /** Stops what is left, stops serving, and exits with the newest epoch's code. */
  const finish = async (code: number) => {
    for (const child of live()) child.proc.kill("SIGKILL");
    await sidecar.stop();
    exit.resolve(code);
  };

  /** Sends SIGTERM to every live epoch, and SIGKILL to those still running after --stop-timeout. */
  const stopChildren = () => {
    stopping = "stopping";
    log.info("stopping Envoy", { pids: live().map((child) => child.proc.pid) });
    for (const child of live()) child.proc.kill("SIGTERM");
    const timer = setTimeout(() => {
      const left = live();
      if (left.length === 0) return;
      log.warn(`Envoy did not exit within --stop-timeout ${formatDuration(settings.stopTimeoutMs)}: SIGKILL`);
      for (const child of left) child.proc.kill("SIGKILL");
    }, settings.stopTimeoutMs);
    void newest().proc.exited.then(() => clearTimeout(timer));
  };

  const onStopSignal = (signal: NodeJS.Signals) => {
    if (stopping === "draining") {
      log.warn(`second ${signal}: stopping Envoy without waiting for the drain`);
      void sidecar.drain.interrupt();
      return;
    }
    if (stopping === "stopping") {
      log.warn(`${signal} while Envoy stops: SIGKILL`);
      for (const child of live()) child.proc.kill("SIGKILL");
      return;
    }
    stopping = "draining";
    log.info(`${signal}: draining Envoy before stopping it`);
    void sidecar.drain.start().then(stopChildren);
  };

  const onHangup = () => {
    if (!settings.hotRestart) return forward("SIGHUP");
    if (stopping !== "no") return log.warn("SIGHUP while stopping: no new epoch");
    spawnEpoch(newest().epoch + 1);
  };

  const forward = (signal: NodeJS.Signals) => {
    for (const child of live()) child.proc.kill(signal);
  };

  // Installed before anything starts: as PID 1, a signal without a handler would be ignored, not acted on.
  process.on("SIGTERM", onStopSignal);
  process.on("SIGINT", onStopSignal);
  process.on("SIGHUP", onHangup);
  process.on("SIGUSR1", () => forward("SIGUSR1"));
  const sidecar = startSidecar(sidecarSettings, { quietStartMs: STARTUP_QUIET_MS });
  try {
    spawnEpoch(0);
  } catch (error) {
    await sidecar.stop();
    throw error;
  }
  return exit.promise;
}

/** Envoy takes a moment to open its admin API after being started: no warning while it does. */
const STARTUP_QUIET_MS = 5000;
