/** The drain's settings: what the CLI builds from flags, what a joining hook sends, and how two sets combine. */

/** The drain's own settings; the CLI builds them from flags, a joining hook sends its own with the join. */
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

type Combine = "max" | "min" | "or";

/**
 * How each setting combines when a hook joins a drain: the stricter value wins, the one that waits longer and asks
 * more before calling the drain done. A deadline of 0 (none) is the longest.
 */
const STRICTER: Record<keyof DrainSettings, Combine> = {
  drainDelayMs: "max",
  checkDelayMs: "max",
  checkIntervalMs: "min",
  minOpenConnections: "min",
  drainTimeoutMs: "max",
  drainListeners: "or",
  adminUnreachableThreshold: "max",
  minDrainMs: "max",
  healthCheckFailDelayMs: "max",
  quietPeriodMs: "max",
  quietConnections: "min",
  countIdleConnections: "or",
  longLivedBudgetMs: "max",
};

/** The stricter of two values of one setting. */
function stricterValue(key: keyof DrainSettings, a: number | boolean, b: number | boolean): number | boolean {
  const rule = STRICTER[key];
  if (rule === "or") return Boolean(a) || Boolean(b);
  if (key === "drainTimeoutMs" && (a === 0 || b === 0)) return 0;
  return rule === "max" ? Math.max(Number(a), Number(b)) : Math.min(Number(a), Number(b));
}

/** Both sets of settings, each taken at its stricter value. */
export function strictest(a: DrainSettings, b: DrainSettings): DrainSettings {
  const keys = Object.keys(STRICTER) as (keyof DrainSettings)[];
  return Object.fromEntries(keys.map((key) => [key, stricterValue(key, a[key], b[key])])) as unknown as DrainSettings;
}

/** Reads drain settings sent as JSON (a hook joining the sidecar); a string says what is wrong with them. */
export function parseDrainSettings(value: unknown): DrainSettings | string {
  if (typeof value !== "object" || value === null) return "expected a JSON object of drain settings";
  const record = value as Record<string, unknown>;
  for (const [key, rule] of Object.entries(STRICTER)) {
    const field = record[key];
    const valid = rule === "or" ? typeof field === "boolean" : typeof field === "number" && Number.isSafeInteger(field) && field >= 0;
    if (!valid) return `drain setting ${key} is missing or not a ${rule === "or" ? "boolean" : "whole number of 0 or more"}`;
  }
  return Object.fromEntries(Object.keys(STRICTER).map((key) => [key, record[key]])) as unknown as DrainSettings;
}
