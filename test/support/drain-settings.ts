/** Drain settings for in-process tests: Contour-like (every open connection counts), with short waits and no quiet period; `overrides` win. */
import type { DrainSettings } from "../../src/drain/settings.ts";

export function drainSettings(overrides: Partial<DrainSettings> = {}): DrainSettings {
  return {
    drainDelayMs: 0,
    checkDelayMs: 0,
    checkIntervalMs: 1000,
    minOpenConnections: 0,
    drainTimeoutMs: 0,
    drainListeners: false,
    adminUnreachableThreshold: 3,
    minDrainMs: 0,
    healthCheckFailDelayMs: 0,
    quietPeriodMs: 0,
    quietConnections: 0,
    countIdleConnections: true,
    longLivedBudgetMs: 0,
    ...overrides,
  };
}
