/** The drain's facts in the Prometheus text exposition format (0.0.4), for /metrics. */
import { version } from "../../package.json";
import { DRAIN_PHASES, type DrainSnapshot, ENVOY_PROBLEM_KINDS } from "../drain/drain.ts";
import { drainDurationSeconds, type SidecarCounters } from "./status.ts";

const PREFIX = "envoy_shutdown_manager_";

type Sample = [labels: Record<string, string>, value: number];

/** One metric family: HELP, TYPE and its samples (none when the value is not known yet). */
function family(name: string, type: "gauge" | "counter", help: string, samples: Sample[]): string {
  const lines = [`# HELP ${PREFIX}${name} ${help}`, `# TYPE ${PREFIX}${name} ${type}`];
  for (const [labels, value] of samples) {
    const rendered = Object.entries(labels).map(
      ([key, label]) => `${key}="${label.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))}"`,
    );
    lines.push(`${PREFIX}${name}${rendered.length ? `{${rendered.join(",")}}` : ""} ${value}`);
  }
  return lines.join("\n");
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
