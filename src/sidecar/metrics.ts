/** The drain's facts in the Prometheus text exposition format (0.0.4), for /metrics. */
import { version } from "../../package.json";
import { DRAIN_PHASES, type DrainReason, type DrainSnapshot, ENVOY_PROBLEM_KINDS, type FinalPhase } from "../drain/drain.ts";
import { drainDurationSeconds, type SidecarCounters } from "./status.ts";

const PREFIX = "envoy_shutdown_manager_";

/** A sample: its labels, its value, and the suffix its name takes within the family (a histogram's `_bucket`). */
type Sample = [labels: Record<string, string>, value: number, suffix?: string];

/** One metric family: HELP, TYPE and its samples (none when the value is not known yet). */
function family(name: string, type: "gauge" | "counter" | "histogram", help: string, samples: Sample[]): string {
  const lines = [`# HELP ${PREFIX}${name} ${help}`, `# TYPE ${PREFIX}${name} ${type}`];
  for (const [labels, value, suffix = ""] of samples) {
    const rendered = Object.entries(labels).map(
      ([key, label]) => `${key}="${label.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))}"`,
    );
    lines.push(`${PREFIX}${name}${suffix}${rendered.length ? `{${rendered.join(",")}}` : ""} ${value}`);
  }
  return lines.join("\n");
}

// Functions rather than constants: built at each scrape, not at start, where every allocation counts (footprint.ts).
/** How a drain can end, as the outcome counter names it: every one is served from the start, at 0. */
const outcomes = (): [phase: FinalPhase, reason: DrainReason][] => [
  ["drained", "threshold"],
  ["drained", "long_lived"],
  ["drained", "envoy_gone"],
  ["drained", "handed_off"],
  ["timed_out", "timeout"],
  ["timed_out", "handed_off"],
  ["failed", "envoy_unreachable"],
  ["failed", "interrupted"],
  ["failed", "error"],
  ["failed", "handed_off"],
];

/** Upper bounds of the drain duration histogram, in seconds: a drain takes seconds to minutes. */
const durationBuckets = () => [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];

/** The finished drain's duration as a histogram (this process drains at most once: one observation, or none). */
function durationHistogram(snapshot: DrainSnapshot): Sample[] {
  const finished = snapshot.finishedAt !== undefined && snapshot.startedAt !== undefined;
  const seconds = finished ? (drainDurationSeconds(snapshot) ?? 0) : undefined;
  const observed = (bound: number) => (seconds !== undefined && seconds <= bound ? 1 : 0);
  return [
    ...durationBuckets().map((bound): Sample => [{ le: String(bound) }, observed(bound), "_bucket"]),
    [{ le: "+Inf" }, seconds === undefined ? 0 : 1, "_bucket"],
    [{}, seconds ?? 0, "_sum"],
    [{}, seconds === undefined ? 0 : 1, "_count"],
  ];
}

/** The split's totals, none before a traffic count. */
function trafficSamples({ traffic }: DrainSnapshot): Sample[] {
  if (!traffic) return [];
  return [
    [{ kind: "busy" }, traffic.busy],
    [{ kind: "idle" }, traffic.idle],
    [{ kind: "long_lived" }, traffic.longLived],
    [{ kind: "non_http" }, traffic.nonHttp],
  ];
}

const known = (value: number | undefined): Sample[] => (value === undefined ? [] : [[{}, value]]);

export function renderMetrics(snapshot: DrainSnapshot, counters: SidecarCounters): string {
  const families = [
    family(
      "drain_phase",
      "gauge",
      "1 for the drain's current phase, 0 for the others.",
      DRAIN_PHASES.map((phase) => [{ phase }, snapshot.phase === phase ? 1 : 0]),
    ),
    family("open_connections", "gauge", "Open downstream connections at the last successful poll.", known(snapshot.openConnections)),
    family(
      "listener_open_connections",
      "gauge",
      "Open downstream connections by listener (or HTTP prefix) at the last successful poll; listeners at 0 are left out.",
      [...snapshot.byListener].map(([listener, n]) => [{ listener }, n]),
    ),
    family(
      "traffic_connections",
      "gauge",
      "Open connections at the last poll by what they carry: busy (requests in flight), idle, long_lived, non_http; counting traffic only.",
      trafficSamples(snapshot),
    ),
    family(
      "listener_traffic_connections",
      "gauge",
      "The same split by HTTP prefix (busy, idle, long_lived); prefixes with nothing open are left out.",
      [...(snapshot.traffic?.byPrefix ?? [])].flatMap(([listener, share]): Sample[] => [
        [{ listener, kind: "busy" }, share.busy],
        [{ listener, kind: "idle" }, share.idle],
        [{ listener, kind: "long_lived" }, share.longLived],
      ]),
    ),
    family(
      "listener_new_connections",
      "gauge",
      "New connections Envoy accepted within the last check interval, by listener (or HTTP prefix).",
      [...snapshot.newByListener].map(([listener, n]) => [{ listener }, n]),
    ),
    family(
      "last_new_connection_time_seconds",
      "gauge",
      "Unix time a poll last saw a new connection during the drain.",
      known(snapshot.lastNewConnectionAt === undefined ? undefined : snapshot.lastNewConnectionAt / 1000),
    ),
    family("min_open_connections", "gauge", "The drain completes at or below this many open connections.", [
      [{}, snapshot.settings.minOpenConnections],
    ]),
    family(
      "drain_start_time_seconds",
      "gauge",
      "Unix time the drain started.",
      known(snapshot.startedAt === undefined ? undefined : snapshot.startedAt / 1000),
    ),
    family("drain_duration_seconds", "gauge", "How long the drain has run, or ran.", known(drainDurationSeconds(snapshot))),
    family(
      "drains_total",
      "counter",
      "Drains finished, by phase and reason (each process drains at most once; every outcome is served from 0).",
      outcomes().map(([phase, reason]) => [{ phase, reason }, snapshot.phase === phase && snapshot.reason === reason ? 1 : 0]),
    ),
    family("drain_seconds", "histogram", "Durations of finished drains, for quantiles across a fleet.", durationHistogram(snapshot)),
    family("polls_total", "counter", "Connection counts attempted.", [[{}, snapshot.polls]]),
    family("healthcheck_fail_posts_total", "counter", "Successful POSTs of /healthcheck/fail.", [[{}, snapshot.healthCheckFailPosts]]),
    family(
      "admin_errors_total",
      "counter",
      "Failed admin API requests, by kind.",
      Object.entries(snapshot.adminErrors).map(([kind, n]) => [{ kind }, n]),
    ),
    family(
      "envoy_problem",
      "gauge",
      "1 while this keeps the drain from seeing Envoy (unreachable admin API, connection stats excluded by stats_matcher).",
      ENVOY_PROBLEM_KINDS.map((kind) => [{ kind }, snapshot.problem?.kind === kind ? 1 : 0]),
    ),
    family("shutdown_waiters", "gauge", "/shutdown requests waiting for the drain.", [[{}, counters.waiters]]),
    family("heals_total", "counter", "Leftover drains undone on start.", [[{}, counters.heals]]),
    family("build_info", "gauge", "Always 1; the version is a label.", [[{ version }, 1]]),
  ];
  return `${families.join("\n")}\n`;
}
