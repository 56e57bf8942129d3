/** The drain sequence, shared by the sidecar, the hook and their tests: one drain per process. */
import { formatDuration } from "../duration.ts";
import { ADMIN_ERROR_KINDS, AdminError, type AdminErrorKind } from "../envoy/admin-error.ts";
import { describeMissingStats, type EnvoyAdmin } from "../envoy/client.ts";
import { ACCEPTED_STATS, type ConnectionCount, REQUEST_COUNTER_STATS, REQUEST_STATS } from "../envoy/stats.ts";
import { errorMessage } from "../errors.ts";
import { log } from "../log.ts";
import { type Clock, realClock, untilAborted } from "../wait.ts";
import { NewConnections } from "./new-connections.ts";
import { type DrainSettings, FASTEST_POLL_MS } from "./settings.ts";
import { holdersText, type TrafficHolders, trafficHolders } from "./traffic.ts";

export const DRAIN_PHASES = ["idle", "draining", "drained", "timed_out", "failed"] as const;
export type DrainPhase = (typeof DRAIN_PHASES)[number];
export type FinalPhase = Exclude<DrainPhase, "idle" | "draining">;
/**
 * Why a drain ended: the count reached the threshold, only long-lived sessions were left once their budget was
 * spent, an Envoy that had answered went away, another process finished it, the deadline passed, Envoy never
 * answered at the configured address, an operator cut it short, or a fault.
 */
export type DrainReason =
  | "threshold"
  | "long_lived"
  | "envoy_gone"
  | "handed_off"
  | "timeout"
  | "envoy_unreachable"
  | "interrupted"
  | "error";

export interface DrainOutcome {
  phase: FinalPhase;
  reason: DrainReason;
  /** Open connections at the last successful count, if any. */
  openConnections: number | undefined;
  /** What held the drain at the last traffic count (what is left to be cut), if connections were split. */
  traffic?: TrafficHolders | undefined;
  elapsedMs: number;
}

/** What one count found, for progress lines and logs. */
export interface PollReport {
  openConnections: number;
  minOpenConnections: number;
  elapsedMs: number;
  /** Milliseconds until the drain gives up, if it has a deadline. */
  remainingMs: number | undefined;
  /** Listeners (or HTTP prefixes) still holding connections. */
  byListener: Map<string, number>;
  /** New connections Envoy accepted since the previous report, by listener, and over how many milliseconds. */
  newConnections: Map<string, number>;
  newConnectionsOverMs: number;
  /** Open connections split into busy, idle, long-lived and non-HTTP, when the drain ends on traffic. */
  traffic?: TrafficHolders | undefined;
}

/** Something that keeps the drain from seeing Envoy, found at start-up or by a poll; cleared by the next good count. */
export const ENVOY_PROBLEM_KINDS = ["unreachable", "stats_missing"] as const satisfies readonly AdminErrorKind[];
export interface EnvoyProblem {
  kind: (typeof ENVOY_PROBLEM_KINDS)[number];
  message: string;
}

/** Everything an operator may want to see about the drain (served at /status and /metrics). */
export interface DrainSnapshot {
  phase: DrainPhase;
  reason: DrainReason | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  openConnections: number | undefined;
  /** Open connections at the first count: what the drain had to drain. */
  firstOpenConnections: number | undefined;
  /** Listeners still holding connections at the last count. */
  byListener: Map<string, number>;
  /** The last count's split into busy, idle, long-lived and non-HTTP, when the drain ends on traffic. */
  traffic: TrafficHolders | undefined;
  /** New connections by listener within the last check interval (empty when none, or when the counters are not read). */
  newByListener: Map<string, number>;
  /** When a poll last saw a new connection. */
  lastNewConnectionAt: number | undefined;
  polls: number;
  /** Polls reported as a log line (one per check interval, plus the last). */
  reports: number;
  healthCheckFailPosts: number;
  adminErrors: Record<AdminErrorKind, number>;
  problem: EnvoyProblem | undefined;
  /** The settings the drain runs with: those of the process that owns it, fixed when it is made. */
  settings: DrainSettings;
}

/** How POST /healthcheck/fail is retried. */
export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  factor: number;
}

/** Contour's backoff for POST /healthcheck/fail: 4 attempts, 200 ms doubling by 5. */
export const HEALTHCHECK_FAIL_RETRY: RetryPolicy = { attempts: 4, firstDelayMs: 200, factor: 5 };

/** Who hears of a drain's start and end besides the log (the pod's Events); each call settles by itself, bounded. */
export interface DrainEvents {
  started(settings: DrainSettings): Promise<void>;
  finished(outcome: DrainOutcome, snapshot: DrainSnapshot): Promise<void>;
}

/** A deadline from outside the drain's settings (kubelet's grace period), learnt once the drain has started. */
export interface OuterDeadline {
  /** When the drain must have ended (Date.now() time). */
  endsAt: number;
  /** What it is, for the time-out line: "3s before kubelet's SIGKILL (its grace period of 6s)". */
  what: string;
}

export interface DrainOptions {
  clock?: Clock;
  onPoll?: (report: PollReport) => void;
  events?: DrainEvents;
  /** Asked when the drain starts, never awaited by it: a deadline that ends the drain if it comes before its own. */
  outerDeadline?: () => Promise<OuterDeadline | undefined>;
}

/** The largest entries of a count by listener, as a JSON object for a log line. */
function largest(byListener: Map<string, number>, limit = 5): Record<string, number> {
  return Object.fromEntries([...byListener].sort(([, a], [, b]) => b - a).slice(0, limit));
}

/**
 * "12.0 new connections/s on a (10), b (2)": where new connections keep arriving; counting traffic, "arrivals"
 * (requests by HTTP prefix, and non-HTTP connections).
 */
export function arrivalText(newConnections: Map<string, number>, overMs: number, what = "new connections"): string {
  const total = [...newConnections.values()].reduce((a, b) => a + b, 0);
  const rate = overMs > 0 ? (total * 1000) / overMs : total;
  const where = Object.entries(largest(newConnections, 3))
    .map(([id, n]) => `${id} (${n})`)
    .join(", ");
  return `${rate.toFixed(1)} ${what}/s on ${where}`;
}

/** The split as structured fields: totals, and each HTTP prefix's share (the largest few). */
export function holderFields(traffic: TrafficHolders): Record<string, unknown> {
  const prefixes = [...traffic.byPrefix]
    .sort(([, a], [, b]) => b.busy + b.longLived + b.idle - (a.busy + a.longLived + a.idle))
    .slice(0, 5)
    .map(([prefix, share]) => [prefix, { busy: share.busy, idle: share.idle, long_lived: share.longLived }]);
  return {
    busy: traffic.busy,
    idle: traffic.idle,
    long_lived: traffic.longLived,
    non_http: traffic.nonHttp,
    ...(prefixes.length > 0 ? { http: Object.fromEntries(prefixes) } : {}),
  };
}

/** One log line per reported count, naming who holds the drain: what a drain reports unless told otherwise. */
export function logPoll(report: PollReport): void {
  const arriving = report.newConnections.size > 0;
  const what = report.traffic ? `open connections: ${holdersText(report.traffic)}` : "open connections";
  const newWord = report.traffic ? "arrivals" : "new connections";
  log.info(arriving ? `${what}; still receiving ${arrivalText(report.newConnections, report.newConnectionsOverMs, newWord)}` : what, {
    open_connections: report.openConnections,
    min_open_connections: report.minOpenConnections,
    elapsed: formatDuration(report.elapsedMs),
    ...(report.remainingMs === undefined ? {} : { remaining: formatDuration(report.remainingMs) }),
    ...(report.byListener.size > 0 ? { listeners: largest(report.byListener) } : {}),
    ...(report.traffic ? holderFields(report.traffic) : {}),
    ...(arriving ? { new_connections: largest(report.newConnections) } : {}),
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

/** What a snapshot shows before any count: no listener. Shared, never changed: counts replace it. */
const NO_LISTENERS: Map<string, number> = new Map();

/** Open connections this close to the threshold count as the drain's end being near: poll fast. */
const NEAR_END_CONNECTIONS = 10;
/** A poll waits at least this many times the previous poll's own duration, so Envoy spends at most 1/10 of its time answering. */
const POLL_COST_FACTOR = 10;

export class Drain {
  readonly snapshot: DrainSnapshot;
  private running: Promise<DrainOutcome> | undefined;
  // Made when first needed: an idle sidecar's start stays small (footprint.ts: JavaScriptCore's warm-up).
  private finished: PromiseWithResolvers<DrainOutcome> | undefined;
  private readonly ended = new AbortController();
  private consecutiveRefusals = 0;
  private announcedProblem: EnvoyProblem["kind"] | undefined;
  private listenersDrained = false;
  /** Made when the drain starts: an idle sidecar's start stays small. */
  private arrivalsSeen: NewConnections | undefined;
  private countersMissingAnnounced = false;
  private countersMissing = false;
  private trafficMissingAnnounced = false;
  /** Why the last complete() count said done: at the threshold, or with only long-lived sessions past their budget. */
  private completion: DrainReason = "threshold";
  private lastReportAt: number | undefined;
  private readonly clock: Clock;
  private readonly onPoll: (report: PollReport) => void;
  private readonly events: DrainEvents | undefined;
  private readonly outerDeadline: (() => Promise<OuterDeadline | undefined>) | undefined;
  /** When the outer deadline ends the drain (clock time), once learnt; and what it was, once it has ended the drain. */
  private outerEndsAt: number | undefined;
  private endedByOuter: OuterDeadline | undefined;
  /** The Events posted so far, each bounded: a process waits for them before it exits. */
  private readonly eventsPosted: Promise<void>[] = [];

  constructor(
    settings: DrainSettings,
    private readonly admin: EnvoyAdmin,
    options: DrainOptions = {},
  ) {
    this.clock = options.clock ?? realClock;
    this.onPoll = options.onPoll ?? logPoll;
    this.events = options.events;
    this.outerDeadline = options.outerDeadline;
    this.snapshot = {
      phase: "idle",
      reason: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      openConnections: undefined,
      firstOpenConnections: undefined,
      byListener: NO_LISTENERS,
      traffic: undefined,
      newByListener: NO_LISTENERS,
      lastNewConnectionAt: undefined,
      polls: 0,
      reports: 0,
      healthCheckFailPosts: 0,
      adminErrors: Object.fromEntries(ADMIN_ERROR_KINDS.map((kind) => [kind, 0])) as Record<AdminErrorKind, number>,
      problem: undefined,
      settings,
    };
  }

  private get settings(): DrainSettings {
    return this.snapshot.settings;
  }

  /** New connections seen by the counts, kept for the longest window asked about (quiet period or interval). */
  private get arrivals(): NewConnections {
    const { quietPeriodMs, checkIntervalMs, longLivedBudgetMs } = this.settings;
    this.arrivalsSeen ??= new NewConnections(Math.max(quietPeriodMs, checkIntervalMs, longLivedBudgetMs));
    return this.arrivalsSeen;
  }

  /** Starts the drain, or joins the one already started; a finished drain answers at once. */
  start(): Promise<DrainOutcome> {
    this.running ??= this.run();
    return this.running;
  }

  /** Settles once every Event about this drain has been posted, or has given up (each is bounded). */
  eventsSettled(): Promise<void> {
    return Promise.all(this.eventsPosted).then(() => undefined);
  }

  /** Settles when the drain ends, without starting it: a waiter for a drain that another party starts. */
  whenFinished(): Promise<DrainOutcome> {
    if (this.snapshot.phase !== "idle" && this.snapshot.phase !== "draining") return this.start();
    this.finished ??= Promise.withResolvers<DrainOutcome>();
    return this.finished.promise;
  }

  /** Ends the drain with an outcome reached elsewhere: the hook's ready file, a second signal, Envoy's exit. */
  endWith(phase: FinalPhase, reason: DrainReason): Promise<DrainOutcome> {
    this.end(phase, reason);
    return this.start();
  }

  /**
   * Ends a drain to which Envoy's admin API has given no usable answer (no health-check fail taken, no count read):
   * the address is silent, or answers as something else would (the supervisor's bound); true if it did.
   */
  endIfNoUsableAnswer(): boolean {
    const { phase, openConnections, healthCheckFailPosts } = this.snapshot;
    if (phase !== "draining" || openConnections !== undefined || healthCheckFailPosts > 0) return false;
    this.end("failed", "envoy_unreachable");
    return true;
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
    void this.deadline();
    void this.endByOuterDeadline();
    // Ended before it started (the hook's ready file, or the wait for it, on a sidecar that does not drain): whoever
    // ended it has said how, and this drain counted nothing to add.
    const endedElsewhere = this.ended.signal.aborted;
    let ended: DrainEnded;
    try {
      if (!endedElsewhere) {
        log.info("drain started", { admin_address: this.admin.address, drain_timeout: formatDuration(this.settings.drainTimeoutMs) });
        if (this.events) this.eventsPosted.push(this.events.started(this.settings));
      }
      ended = await this.sequence();
    } catch (error) {
      if (error instanceof DrainEnded) ended = error;
      else {
        log.error(`drain failed: ${errorMessage(error)}`);
        ended = new DrainEnded("failed", "error");
      }
    }
    this.end(ended.phase, ended.reason); // also stops the deadline's wait
    return this.finish(ended, !endedElsewhere);
  }

  /** Ends the drain when --drain-timeout passes: failed if the address only ever refused, else timed out. */
  private async deadline(): Promise<void> {
    const { drainTimeoutMs } = this.settings;
    if (drainTimeoutMs === 0) return;
    try {
      await this.wait(drainTimeoutMs);
    } catch {
      return; // the drain ended first
    }
    this.timeUp();
  }

  /** Ends the drain at the outer deadline, once learnt, if it is still running then. */
  private async endByOuterDeadline(): Promise<void> {
    if (!this.outerDeadline) return;
    try {
      const outer = await untilAborted(this.outerDeadline(), this.ended.signal);
      if (!outer) return;
      const ms = outer.endsAt - Date.now();
      this.outerEndsAt = this.clock.now() + ms;
      await this.clock.sleep(ms, this.ended.signal);
      this.endedByOuter = outer;
    } catch {
      return; // the drain ended first
    }
    this.timeUp();
  }

  /** A deadline passed: failed if the address only ever refused, else timed out. */
  private timeUp(): void {
    if (this.neverAnswered()) this.end("failed", "envoy_unreachable");
    else this.end("timed_out", "timeout");
  }

  /** Envoy refused every attempt and no answer was ever seen at its address: a configuration error, not a slow drain. */
  private neverAnswered(): boolean {
    return !this.admin.answered && this.snapshot.adminErrors.unreachable > 0;
  }

  /** The steps in order; each wait and each admin call ends early when the drain ends. */
  private async sequence(): Promise<DrainEnded> {
    await this.wait(this.settings.drainDelayMs);
    if (this.settings.healthCheckFailDelayMs > 0) {
      await this.drainListeners();
      await this.wait(this.settings.healthCheckFailDelayMs);
    }
    await this.failHealthChecks();
    const failedAt = this.clock.now();
    if (this.settings.drainListeners) await this.drainListeners();
    await this.watchArrivalsUntil(failedAt);
    for (;;) {
      if (this.settings.drainListeners && !this.listenersDrained) await this.drainListeners();
      const polledAt = this.clock.now();
      const count = await this.poll();
      const pollMs = this.clock.now() - polledAt;
      // A count taken while Envoy passes health checks says nothing about a drain: fail them again and count anew.
      if (count?.live) await this.refailHealthChecks();
      else if (count && this.complete(count)) {
        this.report(count, true);
        return new DrainEnded("drained", this.completion);
      }
      if (count) this.report(count, false);
      await this.wait(this.nextPollDelay(count, pollMs));
    }
  }

  /**
   * Waits out --check-delay. With a quiet period, counts quietly through the last quiet period of it, often enough to
   * place new connections within a quarter of it: a load balancer that stopped sending during the delay has already
   * been quiet that long at the first count. (Earlier arrivals are older than a quiet period by then: not counted for.)
   * These counts are neither reported nor able to end the drain: the first reported count still comes after the delay.
   */
  private async watchArrivalsUntil(failedAt: number): Promise<void> {
    const { checkDelayMs, quietPeriodMs, checkIntervalMs } = this.settings;
    const countsAt = failedAt + checkDelayMs;
    await this.waitUntil(countsAt - quietPeriodMs);
    const pace = Math.min(checkIntervalMs, Math.max(FASTEST_POLL_MS, quietPeriodMs / 4));
    while (quietPeriodMs > 0 && this.clock.now() < countsAt) {
      await this.poll();
      await this.waitUntil(Math.min(this.clock.now() + pace, countsAt));
    }
    await this.waitUntil(countsAt);
  }

  /**
   * The count is at the threshold, the minimum duration has passed, and nothing new broke the quiet period. Counting
   * traffic, what must reach the threshold is the non-HTTP and long-lived connections, with no short request in
   * flight; once the long-lived budget is spent, long-lived sessions no longer hold the drain.
   */
  private complete(count: ConnectionCount): boolean {
    const { minOpenConnections, minDrainMs, longLivedBudgetMs } = this.settings;
    if (this.elapsedMs() < minDrainMs || !this.quiet()) return false;
    const holders = this.snapshot.traffic;
    if (!holders) return count.total <= minOpenConnections;
    if (holders.busy > 0) return false;
    if (holders.nonHttp + holders.longLived <= minOpenConnections) {
      this.completion = "threshold";
      return true;
    }
    const budgetSpent = longLivedBudgetMs > 0 && this.elapsedMs() >= longLivedBudgetMs;
    if (!budgetSpent || holders.nonHttp > minOpenConnections) return false;
    this.completion = "long_lived";
    return true;
  }

  /** No new connection for --quiet-period (beyond those tolerated), or no way to tell (off, or counters missing). */
  private quiet(): boolean {
    const { quietPeriodMs, quietConnections } = this.settings;
    return quietPeriodMs === 0 || this.countersMissing || this.arrivals.quiet(this.clock.now(), quietPeriodMs, quietConnections);
  }

  /**
   * How long until the next count: --check-interval far from the end; near it (few connections above the threshold)
   * ten times a second, but never more often than ten times a poll's own duration, so a large Envoy is not kept busy.
   */
  private nextPollDelay(count: ConnectionCount | undefined, pollMs: number): number {
    const interval = this.settings.checkIntervalMs;
    if (!count || count.live || count.total > this.settings.minOpenConnections + NEAR_END_CONNECTIONS) return interval;
    return Math.min(interval, Math.max(FASTEST_POLL_MS, pollMs * POLL_COST_FACTOR));
  }

  private wait(ms: number): Promise<void> {
    return this.clock.sleep(ms, this.ended.signal);
  }

  /** Waits until the clock reads `at` (at once if it has passed); rejects when the drain ends. */
  private waitUntil(at: number): Promise<void> {
    return this.wait(at - this.clock.now());
  }

  /** Milliseconds until the drain gives up, by its own deadline or the outer one, whichever comes first. */
  private remainingMs(elapsedMs: number): number | undefined {
    const own = this.settings.drainTimeoutMs > 0 ? this.settings.drainTimeoutMs - elapsedMs : Number.POSITIVE_INFINITY;
    const first = Math.min(own, (this.outerEndsAt ?? Number.POSITIVE_INFINITY) - this.clock.now());
    return first === Number.POSITIVE_INFINITY ? undefined : Math.max(0, first);
  }

  /** Records the outcome, logs it once (when `logged`), and settles every waiter. */
  private finish(ended: DrainEnded, logged: boolean): DrainOutcome {
    const outcome: DrainOutcome = {
      phase: ended.phase,
      reason: ended.reason,
      openConnections: this.snapshot.openConnections,
      traffic: this.snapshot.traffic,
      elapsedMs: this.elapsedMs(),
    };
    Object.assign(this.snapshot, { phase: outcome.phase, reason: outcome.reason, finishedAt: this.clock.now() });
    if (logged) this.logOutcome(outcome);
    if (this.events && this.eventsPosted.length > 0) this.eventsPosted.push(this.events.finished(outcome, this.snapshot));
    this.finished?.resolve(outcome);
    return outcome;
  }

  /** The one line that says how the drain ended, and what held it when it did not drain. */
  private logOutcome(outcome: DrainOutcome): void {
    const fields = { reason: outcome.reason, open_connections: outcome.openConnections, elapsed: formatDuration(outcome.elapsedMs) };
    if (outcome.reason === "long_lived" && outcome.traffic) log.warn(`drain complete; ${this.longLivedText(outcome.traffic)}`, fields);
    else if (outcome.phase === "drained") log.info("drain complete", fields);
    else if (outcome.phase === "timed_out") {
      const by = this.endedByOuter ? ` ${this.endedByOuter.what}` : "";
      const { minDrainMs } = this.settings;
      const counted = outcome.openConnections !== undefined;
      const early = counted && outcome.elapsedMs < minDrainMs ? ` within its minimum duration of ${formatDuration(minDrainMs)}` : "";
      log.warn(`drain timed out${by}${early}; ${this.lastCountText()}`, { ...fields, ...this.holders() });
    } else if (outcome.reason === "envoy_unreachable" && this.admin.answered)
      log.error(
        `drain failed: the admin address ${this.admin.address} answers, but not as Envoy's admin API; check --admin-address`,
        fields,
      );
    else if (outcome.reason === "envoy_unreachable")
      log.error(`drain failed: Envoy's admin API never answered at ${this.admin.address}; check --admin-address`, fields);
    else log.error("drain failed", fields);
  }

  /** "2 long-lived sessions left to be cut: ingress_http=2": what a drain that spent the budget leaves. */
  private longLivedText(traffic: TrafficHolders): string {
    const where = [...traffic.byPrefix]
      .filter(([, share]) => share.longLived > 0)
      .map(([prefix, share]) => `${prefix}=${share.longLived}`)
      .join(", ");
    return `${traffic.longLived} long-lived session${traffic.longLived === 1 ? "" : "s"} left to be cut when Envoy exits (upgraded, or in flight for over ${formatDuration(this.settings.longLivedBudgetMs)}): ${where}`;
  }

  /** Who held the drain at its end, as structured fields: listeners still open, the split, and those still receiving. */
  private holders(): Record<string, unknown> {
    const arriving = this.arrivals.within(this.clock.now(), Math.max(this.settings.quietPeriodMs, this.settings.checkIntervalMs));
    return {
      ...(this.snapshot.byListener.size > 0 ? { listeners: largest(this.snapshot.byListener) } : {}),
      ...(this.snapshot.traffic ? holderFields(this.snapshot.traffic) : {}),
      ...(arriving.size > 0 ? { new_connections: largest(arriving) } : {}),
    };
  }

  /**
   * What the last good count said, for the time-out line: what was open (split, counting traffic) and what was
   * still arriving; "no count was read" rather than an empty listing, and never "still open" with nothing open.
   */
  private lastCountText(): string {
    if (this.snapshot.openConnections === undefined) return "no connection count was read";
    const traffic = this.snapshot.traffic;
    const listeners = [...this.snapshot.byListener].map(([id, n]) => `${id}=${n}`).join(", ");
    const windowMs = Math.max(this.settings.quietPeriodMs, this.settings.checkIntervalMs);
    const arriving = this.arrivals.within(this.clock.now(), windowMs);
    const stillArriving =
      arriving.size === 0
        ? ""
        : traffic
          ? `traffic was still arriving: ${arrivalText(arriving, windowMs, "arrivals")}`
          : `new connections were still arriving: ${arrivalText(arriving, windowMs)}`;
    const open =
      this.snapshot.openConnections === 0
        ? "no connection open"
        : `connections still open${listeners ? `: ${listeners}` : ""}${traffic ? ` (${holdersText(traffic)})` : ""}`;
    return stillArriving ? `${open}; ${stillArriving}` : open;
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
    const { attempts, firstDelayMs, factor } = HEALTHCHECK_FAIL_RETRY;
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
    this.listenersDrained = true;
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
    // The listener-first order drains listeners too: a restarted Envoy needs both again.
    if (this.settings.drainListeners || this.settings.healthCheckFailDelayMs > 0) await this.drainListeners();
  }

  /** Counts open downstream connections once; an error is logged and counts as no answer, never as zero. */
  private async poll(): Promise<ConnectionCount | undefined> {
    const countTraffic = !this.settings.countIdleConnections;
    const result = await this.attempt((cancel) =>
      countTraffic ? this.admin.traffic(cancel) : this.admin.openConnections(undefined, cancel),
    );
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
    const count = result.value;
    if (countTraffic && !count.traffic && !this.trafficMissingAnnounced) {
      this.trafficMissingAnnounced = true;
      log.warn(
        `Envoy reports no ${REQUEST_STATS} gauge (its stats_matcher excludes it): requests cannot be told from idle connections, so every open connection holds the drain; include ${REQUEST_STATS} in stats_matcher`,
      );
    }
    Object.assign(this.snapshot, { openConnections: count.total, byListener: count.byListener });
    this.snapshot.firstOpenConnections ??= count.total;
    this.noteArrivals(count);
    this.snapshot.traffic = count.traffic && trafficHolders(count.traffic, (prefix) => this.arrivedWithinBudget(prefix));
    return count;
  }

  /** Requests that arrived on a prefix within the long-lived budget; undefined when that cannot be known (yet). */
  private arrivedWithinBudget(prefix: string): number | undefined {
    const budgetMs = this.settings.longLivedBudgetMs;
    const now = this.clock.now();
    if (budgetMs === 0 || this.countersMissing || this.arrivals.watchedFor(now) < budgetMs) return undefined;
    return this.arrivals.within(now, budgetMs).get(prefix) ?? 0;
  }

  /** Follows the accepted-connection counters; without them (stats_matcher), says once that the quiet period is off. */
  private noteArrivals(count: ConnectionCount): void {
    const now = this.clock.now();
    const accepted = count.traffic ? count.traffic.arrivals : count.accepted;
    this.countersMissing = accepted === undefined;
    if (!accepted) {
      if (this.settings.quietPeriodMs > 0 && !this.countersMissingAnnounced) {
        this.countersMissingAnnounced = true;
        const stat = count.traffic ? REQUEST_COUNTER_STATS : ACCEPTED_STATS[this.admin.connectionStat];
        log.warn(
          `Envoy reports no ${stat} counter (its stats_matcher excludes it): new connections cannot be seen, so the quiet period is off; include ${stat} in stats_matcher`,
        );
      }
      return;
    }
    const seen = this.arrivals.observe(now, accepted);
    if (seen.reset) log.warn("Envoy's accepted-connection counters went down (Envoy restarted): the quiet period starts again");
    this.snapshot.newByListener = this.arrivals.within(now, this.settings.checkIntervalMs);
    this.snapshot.lastNewConnectionAt = this.arrivals.lastArrivalAt;
  }

  /** Reports a count as a poll line once per --check-interval, and always the count that ends the drain. */
  private report(count: ConnectionCount, final: boolean): void {
    const now = this.clock.now();
    const since = this.lastReportAt;
    if (!final && since !== undefined && now - since < this.settings.checkIntervalMs) return;
    this.lastReportAt = now;
    this.snapshot.reports += 1;
    const { minOpenConnections } = this.settings;
    const elapsedMs = this.elapsedMs();
    const overMs = since === undefined ? 0 : now - since;
    this.onPoll({
      openConnections: count.total,
      minOpenConnections,
      elapsedMs,
      remainingMs: this.remainingMs(elapsedMs),
      byListener: count.byListener,
      newConnections: since === undefined ? new Map() : this.arrivals.within(now, overMs),
      newConnectionsOverMs: overMs,
      traffic: this.snapshot.traffic,
    });
  }
}
