/** The drain's facts as one JSON document, for /status and the `status` command. */
import { version } from "../../package.json";
import type { DrainSnapshot } from "../drain/drain.ts";
import { formatDuration } from "../duration.ts";

/** What the sidecar counts besides the drain itself. */
export interface SidecarCounters {
  /** /shutdown requests waiting right now. */
  waiters: number;
  /** Leftover drains undone on start. */
  heals: number;
}

export interface StatusSettings {
  adminAddress: string;
  /** Whether Envoy's admin API has answered; read at each request. */
  envoyAnswered(): boolean;
  minOpenConnections: number;
  checkIntervalMs: number;
  drainTimeoutMs: number;
  readyFile: string | undefined;
}

export interface StatusReport {
  version: string;
  phase: DrainSnapshot["phase"];
  reason: DrainSnapshot["reason"] | null;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  open_connections: number | null;
  min_open_connections: number;
  connections_by_listener: Record<string, number>;
  polls: number;
  health_check_fail_posts: number;
  admin_errors: DrainSnapshot["adminErrors"];
  /** Whether Envoy's admin API has answered this sidecar: the evidence a joined hook needs before calling Envoy gone. */
  envoy_answered: boolean;
  /** What keeps the drain from seeing Envoy (unreachable, stats excluded by stats_matcher), or null. */
  envoy_problem: DrainSnapshot["problem"] | null;
  waiters: number;
  heals: number;
  admin_address: string;
  check_interval: string;
  drain_timeout: string;
  ready_file: string | null;
}

const iso = (epochMs: number | undefined) => (epochMs === undefined ? null : new Date(epochMs).toISOString());

/** Seconds the drain has run (so far, or in all when it has finished). */
export function drainDurationSeconds(snapshot: DrainSnapshot, now = Date.now()): number | undefined {
  if (snapshot.startedAt === undefined) return undefined;
  return ((snapshot.finishedAt ?? now) - snapshot.startedAt) / 1000;
}

export function statusReport(snapshot: DrainSnapshot, counters: SidecarCounters, settings: StatusSettings): StatusReport {
  return {
    version,
    phase: snapshot.phase,
    reason: snapshot.reason ?? null,
    started_at: iso(snapshot.startedAt),
    finished_at: iso(snapshot.finishedAt),
    duration_seconds: drainDurationSeconds(snapshot) ?? null,
    open_connections: snapshot.openConnections ?? null,
    min_open_connections: settings.minOpenConnections,
    connections_by_listener: Object.fromEntries(snapshot.byListener),
    polls: snapshot.polls,
    health_check_fail_posts: snapshot.healthCheckFailPosts,
    admin_errors: snapshot.adminErrors,
    envoy_answered: settings.envoyAnswered(),
    envoy_problem: snapshot.problem ?? null,
    waiters: counters.waiters,
    heals: counters.heals,
    admin_address: settings.adminAddress,
    check_interval: formatDuration(settings.checkIntervalMs),
    drain_timeout: formatDuration(settings.drainTimeoutMs),
    ready_file: settings.readyFile ?? null,
  };
}

/** A status report as a few readable lines, for the `status` command. */
export function formatStatus(report: StatusReport): string {
  const open =
    report.open_connections === null ? "not counted yet" : `${report.open_connections} (threshold ${report.min_open_connections})`;
  const lines = [
    `phase:             ${report.phase}${report.reason ? ` (${report.reason})` : ""}`,
    `open connections:  ${open}`,
    `started:           ${report.started_at ?? "-"}`,
    `duration:          ${report.duration_seconds === null ? "-" : formatDuration(report.duration_seconds * 1000)}`,
    `polls:             ${report.polls}`,
    `admin errors:      ${Object.entries(report.admin_errors)
      .map(([kind, n]) => `${kind}=${n}`)
      .join(" ")}`,
    ...(report.envoy_problem ? [`envoy problem:     ${report.envoy_problem.kind}: ${report.envoy_problem.message}`] : []),
    `waiters:           ${report.waiters}`,
    `heals:             ${report.heals}`,
    `admin address:     ${report.admin_address}`,
    `check interval:    ${report.check_interval}, drain timeout ${report.drain_timeout === "0s" ? "none" : report.drain_timeout}`,
    `version:           ${report.version}`,
  ];
  return `${lines.join("\n")}\n`;
}
