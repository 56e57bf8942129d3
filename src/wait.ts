/** Time as the drain sees it: the real clock in production, a virtual one in tests, and cancellable waits. */

/** Reads time and waits; injected so the drain can be tested in milliseconds on a virtual clock. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts; leaves no timer behind. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** Resolves after `ms` of real time, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  // A zero wait (the default --drain-delay) costs no timer tick: the hook's POST goes out at once.
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export const realClock: Clock = { now: () => Date.now(), sleep };

/** Settles as `work` does, or rejects with the signal's reason if it aborts first (the abandoned work's failure is dropped). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const detach = () => signal.removeEventListener("abort", onAbort);
    work.then(
      (value) => {
        detach();
        resolve(value);
      },
      (error: unknown) => {
        detach();
        reject(error);
      },
    );
  });
}
