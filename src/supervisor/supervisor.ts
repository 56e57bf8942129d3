/**
 * `run -- envoy ...`: Envoy as a child of this process, for places with no preStop hook (Docker, Compose, ECS,
 * Nomad, systemd, a single-container pod). A stop signal drains Envoy first, then stops it; hot restart starts a
 * new epoch beside the old one. The sidecar's endpoints and its shared drain serve here unchanged.
 */
import type { Subprocess } from "bun";
import { formatDuration } from "../duration.ts";
import { errorMessage, OperatorError } from "../errors.ts";
import { nodeFs } from "../footprint.ts";
import { log } from "../log.ts";
import { isLoopbackOnly } from "../sidecar/serve-address.ts";
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

/** Signals a child's whole process group (a shell wrapper and the Envoy it started); a group already gone is fine. */
function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.proc.pid, signal);
  } catch {
    // Nothing of that group is left.
  }
}

/**
 * Whether anything of a child's process group still runs (its leader may have exited, leaving the rest). Read from
 * /proc, where an exited process nobody reaped (a zombie: as PID 1 the supervisor inherits orphans it cannot reap)
 * does not count; elsewhere, whether the group can still be signalled.
 */
function groupAlive(child: Child): boolean {
  const pgid = String(child.proc.pid);
  try {
    const fs = nodeFs();
    return fs
      .readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .some((pid) => {
        try {
          // After the command's closing parenthesis: state, ppid, pgrp, …
          const [state, , pgrp] = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").at(-1)?.split(" ") ?? [];
          return pgrp === pgid && state !== "Z";
        } catch {
          return false; // exited while we looked
        }
      });
  } catch {
    try {
      process.kill(-child.proc.pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** How often the supervisor looks whether the processes left in a stopping group have exited. */
const GROUP_POLL_MS = 20;

/** Waits until no child's group has a process left, or `ms` passes. */
async function groupsEmpty(children: Child[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (children.some(groupAlive) && Date.now() < deadline) await Bun.sleep(GROUP_POLL_MS);
}

/**
 * Starts one epoch of the command with inherited stdio, in a process group of its own: a terminal's Ctrl-C or a
 * signal to the supervisor's group must not reach Envoy undrained; the supervisor alone signals it.
 */
function startChild(command: string[], epoch: number, hotRestart: boolean): Child {
  const argv = hotRestart ? [...command, "--restart-epoch", String(epoch)] : command;
  try {
    const proc = Bun.spawn(argv, {
      stdio: ["inherit", "inherit", "inherit"],
      env: hotRestart ? { ...process.env, RESTART_EPOCH: String(epoch) } : process.env,
      detached: true,
    });
    log.info("started Envoy", { pid: proc.pid, command: argv.join(" "), ...(hotRestart ? { restart_epoch: epoch } : {}) });
    return { epoch, proc };
  } catch (error) {
    const { code } = error as { code?: string };
    const why = code ? `${SPAWN_FAILURES[code] ?? "the system refused to run it"} (${code})` : errorMessage(error);
    throw new ChildStartError(`cannot start ${JSON.stringify(argv[0])}: ${why}`);
  }
}

/** Why an executable file the PATH check passed still cannot run, in this program's words rather than the runtime's. */
const SPAWN_FAILURES: Record<string, string> = {
  // The file is there: what is missing is the interpreter its #! line names (or, for a binary, its loader).
  ENOENT: "the interpreter its first line (#!) names, or its loader, is not found",
  EACCES: "permission denied",
  ENOEXEC: "not a format this system can run",
};

/** Envoy takes a moment to open its admin API after being started: no warning while it does. */
const STARTUP_QUIET_MS = 5000;

/**
 * After a stop signal (and --drain-delay, --health-check-fail-delay), how long an admin address that has given no
 * usable answer may hold Envoy: past /healthcheck/fail's retries (about 6 s), an address that is silent or answers
 * as something else would (404) is a configuration error, not a drain to wait for, whatever --drain-timeout says.
 */
const NO_USABLE_ANSWER_STOP_MS = 10_000;

/**
 * Signals sent to end a process (a terminal's Ctrl-\, a watchdog's SIGABRT, the kernel's CPU and file-size limits
 * among them): Envoy's, which acts on them or ends by them, so that it is never left running alone. The faults a
 * crash raises (SIGSEGV, SIGBUS, SIGILL, SIGFPE) are this process's own and end it.
 */
const PASSED_ON = [
  "SIGQUIT",
  "SIGABRT",
  "SIGTRAP",
  "SIGSYS",
  "SIGIO",
  "SIGUSR1",
  "SIGUSR2",
  "SIGALRM",
  "SIGVTALRM",
  "SIGPROF",
  "SIGXCPU",
  "SIGXFSZ",
] as const;

/** Runs the command under supervision until it exits or a stop signal has drained and stopped it; returns the exit code. */
export async function runSupervisor(sidecarSettings: SidecarSettings, settings: SupervisorSettings, command: string[]): Promise<number> {
  if (Bun.which(command[0] ?? "") === null)
    throw new ChildStartError(`cannot start ${JSON.stringify(command[0])}: not an executable file, or not found on PATH`);
  const children: Child[] = [];
  const live = () => children.filter((child) => child.proc.exitCode === null && child.proc.signalCode === null);
  const newest = () => children.at(-1) as Child;
  const exit = Promise.withResolvers<number>();
  let stopping: "no" | "draining" | "stopping" = "no";
  /** Whether Envoy was stopped undrained (the drain timed out or failed): the exit code is then not 0. */
  let undrained = false;

  /** Starts an epoch and ends the supervisor when the newest one exits (Bun reports a signal N as 128 + N). */
  const spawnEpoch = (epoch: number) => {
    const child = startChild(command, epoch, settings.hotRestart);
    children.push(child);
    void child.proc.exited.then((code) => {
      if (child !== newest()) return log.info("an older Envoy epoch exited, as hot restart expects", { restart_epoch: epoch, code });
      const older = live().filter((other) => other !== child);
      if (older.length > 0 && stopping !== "stopping") return failedRestart(child, code, older.at(-1) as Child);
      if (sidecar.drain.snapshot.phase === "draining")
        log.warn("Envoy exited during the drain: ending it, nothing is left to drain", { code });
      else if (stopping === "no") log.warn("Envoy exited by itself; stopping", { code });
      void finish(code);
    });
  };

  /** A new epoch exited while an older one serves: the hot restart failed, and the older epoch stays in charge. */
  const failedRestart = (child: Child, code: number, serving: Child) => {
    log.error("hot restart failed: the new Envoy epoch exited while the older one serves; it stays in charge", {
      failed_epoch: child.epoch,
      code,
      serving_epoch: serving.epoch,
    });
    signalGroup(child, "SIGKILL");
    children.splice(children.indexOf(child), 1);
  };

  /**
   * Ends any drain at once (Envoy is gone), stops what is left of every epoch's group, stops serving, exits. When
   * stopping, what is left of a group (Envoy under a shell wrapper that exited first) gets the rest of --stop-timeout.
   */
  const finish = async (code: number) => {
    if (sidecar.drain.snapshot.phase === "draining") void sidecar.drain.endWith("drained", "envoy_gone");
    if (stopping === "stopping") await groupsEmpty(children, settings.stopTimeoutMs);
    for (const child of children) signalGroup(child, "SIGKILL");
    await sidecar.stop();
    exit.resolve(undrained && code === 0 ? 1 : code);
  };

  /** Sends SIGTERM to every live epoch's group, and SIGKILL to those still running after --stop-timeout. */
  const stopChildren = () => {
    stopping = "stopping";
    log.info("stopping Envoy", { pids: live().map((child) => child.proc.pid) });
    for (const child of live()) signalGroup(child, "SIGTERM");
    const timer = setTimeout(() => {
      const left = live();
      if (left.length === 0) return;
      log.warn(`Envoy did not exit within --stop-timeout ${formatDuration(settings.stopTimeoutMs)}: SIGKILL`);
      for (const child of left) signalGroup(child, "SIGKILL");
    }, settings.stopTimeoutMs);
    void newest().proc.exited.then(() => clearTimeout(timer));
  };

  const onStopSignal = (signal: NodeJS.Signals) => {
    if (stopping === "draining") {
      log.warn(`second ${signal}: stopping Envoy without waiting for the drain`);
      void sidecar.drain.endWith("failed", "interrupted");
      return;
    }
    if (stopping === "stopping") {
      log.warn(`${signal} while Envoy stops: SIGKILL`);
      for (const child of live()) signalGroup(child, "SIGKILL");
      return;
    }
    stopping = "draining";
    log.info(`${signal}: draining Envoy before stopping it`);
    const { drainDelayMs, healthCheckFailDelayMs } = sidecarSettings.drain;
    const bound = setTimeout(() => sidecar.drain.endIfNoUsableAnswer(), drainDelayMs + healthCheckFailDelayMs + NO_USABLE_ANSWER_STOP_MS);
    void sidecar.drain.start().then((outcome) => {
      clearTimeout(bound);
      undrained = outcome.phase !== "drained";
      stopChildren();
    });
  };

  const onHangup = () => {
    if (!settings.hotRestart) return forward("SIGHUP");
    if (stopping !== "no") return log.warn("SIGHUP while stopping: no new epoch");
    spawnEpoch(newest().epoch + 1);
  };

  /** Passes a signal to each live epoch's Envoy itself (its group's leader), saying so: it may end Envoy. */
  const forward = (signal: NodeJS.Signals) => {
    log.info(`${signal}: passed on to Envoy`);
    for (const child of live()) child.proc.kill(signal);
  };

  // Installed before anything starts: as PID 1, a signal without a handler would be ignored, not acted on.
  process.on("SIGTERM", onStopSignal);
  process.on("SIGINT", onStopSignal);
  process.on("SIGHUP", onHangup);
  for (const signal of PASSED_ON) process.on(signal, () => forward(signal));
  const sidecar = startSidecar(sidecarSettings, { quietStartMs: STARTUP_QUIET_MS });
  const { serveAddress } = sidecarSettings.sidecar;
  if (!sidecarSettings.handoff.shutdownToken && !isLoopbackOnly(serveAddress))
    log.warn(`/shutdown is served on ${serveAddress} without --shutdown-token: anything that reaches the port can drain Envoy`);
  try {
    spawnEpoch(0);
  } catch (error) {
    await sidecar.stop();
    throw error;
  }
  return exit.promise;
}
