/** The drain's facts as one JSON document, for /status and the `status` command. */
import { version } from "../../package.json";
import type { DrainSnapshot } from "../drain/drain.ts";
import type { DrainSettings } from "../drain/settings.ts";
import type { PrefixHolders, TrafficHolders } from "../drain/traffic.ts";
import { formatDuration } from "../duration.ts";
import { HANDOFF_PROTOCOL } from "./client.ts";

/** What the sidecar counts besides the drain itself. */
export interface SidecarCounters {
  /** /shutdown requests waiting right now. */
  waiters: number;
  /** Leftover drains undone on start. */
  heals: number;
}

/**
 * Whose flags govern the drain: the sidecar's (this program's own command lines), or the preStop hook's (Contour's
 * and Envoy Gateway's), where the sidecar only waits for the hook's ready file.
 */
export type DrainOwner = "sidecar" | "hook";

/** Facts of the configuration that are not the drain's own settings (those the drain's snapshot carries). */
export interface StatusSettings {
  drainOwner: DrainOwner;
  adminAddress: string;
  /** Whether Envoy's admin API has answered; read at each request. */
  envoyAnswered(): boolean;
  readyFile: string | undefined;
}

/** The drain's settings as /status shows them: named as their flags, durations as Go writes them. */
export interface DrainSettingsReport {
  drain_delay: string;
  check_delay: string;
  check_interval: string;
  min_open_connections: number;
  drain_timeout: string;
  drain_listeners: boolean;
  min_drain_duration: string;
  health_check_fail_delay: string;
  quiet_period: string;
  quiet_connections: number;
  admin_unreachable_threshold: number;
}

export interface StatusReport {
  version: string;
  /** The hand-off protocol this sidecar speaks (a previous release's /status has none). */
  handoff_protocol: number;
  drain_owner: DrainOwner;
  /** The settings that govern the drain, when this sidecar owns it (when the hook does, only it knows them). */
  drain_settings: DrainSettingsReport | null;
  phase: DrainSnapshot["phase"];
  reason: DrainSnapshot["reason"] | null;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  open_connections: number | null;
  min_open_connections: number;
  connections_by_listener: Record<string, number>;
  /**
   * Open connections split by what they carry (counting traffic): busy (requests in flight), idle, long-lived,
   * non-HTTP, and busy/idle/long-lived by HTTP prefix; null when every open connection counts, or before a count.
   */
  traffic: TrafficReport | null;
  /** New connections Envoy accepted within the last check interval, in all and by listener. */
  new_connections: number;
  new_connections_by_listener: Record<string, number>;
  /** Seconds since a poll last saw a new connection; null when none was seen (or the counters are not read). */
  seconds_since_last_new_connection: number | null;
  polls: number;
  /** Polls reported as a log line: one per check interval, plus the last. */
  reports: number;
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
  check_interval_seconds: number;
  drain_timeout: string;
  drain_timeout_seconds: number;
  quiet_period: string;
  /** Whether every open connection holds the drain (--count-idle-connections), or only traffic does. */
  count_idle_connections: boolean;
  long_lived_budget: string;
  ready_file: string | null;
}

interface TrafficShare {
  busy: number;
  idle: number;
  long_lived: number;
}
export interface TrafficReport extends TrafficShare {
  non_http: number;
  by_listener: Record<string, TrafficShare>;
}

/** The split as /status shows it. */
function trafficReport(traffic: TrafficHolders): TrafficReport {
  const share = ({ busy, idle, longLived }: PrefixHolders): TrafficShare => ({ busy, idle, long_lived: longLived });
  return {
    ...share(traffic),
    non_http: traffic.nonHttp,
    by_listener: Object.fromEntries([...traffic.byPrefix].map(([prefix, holders]) => [prefix, share(holders)])),
  };
}

const iso = (epochMs: number | undefined) => (epochMs === undefined ? null : new Date(epochMs).toISOString());

/** Seconds the drain has run (so far, or in all when it has finished). */
export function drainDurationSeconds(snapshot: DrainSnapshot, now = Date.now()): number | undefined {
  if (snapshot.startedAt === undefined) return undefined;
  return ((snapshot.finishedAt ?? now) - snapshot.startedAt) / 1000;
}

/** The drain's settings as /status shows them. */
function settingsReport(drain: DrainSettings): DrainSettingsReport {
  return {
    drain_delay: formatDuration(drain.drainDelayMs),
    check_delay: formatDuration(drain.checkDelayMs),
    check_interval: formatDuration(drain.checkIntervalMs),
    min_open_connections: drain.minOpenConnections,
    drain_timeout: formatDuration(drain.drainTimeoutMs),
    drain_listeners: drain.drainListeners,
    min_drain_duration: formatDuration(drain.minDrainMs),
    health_check_fail_delay: formatDuration(drain.healthCheckFailDelayMs),
    quiet_period: formatDuration(drain.quietPeriodMs),
    quiet_connections: drain.quietConnections,
    admin_unreachable_threshold: drain.adminUnreachableThreshold,
  };
}

export function statusReport(snapshot: DrainSnapshot, counters: SidecarCounters, settings: StatusSettings): StatusReport {
  const now = Date.now();
  const drain = snapshot.settings;
  return {
    version,
    handoff_protocol: HANDOFF_PROTOCOL,
    drain_owner: settings.drainOwner,
    drain_settings: settings.drainOwner === "sidecar" ? settingsReport(drain) : null,
    phase: snapshot.phase,
    reason: snapshot.reason ?? null,
    started_at: iso(snapshot.startedAt),
    finished_at: iso(snapshot.finishedAt),
    duration_seconds: drainDurationSeconds(snapshot) ?? null,
    open_connections: snapshot.openConnections ?? null,
    min_open_connections: drain.minOpenConnections,
    connections_by_listener: Object.fromEntries(snapshot.byListener),
    traffic: snapshot.traffic ? trafficReport(snapshot.traffic) : null,
    new_connections: [...snapshot.newByListener.values()].reduce((a, b) => a + b, 0),
    new_connections_by_listener: Object.fromEntries(snapshot.newByListener),
    seconds_since_last_new_connection: snapshot.lastNewConnectionAt === undefined ? null : (now - snapshot.lastNewConnectionAt) / 1000,
    polls: snapshot.polls,
    reports: snapshot.reports,
    health_check_fail_posts: snapshot.healthCheckFailPosts,
    admin_errors: snapshot.adminErrors,
    envoy_answered: settings.envoyAnswered(),
    envoy_problem: snapshot.problem ?? null,
    waiters: counters.waiters,
    heals: counters.heals,
    admin_address: settings.adminAddress,
    check_interval: formatDuration(drain.checkIntervalMs),
    check_interval_seconds: drain.checkIntervalMs / 1000,
    drain_timeout: formatDuration(drain.drainTimeoutMs),
    drain_timeout_seconds: drain.drainTimeoutMs / 1000,
    quiet_period: formatDuration(drain.quietPeriodMs),
    count_idle_connections: drain.countIdleConnections,
    long_lived_budget: formatDuration(drain.longLivedBudgetMs),
    ready_file: settings.readyFile ?? null,
  };
}

/** "a=3 b=1": counts by listener, largest first. */
const listing = (byListener: Record<string, number>) =>
  Object.entries(byListener)
    .sort(([, a], [, b]) => b - a)
    .map(([id, n]) => `${id}=${n}`)
    .join(" ");

/** The split's lines: totals, then each HTTP prefix. */
function trafficLines(traffic: TrafficReport): string[] {
  const text = (t: TrafficShare) => `busy ${t.busy}, idle ${t.idle}, long-lived ${t.long_lived}`;
  return [
    `  carrying:        ${text(traffic)}, non-HTTP ${traffic.non_http}`,
    ...Object.entries(traffic.by_listener).map(([prefix, share]) => `    ${prefix}: ${text(share)}`),
  ];
}

/**
 * A status report as a few readable lines, for the `status` command. A sidecar whose hook owns the drain counts
 * nothing and runs with no drain settings of its own: it shows what it waits for, and when the hook's outcome came.
 */
export function formatStatus(report: StatusReport): string {
  const ledByHook = report.drain_owner === "hook";
  const waiting = ledByHook && report.phase === "idle" && report.waiters > 0 ? ": waiting for the preStop hook's ready file" : "";
  const lines = [
    `phase:             ${report.phase}${report.reason ? ` (${report.reason})` : ""}${waiting}`,
    ...(ledByHook ? [`ended:             ${report.finished_at ?? "-"}`] : drainLines(report)),
    `admin errors:      ${Object.entries(report.admin_errors)
      .map(([kind, n]) => `${kind}=${n}`)
      .join(" ")}`,
    ...(report.envoy_problem ? [`envoy problem:     ${report.envoy_problem.kind}: ${report.envoy_problem.message}`] : []),
    `waiters:           ${report.waiters}`,
    `heals:             ${report.heals}`,
    `admin address:     ${report.admin_address}`,
    `drain owner:       ${ledByHook ? "the preStop hook (this sidecar waits for its ready file)" : "this sidecar (its flags govern the drain)"}`,
    `version:           ${report.version}`,
  ];
  return `${lines.join("\n")}\n`;
}

/** The sidecar's own drain: what it counted, and when. */
function drainLines(report: StatusReport): string[] {
  const open =
    report.open_connections === null ? "not counted yet" : `${report.open_connections} (threshold ${report.min_open_connections})`;
  return [
    `open connections:  ${open}`,
    ...(Object.keys(report.connections_by_listener).length > 0 ? [`  by listener:     ${listing(report.connections_by_listener)}`] : []),
    ...(report.traffic ? trafficLines(report.traffic) : []),
    `new connections:   ${report.new_connections} in the last check interval${report.new_connections > 0 ? ` (${listing(report.new_connections_by_listener)})` : ""}${report.seconds_since_last_new_connection === null ? "" : `, last ${formatDuration(report.seconds_since_last_new_connection * 1000)} ago`}`,
    `started:           ${report.started_at ?? "-"}`,
    `duration:          ${report.duration_seconds === null ? "-" : formatDuration(report.duration_seconds * 1000)}`,
    `polls:             ${report.polls}`,
    `check interval:    ${report.check_interval}, drain timeout ${report.drain_timeout === "0s" ? "none" : report.drain_timeout}, quiet period ${report.quiet_period === "0s" ? "off" : report.quiet_period}`,
  ];
}
