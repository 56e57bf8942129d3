/** The drain sequence, shared by the sidecar server and the exec command: one drain per process. */
import { ADMIN_ERROR_KINDS, type AdminClient, AdminError, type AdminErrorKind } from "./admin-client.ts";
import type { Config } from "./config.ts";
import { type ConnectionCount, connectionStatsPath, countConnections } from "./connections.ts";
import { formatDuration } from "./duration.ts";
import { log } from "./log.ts";
import { sleep, untilAborted } from "./wait.ts";

export type DrainPhase = "idle" | "draining" | "drained" | "timed_out" | "failed";
export type FinalPhase = Exclude<DrainPhase, "idle" | "draining">;
/** Why a drain ended: the count reached the threshold, Envoy went away, another process finished it, the deadline, or a fault. */
export type DrainReason = "threshold" | "envoy_gone" | "handed_off" | "timeout" | "error";

export interface DrainOutcome {
  phase: FinalPhase;
  reason: DrainReason;
  /** Open connections at the last successful poll, if any. */
  openConnections: number | undefined;
  elapsedMs: number;
}

/** What one poll found, for progress lines and logs. */
export interface PollReport {
  openConnections: number;
  minOpenConnections: number;
  elapsedMs: number;
  /** Milliseconds until the drain gives up, if it has a deadline. */
  remainingMs: number | undefined;
}

/** Everything an operator may want to see about the drain (served at /status and /metrics). */
export interface DrainSnapshot {
  phase: DrainPhase;
  reason: DrainReason | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  openConnections: number | undefined;
  /** Listeners still holding connections at the last poll. */
  byListener: Map<string, number>;
  polls: number;
  healthCheckFailPosts: number;
  adminErrors: Record<AdminErrorKind, number>;
}

export type DrainSettings = Pick<
  Config,
  | "drainDelayMs"
  | "checkDelayMs"
  | "checkIntervalMs"
  | "minOpenConnections"
  | "drainTimeoutMs"
  | "drainListeners"
  | "connectionStat"
  | "ignoreListeners"
  | "adminUnreachableThreshold"
>;

/** Contour's backoff for POST /healthcheck/fail: 4 attempts, 200 ms doubling by 5. */
const HEALTHCHECK_FAIL_RETRY = { attempts: 4, firstDelayMs: 200, factor: 5 } as const;

/** Thrown inside the sequence to stop it with a given outcome (deadline, hand-off, Envoy gone). */
class Stop {
  constructor(
    readonly phase: FinalPhase,
    readonly reason: DrainReason,
  ) {}
}

export class Drain {
  readonly snapshot: DrainSnapshot = {
    phase: "idle",
    reason: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    openConnections: undefined,
    byListener: new Map(),
    polls: 0,
    healthCheckFailPosts: 0,
    adminErrors: Object.fromEntries(ADMIN_ERROR_KINDS.map((kind) => [kind, 0])) as Record<AdminErrorKind, number>,
  };
  private running: Promise<DrainOutcome> | undefined;
  private readonly stop = new AbortController();
  private consecutiveUnreachable = 0;

  constructor(
    private readonly settings: DrainSettings,
    private readonly admin: AdminClient,
    private readonly onPoll: (report: PollReport) => void = () => {},
  ) {}

  /** Starts the drain, or joins the one already started; a finished drain answers at once. */
  start(): Promise<DrainOutcome> {
    this.running ??= this.run();
    return this.running;
  }

  /** Ends the drain with an outcome reached elsewhere (the exec command's ready file). */
  finishElsewhere(phase: FinalPhase): Promise<DrainOutcome> {
    if (!this.stop.signal.aborted) this.stop.abort(new Stop(phase, "handed_off"));
    return this.start();
  }

  private elapsedMs(): number {
    return this.snapshot.startedAt === undefined ? 0 : Date.now() - this.snapshot.startedAt;
  }

  private async run(): Promise<DrainOutcome> {
    this.snapshot.phase = "draining";
    this.snapshot.startedAt = Date.now();
    const { drainTimeoutMs } = this.settings;
    const deadline = drainTimeoutMs > 0 ? setTimeout(() => this.stop.abort(new Stop("timed_out", "timeout")), drainTimeoutMs) : undefined;
    let stopped: Stop;
    try {
      if (!this.stop.signal.aborted)
        log.info("drain started", { admin_address: this.admin.address, drain_timeout: formatDuration(drainTimeoutMs) });
      stopped = await this.sequence();
    } catch (error) {
      if (error instanceof Stop) stopped = error;
      else {
        log.error(`drain failed: ${error instanceof Error ? error.message : String(error)}`);
        stopped = new Stop("failed", "error");
      }
    } finally {
      clearTimeout(deadline);
    }
    return this.finish(stopped);
  }

  /** The steps in order; each wait ends early when the drain is stopped. */
  private async sequence(): Promise<Stop> {
    const signal = this.stop.signal;
    await sleep(this.settings.drainDelayMs, signal);
    await this.failHealthChecks();
    if (this.settings.drainListeners) await this.drainListeners();
    await sleep(this.settings.checkDelayMs, signal);
    for (;;) {
      const count = await this.poll();
      if (count?.live) await this.refailHealthChecks();
      if (count && count.total <= this.settings.minOpenConnections) return new Stop("drained", "threshold");
      await sleep(this.settings.checkIntervalMs, signal);
    }
  }

  /** Records the outcome, logs it once, and settles every waiter. */
  private finish(stopped: Stop): DrainOutcome {
    const outcome: DrainOutcome = {
      phase: stopped.phase,
      reason: stopped.reason,
      openConnections: this.snapshot.openConnections,
      elapsedMs: this.elapsedMs(),
    };
    Object.assign(this.snapshot, { phase: outcome.phase, reason: outcome.reason, finishedAt: Date.now() });
    const fields = { reason: outcome.reason, open_connections: outcome.openConnections, elapsed: formatDuration(outcome.elapsedMs) };
    if (outcome.phase === "drained") log.info("drain complete", fields);
    else if (outcome.phase === "timed_out")
      log.warn("drain timed out; connections still open", { ...fields, listeners: Object.fromEntries(this.snapshot.byListener) });
    else log.error("drain failed", fields);
    return outcome;
  }

  /** Runs one admin call, counting its errors; ends the drain once Envoy has refused enough times in a row. */
  private async admitted<T>(call: () => Promise<T>): Promise<T | AdminError> {
    try {
      const value = await untilAborted(call(), this.stop.signal);
      this.consecutiveUnreachable = 0;
      return value;
    } catch (error) {
      if (!(error instanceof AdminError)) throw error;
      this.snapshot.adminErrors[error.kind] += 1;
      this.consecutiveUnreachable = error.kind === "unreachable" ? this.consecutiveUnreachable + 1 : 0;
      if (this.consecutiveUnreachable >= this.settings.adminUnreachableThreshold) {
        log.warn("Envoy's admin API refuses connections: Envoy is gone, so no connection is left to protect", {
          admin_address: this.admin.address,
          consecutive_refusals: this.consecutiveUnreachable,
        });
        throw new Stop("drained", "envoy_gone");
      }
      return error;
    }
  }

  /** Makes Envoy fail health checks (so it drain-closes connections), retrying with backoff. */
  private async failHealthChecks(): Promise<void> {
    const { attempts, firstDelayMs, factor } = HEALTHCHECK_FAIL_RETRY;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const result = await this.admitted(() => this.admin.failHealthChecks());
      if (!(result instanceof AdminError)) {
        this.snapshot.healthCheckFailPosts += 1;
        log.info("Envoy is failing health checks", { admin_address: this.admin.address, attempt });
        return;
      }
      log.warn(`could not fail Envoy's health checks: ${result.message}`, { attempt, attempts });
      if (attempt < attempts) await sleep(firstDelayMs * factor ** (attempt - 1), this.stop.signal);
    }
    log.error("giving up on POST /healthcheck/fail; polling connections anyway");
  }

  /** Starts Envoy's graceful listener drain, which also drain-closes connections; it cannot be undone. */
  private async drainListeners(): Promise<void> {
    const result = await this.admitted(() => this.admin.drainListeners());
    if (result instanceof AdminError) log.warn(`could not drain listeners: ${result.message}`);
    else log.info("Envoy is draining its listeners (graceful, skip_exit)");
  }

  /** Envoy reports health checks passing mid-drain: it restarted (or someone undid the drain), so fail them again. */
  private async refailHealthChecks(): Promise<void> {
    log.warn("Envoy is passing health checks again (restarted, or /healthcheck/ok was posted): failing them again");
    const result = await this.admitted(() => this.admin.failHealthChecks());
    if (result instanceof AdminError) return void log.warn(`could not fail Envoy's health checks: ${result.message}`);
    this.snapshot.healthCheckFailPosts += 1;
    if (this.settings.drainListeners) await this.drainListeners();
  }

  /** Counts open downstream connections once; an error is logged and counts as no answer, never as zero. */
  private async poll(): Promise<ConnectionCount | undefined> {
    const { connectionStat, ignoreListeners, minOpenConnections, drainTimeoutMs } = this.settings;
    const result = await this.admitted(async () =>
      countConnections(connectionStat, await this.admin.stats(connectionStatsPath(connectionStat)), ignoreListeners),
    );
    this.snapshot.polls += 1;
    if (result instanceof AdminError) {
      log.warn(`connection count failed: ${result.message}`, { error_kind: result.kind });
      return undefined;
    }
    Object.assign(this.snapshot, { openConnections: result.total, byListener: result.byListener });
    const elapsedMs = this.elapsedMs();
    this.onPoll({
      openConnections: result.total,
      minOpenConnections,
      elapsedMs,
      remainingMs: drainTimeoutMs > 0 ? Math.max(0, drainTimeoutMs - elapsedMs) : undefined,
    });
    return result;
  }
}
