/** The drain's settings, as the CLI builds them from the flags of the process that owns the drain. */

export interface DrainSettings {
  /** Wait before failing health checks, so load balancers notice the pod is terminating. */
  drainDelayMs: number;
  /** Wait after failing health checks before the first count. */
  checkDelayMs: number;
  /** The slowest the drain counts; near its end it counts faster. */
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
  /** The drain is not complete until nothing new (a connection; counting traffic, a request) arrived for this long (0: off). */
  quietPeriodMs: number;
  /** New connections a quiet period tolerates (a load balancer's health checks that reach a data-plane listener). */
  quietConnections: number;
  /** Every open connection holds the drain, idle HTTP ones included (Contour's and Envoy Gateway's end condition). */
  countIdleConnections: boolean;
  /** How long the drain waits for long-lived sessions (upgrades, requests in flight this long); 0: until the deadline. */
  longLivedBudgetMs: number;
}

/** The fastest the drain polls near its end, and the shortest --check-interval: it notices the end within about this long. */
export const FASTEST_POLL_MS = 100;
