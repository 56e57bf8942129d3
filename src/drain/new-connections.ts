/**
 * New connections Envoy accepts while it drains, read from its accepted-connection counters one poll after another:
 * how the drain knows that the load balancer has stopped sending.
 */

interface Arrival {
  at: number;
  byListener: Map<string, number>;
}

/** What one poll found arriving since the poll before. */
export interface NewConnectionsSeen {
  /** New connections since the previous poll, over all counted listeners. */
  count: number;
  byListener: Map<string, number>;
  /** A counter went down (Envoy restarted, or a hot restart handed over): the quiet clock starts again. */
  reset: boolean;
}

const sum = (counts: Iterable<number>) => {
  let total = 0;
  for (const n of counts) total += n;
  return total;
};

/** Adds each listener's counts into `into`. */
function addInto(into: Map<string, number>, from: Map<string, number>): Map<string, number> {
  for (const [id, n] of from) into.set(id, (into.get(id) ?? 0) + n);
  return into;
}

export class NewConnections {
  private previous: Map<string, number> | undefined;
  /** Since when the counters have been watched without a reset: no quiet period is complete before this plus its length. */
  private watchedSince: number | undefined;
  /** Polls that saw new connections, within the longest window asked about. */
  private arrivals: Arrival[] = [];
  /** When a poll last saw a new connection. */
  lastArrivalAt: number | undefined;

  constructor(private readonly keepMs: number) {}

  /** Compares the counters with the previous poll's; the first poll only sets the baseline. */
  observe(at: number, accepted: Map<string, number>): NewConnectionsSeen {
    const previous = this.previous;
    this.previous = accepted;
    if (!previous) {
      this.watchedSince = at;
      return { count: 0, byListener: new Map(), reset: false };
    }
    const byListener = new Map<string, number>();
    let reset = false;
    for (const [id, now] of accepted) {
      const before = previous.get(id) ?? 0;
      if (now < before) reset = true;
      else if (now > before) byListener.set(id, now - before);
    }
    if (reset) {
      this.watchedSince = at;
      this.arrivals = [];
      this.lastArrivalAt = at;
      return { count: sum(byListener.values()), byListener, reset };
    }
    this.arrivals = this.arrivals.filter((arrival) => arrival.at > at - this.keepMs);
    if (byListener.size > 0) {
      this.arrivals.push({ at, byListener });
      this.lastArrivalAt = at;
    }
    return { count: sum(byListener.values()), byListener, reset };
  }

  /** New connections seen by polls in the last `windowMs`, by listener. */
  within(now: number, windowMs: number): Map<string, number> {
    return this.arrivals
      .filter((arrival) => arrival.at > now - windowMs)
      .reduce((all, arrival) => addInto(all, arrival.byListener), new Map());
  }

  /** How long the counters have been watched without a reset (0 before the first poll). */
  watchedFor(now: number): number {
    return this.watchedSince === undefined ? 0 : now - this.watchedSince;
  }

  /** Whether Envoy has been watched for `periodMs` and accepted at most `tolerated` new connections in it. */
  quiet(now: number, periodMs: number, tolerated: number): boolean {
    if (this.watchedSince === undefined || now - this.watchedSince < periodMs) return false;
    return sum(this.within(now, periodMs).values()) <= tolerated;
  }
}
