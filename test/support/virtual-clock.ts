/** A clock whose time moves only when nothing else can happen: drains tested in milliseconds, the same way every run. */
import type { Clock } from "../../src/wait.ts";

interface Timer {
  at: number;
  order: number;
  wake: () => void;
  /** A sleep of the code under test, as opposed to an event the test scheduled. */
  sleep: boolean;
}

/** Lets every pending promise callback and immediate run, so that only timers are left. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class VirtualClock implements Clock {
  private time = 0;
  private order = 0;
  private readonly timers: Timer[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const timer: Timer = {
        at: this.time + ms,
        order: this.order++,
        sleep: true,
        wake: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.timers.splice(this.timers.indexOf(timer), 1);
        reject(signal.reason);
      };
      this.timers.push(timer);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Sleeps still waiting: a finished drain must leave none. */
  get pendingSleeps(): number {
    return this.timers.filter((timer) => timer.sleep).length;
  }

  /** Calls `action` at virtual time `at` (a scheduled event of a test). */
  at(at: number, action: () => void): void {
    this.timers.push({ at, order: this.order++, wake: action, sleep: false });
  }

  /** Runs until `work` settles, moving time to the next timer whenever nothing else is left to run; fails past `limitMs`. */
  async run<T>(work: Promise<T>, limitMs = 24 * 3_600_000): Promise<T> {
    let settled = false;
    work.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    for (;;) {
      await settle();
      if (settled) return work;
      this.timers.sort((a, b) => a.at - b.at || a.order - b.order);
      const next = this.timers.shift();
      if (!next) throw new Error(`nothing is scheduled at ${this.time} ms, yet the work has not settled`);
      if (next.at > limitMs) throw new Error(`the work had not settled by ${limitMs} ms of virtual time`);
      this.time = Math.max(this.time, next.at);
      next.wake();
    }
  }
}
