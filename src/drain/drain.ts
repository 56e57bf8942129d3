/** The drain sequence, shared by the sidecar, the hook and their tests: one drain per process. */
import { formatDuration } from "../duration.ts";
import { ADMIN_ERROR_KINDS, AdminError, type AdminErrorKind } from "../envoy/admin-error.ts";
import { describeMissingStats, type EnvoyAdmin } from "../envoy/client.ts";
import type { ConnectionCount } from "../envoy/stats.ts";
import { errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { type Clock, realClock, untilAborted } from "../wait.ts";

export type DrainPhase = "idle" | "draining" | "drained" | "timed_out" | "failed";
export type FinalPhase = Exclude<DrainPhase, "idle" | "draining">;
/**
 * Why a drain ended: the count reached the threshold, an Envoy that had answered went away, another process finished
 * it, the deadline passed, Envoy never answered at the configured address, an operator cut it short, or a fault.
 */
export type DrainReason = "threshold" | "envoy_gone" | "handed_off" | "timeout" | "envoy_unreachable" | "interrupted" | "error";

export interface DrainOutcome {
  phase: FinalPhase;
  reason: DrainReason;
  /** Open connections at the last successful count, if any. */
  openConnections: number | undefined;
  elapsedMs: number;
}

/** What one count found, for progress lines and logs. */
export interface PollReport {
  openConnections: number;
  minOpenConnections: number;
  elapsedMs: number;
  /** Milliseconds until the drain gives up, if it has a deadline. */
  remainingMs: number | undefined;
}

/** Something that keeps the drain from seeing Envoy, found at start-up or by a poll; cleared by the next good count. */
export interface EnvoyProblem {
  kind: Extract<AdminErrorKind, "unreachable" | "stats_missing">;
  message: string;
}

/** Everything an operator may want to see about the drain (served at /status and /metrics). */
export interface DrainSnapshot {
  phase: DrainPhase;
  reason: DrainReason | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  openConnections: number | undefined;
  /** Listeners still holding connections at the last count. */
  byListener: Map<string, number>;
  polls: number;
  healthCheckFailPosts: number;
  adminErrors: Record<AdminErrorKind, number>;
  problem: EnvoyProblem | undefined;
}

/** The drain's own settings; the CLI builds them from flags. */
export interface DrainSettings {
  /** Wait before failing health checks, so load balancers notice the pod is terminating. */
  drainDelayMs: number;
  /** Wait after failing health checks before the first count. */
  checkDelayMs: number;
  checkIntervalMs: number;
  /** Done at or below this many open connections. */
  minOpenConnections: number;
  /** Give up after this long; 0 means never. */
  drainTimeoutMs: number;
  /** Also start Envoy's irreversible graceful listener drain. */
  drainListeners: boolean;
  /** Refusals in a row, from an Envoy that had answered, after which it counts as gone. */
  adminUnreachableThreshold: number;
  /** The drain is not complete before this long, whatever the count (Envoy Gateway's minimum drain duration). */
  minDrainMs: number;
  /**
   * Start Envoy's listener drain first and fail health checks only this long after it, so load balancers that
   * follow readiness keep sending traffic while connections already drain (0: fail them at once).
   */
  healthCheckFailDelayMs: number;
}

/** How POST /healthcheck/fail is retried. */
export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  factor: number;
}

/** Contour's backoff for POST /healthcheck/fail: 4 attempts, 200 ms doubling by 5. */
export const HEALTHCHECK_FAIL_RETRY: RetryPolicy = { attempts: 4, firstDelayMs: 200, factor: 5 };

export interface DrainOptions {
  clock?: Clock;
  retry?: RetryPolicy;
  onPoll?: (report: PollReport) => void;
}

/** One log line per count, with the fields an operator filters on: what a drain reports unless told otherwise. */
export function logPoll(report: PollReport): void {
  log.info("open connections", {
    open_connections: report.openConnections,
    min_open_connections: report.minOpenConnections,
    elapsed: formatDuration(report.elapsedMs),
    ...(report.remainingMs === undefined ? {} : { remaining: formatDuration(report.remainingMs) }),
  });
}

/** The reason the drain's signal aborts with: how the sequence ends early (deadline, hand-off, Envoy gone). */
class DrainEnded extends Error {
  override name = "DrainEnded";
  constructor(
    readonly phase: FinalPhase,
    readonly reason: DrainReason,
  ) {
    super(`drain ended: ${phase} (${reason})`);
  }
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: AdminError };

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
    problem: undefined,
  };
  private running: Promise<DrainOutcome> | undefined;
  private readonly ended = new AbortController();
  private consecutiveRefusals = 0;
  private announcedProblem: EnvoyProblem["kind"] | undefined;
  private readonly clock: Clock;
  private readonly retry: RetryPolicy;
  private readonly onPoll: (report: PollReport) => void;

  constructor(
    private readonly settings: DrainSettings,
    private readonly admin: EnvoyAdmin,
    options: DrainOptions = {},
  ) {
    this.clock = options.clock ?? realClock;
    this.retry = options.retry ?? HEALTHCHECK_FAIL_RETRY;
    this.onPoll = options.onPoll ?? logPoll;
  }

  /** Starts the drain, or joins the one already started; a finished drain answers at once. */
  start(): Promise<DrainOutcome> {
    this.running ??= this.run();
    return this.running;
  }

  /** Ends the drain with an outcome reached elsewhere (the hook's ready file). */
  finishElsewhere(phase: FinalPhase): Promise<DrainOutcome> {
    this.end(phase, "handed_off");
    return this.start();
  }

  /** Cuts the drain short (a second signal to the supervisor): it ends as failed, and its waiters are answered. */
  interrupt(): Promise<DrainOutcome> {
    this.end("failed", "interrupted");
    return this.start();
  }

  /**
   * Records what keeps the drain from seeing Envoy (or that nothing does), logging each kind of problem once;
   * `announce` false records it quietly (Envoy is still starting).
   */
  noteProblem(problem: EnvoyProblem | undefined, announce = true): void {
    if (problem && announce && problem.kind !== this.announcedProblem) {
      log.warn(problem.message, { admin_address: this.admin.address });
      this.announcedProblem = problem.kind;
    }
    if (!problem) this.announcedProblem = undefined;
    this.snapshot.problem = problem;
  }

  private end(phase: FinalPhase, reason: DrainReason): void {
    if (!this.ended.signal.aborted) this.ended.abort(new DrainEnded(phase, reason));
  }

  private elapsedMs(): number {
    return this.snapshot.startedAt === undefined ? 0 : this.clock.now() - this.snapshot.startedAt;
  }

  private async run(): Promise<DrainOutcome> {
    this.snapshot.phase = "draining";
    this.snapshot.startedAt = this.clock.now();
    const deadline = this.startDeadline();
    let ended: DrainEnded;
    try {
      if (!this.ended.signal.aborted)
        log.info("drain started", { admin_address: this.admin.address, drain_timeout: formatDuration(this.settings.drainTimeoutMs) });
      ended = await this.sequence();
    } catch (error) {
      if (error instanceof DrainEnded) ended = error;
      else {
        log.error(`drain failed: ${errorMessage(error)}`);
        ended = new DrainEnded("failed", "error");
      }
    } finally {
      deadline.abort();
    }
    return this.finish(ended);
  }

  /** Ends the drain when --drain-timeout passes: failed if the address only ever refused, else timed out. */
  private startDeadline(): AbortController {
    const cancel = new AbortController();
    if (this.settings.drainTimeoutMs > 0) {
      this.clock.sleep(this.settings.drainTimeoutMs, cancel.signal).then(
        () => (this.neverAnswered() ? this.end("failed", "envoy_unreachable") : this.end("timed_out", "timeout")),
        () => {},
      );
    }
    return cancel;
  }

  /** Envoy refused every attempt and no answer was ever seen at its address: a configuration error, not a slow drain. */
  private neverAnswered(): boolean {
    return !this.admin.answered && this.snapshot.adminErrors.unreachable > 0;
  }

  /** The steps in order; each wait and each admin call ends early when the drain ends. */
  private async sequence(): Promise<DrainEnded> {
    const { drainDelayMs, healthCheckFailDelayMs, drainListeners, checkDelayMs, minOpenConnections, minDrainMs } = this.settings;
    await this.wait(drainDelayMs);
    if (healthCheckFailDelayMs > 0) {
      await this.drainListeners();
      await this.wait(healthCheckFailDelayMs);
      await this.failHealthChecks();
    } else {
      await this.failHealthChecks();
      if (drainListeners) await this.drainListeners();
    }
    await this.wait(checkDelayMs);
    for (;;) {
      const count = await this.poll();
      // A count taken while Envoy passes health checks says nothing about a drain: fail them again and count anew.
      if (count?.live) await this.refailHealthChecks();
      else if (count && count.total <= minOpenConnections && this.elapsedMs() >= minDrainMs) return new DrainEnded("drained", "threshold");
      await this.wait(this.settings.checkIntervalMs);
    }
  }

  private wait(ms: number): Promise<void> {
    return this.clock.sleep(ms, this.ended.signal);
  }

  /** Records the outcome, logs it once, and settles every waiter. */
  private finish(ended: DrainEnded): DrainOutcome {
    const outcome: DrainOutcome = {
      phase: ended.phase,
      reason: ended.reason,
      openConnections: this.snapshot.openConnections,
      elapsedMs: this.elapsedMs(),
    };
    Object.assign(this.snapshot, { phase: outcome.phase, reason: outcome.reason, finishedAt: this.clock.now() });
    const fields = { reason: outcome.reason, open_connections: outcome.openConnections, elapsed: formatDuration(outcome.elapsedMs) };
    if (outcome.phase === "drained") log.info("drain complete", fields);
    else if (outcome.phase === "timed_out") log.warn(`drain timed out; ${this.lastCountText()}`, fields);
    else if (outcome.reason === "envoy_unreachable")
      log.error(`drain failed: Envoy's admin API never answered at ${this.admin.address}; check --admin-address`, fields);
    else log.error("drain failed", fields);
    return outcome;
  }

  /** What the last good count said, for the time-out line; "no count was read" rather than an empty listing. */
  private lastCountText(): string {
    if (this.snapshot.openConnections === undefined) return "no connection count was read";
    const listeners = [...this.snapshot.byListener].map(([id, n]) => `${id}=${n}`).join(", ");
    return `connections still open${listeners ? `: ${listeners}` : ""}`;
  }

  /** Runs one admin call and counts its errors; after enough refusals from an Envoy that had answered, ends the drain. */
  private async attempt<T>(call: (cancel: AbortSignal) => Promise<T>): Promise<Attempt<T>> {
    try {
      const value = await untilAborted(call(this.ended.signal), this.ended.signal);
      this.consecutiveRefusals = 0;
      return { ok: true, value };
    } catch (error) {
      if (!(error instanceof AdminError)) throw error;
      this.snapshot.adminErrors[error.kind] += 1;
      this.consecutiveRefusals = error.kind === "unreachable" ? this.consecutiveRefusals + 1 : 0;
      if (error.kind === "unreachable") this.noteRefusal(error);
      return { ok: false, error };
    }
  }

  /**
   * A refusal means "Envoy exited" only from an address that answered before; from one that never did, it is a
   * configuration error, and the drain keeps trying until its deadline.
   */
  private noteRefusal(error: AdminError): void {
    if (!this.admin.answered) {
      this.noteProblem({ kind: "unreachable", message: `Envoy's admin API has never answered: ${error.message}; check --admin-address` });
      return;
    }
    if (this.consecutiveRefusals < this.settings.adminUnreachableThreshold) return;
    log.warn("Envoy's admin API refuses connections: Envoy is gone, so no connection is left to protect", {
      admin_address: this.admin.address,
      consecutive_refusals: this.consecutiveRefusals,
    });
    this.end("drained", "envoy_gone");
  }

  /** Makes Envoy fail health checks (so it drain-closes connections), retrying with backoff. */
  private async failHealthChecks(): Promise<void> {
    const { attempts, firstDelayMs, factor } = this.retry;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const result = await this.attempt((cancel) => this.admin.failHealthChecks(cancel));
      if (result.ok) {
        this.snapshot.healthCheckFailPosts += 1;
        log.info("Envoy is failing health checks", { admin_address: this.admin.address, attempt });
        return;
      }
      log.warn(`could not fail Envoy's health checks: ${result.error.message}`, { attempt, attempts });
      if (attempt < attempts) await this.wait(firstDelayMs * factor ** (attempt - 1));
    }
    log.error("giving up on POST /healthcheck/fail for now; polling connections, and failing them again while Envoy reports live");
  }

  /** Starts Envoy's graceful listener drain, which also drain-closes connections; it cannot be undone. */
  private async drainListeners(): Promise<void> {
    const result = await this.attempt((cancel) => this.admin.drainListeners(cancel));
    if (!result.ok) log.warn(`could not drain listeners: ${result.error.message}`);
    else log.info("Envoy is draining its listeners (graceful, skip_exit)");
  }

  /** Envoy passes health checks mid-drain: it restarted, someone undid the drain, or the first POST failed. Fail them again. */
  private async refailHealthChecks(): Promise<void> {
    log.warn(
      "Envoy is passing health checks (restarted, /healthcheck/ok was posted, or failing them did not work yet): failing them again",
    );
    const result = await this.attempt((cancel) => this.admin.failHealthChecks(cancel));
    if (!result.ok) return void log.warn(`could not fail Envoy's health checks: ${result.error.message}`);
    this.snapshot.healthCheckFailPosts += 1;
    if (this.settings.drainListeners) await this.drainListeners();
  }

  /** Counts open downstream connections once; an error is logged and counts as no answer, never as zero. */
  private async poll(): Promise<ConnectionCount | undefined> {
    const { minOpenConnections, drainTimeoutMs } = this.settings;
    const result = await this.attempt((cancel) => this.admin.openConnections(undefined, cancel));
    this.snapshot.polls += 1;
    if (!result.ok) {
      if (result.error.kind === "stats_missing")
        this.noteProblem({
          kind: "stats_missing",
          message: await untilAborted(describeMissingStats(this.admin, result.error, this.ended.signal), this.ended.signal),
        });
      else log.warn(`connection count failed: ${result.error.message}`, { error_kind: result.error.kind });
      return undefined;
    }
    this.noteProblem(undefined);
    Object.assign(this.snapshot, { openConnections: result.value.total, byListener: result.value.byListener });
    const elapsedMs = this.elapsedMs();
    this.onPoll({
      openConnections: result.value.total,
      minOpenConnections,
      elapsedMs,
      remainingMs: drainTimeoutMs > 0 ? Math.max(0, drainTimeoutMs - elapsedMs) : undefined,
    });
    return result.value;
  }
}
