/**
 * Contour's and Envoy Gateway's shutdown-manager command lines, as read in their sources (docs/drop-in.md says how
 * to refresh this): the flags of each command with their defaults, what each calls on Envoy's admin API and in which
 * order, and the commit read. The dialect flag tables (commands/envoy.ts) take their anchor flags from here, tests
 * run every flag here through the compiled executable, and docs/drop-in.md is generated from it.
 */
import type { Dialect } from "./commands/envoy.ts";

/** One flag of an anchor's command, as that tool takes it. */
export interface AnchorFlag {
  flag: string;
  /** The default as the tool's help would show it; undefined when it has none (or ignores the flag). */
  default: string | undefined;
  /** What the flag does in the tool, in our words. */
  meaning: string;
  /** The release that introduced the flag on this command. */
  since: string;
  /** Earlier defaults or meanings, for lines written against older releases. */
  history?: string;
  /** How the tool's own manifests write the flag, when they do. */
  rendered?: string;
  /** This program takes the flag but does nothing with it (the tool itself ignores it). */
  ignored?: boolean;
  /** Why this program's default differs from the tool's, when it does. */
  differs?: string;
  /** This program's own flag for the same setting, where its name differs. */
  ours?: string;
}

/** One admin API request: POSTs are compared with their query, GETs (counting) by path. */
export interface AdminCall {
  method: "GET" | "POST";
  path: string;
  query?: string;
  /** Repeated until the drain ends. */
  repeats?: boolean;
}

/** What a command does, in order, under a condition on its flags. */
export interface AnchorSequence {
  when: string;
  /** Flags that take this branch (after any others, since the last of a flag wins). */
  flags: readonly string[];
  calls: readonly AdminCall[];
  /** The steps between and after the calls, in words. */
  steps: readonly string[];
}

export interface AnchorCommand {
  summary: string;
  flags: readonly AnchorFlag[];
  sequences: readonly AnchorSequence[];
}

/** A setting the tool fixes in code (no flag), and the flag of this program that holds it on the tool's command lines. */
export interface AnchorConstant {
  what: string;
  value: string;
  flag: string;
  /** The dialect's default of that flag; the same as `value` unless written. */
  ourDefault?: string;
}

export interface Anchor {
  tool: string;
  repository: string;
  /** The commit read and its date; the latest release at that commit. */
  read: { branch: string; commit: string; date: string; release: string };
  /** Files read, relative to the repository. */
  files: readonly string[];
  /** Flags every command takes (the tool's global flags). */
  global: readonly AnchorFlag[];
  commands: { "shutdown-manager": AnchorCommand; shutdown: AnchorCommand };
  constants: readonly AnchorConstant[];
  /** How the tool counts open connections. */
  counting: string;
}

const stats = (path: string): AdminCall => ({ method: "GET", path, repeats: true });
const FAIL: AdminCall = { method: "POST", path: "/healthcheck/fail" };
const DRAIN_LISTENERS: AdminCall = { method: "POST", path: "/drain_listeners", query: "graceful&skip_exit" };

export const ANCHORS: Record<Dialect, Anchor> = {
  "envoy-gateway": {
    tool: "Envoy Gateway",
    repository: "envoyproxy/gateway",
    read: { branch: "main", commit: "d32f28294245e454d20f81d323d626a90e660c1e", date: "2026-08-21", release: "v1.9.0" },
    files: [
      "internal/cmd/envoy.go",
      "internal/cmd/envoy/shutdown_manager.go",
      "internal/infrastructure/kubernetes/proxy/resource.go",
      "api/v1alpha1/envoyproxy_types.go",
    ],
    global: [],
    commands: {
      "shutdown-manager": {
        summary:
          "Serves :19002; GET /shutdown/ready (Envoy's preStop) waits for /tmp/shutdown-ready, checked every second, up to --ready-timeout (then 500); GET /healthz answers 200",
        flags: [
          {
            flag: "ready-timeout",
            default: "610s",
            meaning: "how long a /shutdown/ready request waits for the ready file before it answers 500",
            since: "v1.0.0",
            rendered: "--ready-timeout=<spec.shutdown.drainTimeout + 10>s, only when drainTimeout is set",
            ours: "drain-timeout",
          },
        ],
        sequences: [{ when: "always", flags: [], calls: [], steps: ["never calls Envoy's admin API"] }],
      },
      shutdown: {
        summary: "The preStop exec hook of the shutdown-manager container: drains Envoy, then creates /tmp/shutdown-ready",
        flags: [
          {
            flag: "health-check-failure-delay",
            default: "0s",
            meaning: "when above 0, start the graceful listener drain at once and fail health checks only this long after",
            since: "v1.9.0",
            ours: "health-check-fail-delay",
            rendered: "--health-check-failure-delay=<spec.shutdown.healthCheckFailureDelay, as Go prints it: 15s, 400ms, 1m0s>",
          },
          {
            flag: "drain-timeout",
            default: "60s",
            meaning: "give up after this long since the hook started, and create the ready file anyway",
            since: "v1.0.0",
            history: "600s before v1.2.0",
            rendered: "--drain-timeout=<spec.shutdown.drainTimeout>s",
          },
          {
            flag: "min-drain-duration",
            default: "10s",
            meaning: "never done before this long since the hook started, whatever the count",
            since: "v1.0.0",
            history: "5s before v1.2.0",
            rendered: "--min-drain-duration=<spec.shutdown.minDrainDuration>s",
          },
          {
            flag: "exit-at-connections",
            default: "0",
            meaning: "done once the count is at or below this (after the minimum drain duration)",
            since: "v1.0.0",
            ours: "min-open-connections",
          },
        ],
        sequences: [
          {
            when: "--health-check-failure-delay above 0",
            flags: ["--health-check-failure-delay=300ms"],
            calls: [DRAIN_LISTENERS, stats("/stats"), FAIL, stats("/stats")],
            steps: [
              "POST /drain_listeners?graceful&skip_exit",
              "count every second; once the delay has passed since the start, POST /healthcheck/fail",
              "done when past --min-drain-duration with the count at or below --exit-at-connections, or past --drain-timeout",
              "create /tmp/shutdown-ready",
            ],
          },
          {
            when: "no delay (the default)",
            flags: ["--health-check-failure-delay=0s"],
            calls: [FAIL, stats("/stats")],
            steps: [
              "POST /healthcheck/fail, and no listener drain",
              "count every second",
              "done when past --min-drain-duration with the count at or below --exit-at-connections, or past --drain-timeout",
              "create /tmp/shutdown-ready",
            ],
          },
        ],
      },
    },
    constants: [
      { what: "admin API", value: "localhost:19000", flag: "admin-address", ourDefault: "127.0.0.1:19000" },
      { what: "sidecar port", value: "19002", flag: "serve-port" },
      { what: "ready file", value: "/tmp/shutdown-ready", flag: "ready-file" },
      { what: "count interval", value: "1s", flag: "check-interval" },
      { what: "first count after failing health checks", value: "0s", flag: "check-delay" },
      {
        what: "stats names not counted (unanchored regex)",
        value: "admin|19001|19003|worker",
        flag: "ignore-listeners",
        ourDefault: "admin,19001,19003,worker",
      },
    ],
    counting:
      "the sum of listener.<id>.downstream_cx_active from /stats (JSON), skipping stat names that match admin|19001|19003|worker (the admin, stats and readiness listeners and per-worker copies), since v1.7.0; server.total_connections before",
  },
  contour: {
    tool: "Contour",
    repository: "projectcontour/contour",
    read: { branch: "main", commit: "31c4bb38e0a52cef4d8273dd5641a70e39f1d693", date: "2026-08-18", release: "v1.33.6" },
    files: [
      "cmd/contour/shutdownmanager.go",
      "cmd/contour/contour.go",
      "internal/provisioner/objects/dataplane/dataplane.go",
      "examples/contour/03-envoy.yaml",
    ],
    global: [
      {
        flag: "log-format",
        default: "text",
        meaning: "log output format, text or json",
        since: "v1.22.0",
        differs: "auto: readable on a terminal, JSON lines otherwise; text and json are taken as given",
      },
    ],
    commands: {
      "shutdown-manager": {
        summary: "Serves :8090; GET /shutdown (Envoy's preStop) waits for the ready file, checked every second; GET /healthz answers 200",
        flags: [
          { flag: "ready-file", default: "/admin/ok", meaning: "the file whose appearance releases /shutdown", since: "v1.19.0" },
          { flag: "serve-port", default: "8090", meaning: "port of the HTTP server", since: "v1.2.0" },
        ],
        sequences: [{ when: "always", flags: [], calls: [], steps: ["never calls Envoy's admin API"] }],
      },
      shutdown: {
        summary: "The preStop exec hook of the shutdown-manager container: drains Envoy, then creates the ready file",
        flags: [
          { flag: "admin-address", default: "/admin/admin.sock", meaning: "the Unix socket of Envoy's admin API", since: "v1.19.0" },
          {
            flag: "admin-port",
            default: undefined,
            meaning: "deprecated since v1.19.0 and unused (the admin API is --admin-address)",
            since: "v1.15.0",
            ignored: true,
          },
          {
            flag: "check-delay",
            default: "0s",
            meaning: "wait after failing health checks before the first count",
            since: "v1.8.0",
            history: "60s before v1.22.0",
          },
          { flag: "check-interval", default: "5s", meaning: "wait between counts", since: "v1.8.0" },
          { flag: "drain-delay", default: "0s", meaning: "wait before failing health checks", since: "v1.8.0" },
          { flag: "min-open-connections", default: "0", meaning: "done once the count is at or below this", since: "v1.8.0" },
          { flag: "ready-file", default: "/admin/ok", meaning: "the file created when the drain is done", since: "v1.19.0" },
        ],
        sequences: [
          {
            when: "always",
            flags: [],
            calls: [FAIL, stats("/stats/prometheus")],
            steps: [
              "wait --drain-delay",
              "POST /healthcheck/fail, up to 4 attempts 200 ms apart growing 5 times",
              "wait --check-delay",
              "count every --check-interval until at or below --min-open-connections (no deadline but kubelet's)",
              "create the ready file",
            ],
          },
        ],
      },
    },
    constants: [{ what: "counted stat", value: "http", flag: "connection-stat" }],
    counting:
      "the sum of envoy_http_downstream_cx_active from /stats/prometheus (filtered to http.*.downstream_cx_active), skipping the prefixes admin, envoy-admin, stats, health and stats-health",
  },
};

export type AnchorCommandName = keyof Anchor["commands"];

/**
 * What the anchor data says of a flag that a dialect's command does not take (the tables take every flag the data
 * gives a command): the tool's name for this program's flag, the anchor command it belongs to, or how far this
 * version follows the anchor.
 */
export function anchorFlagNote(dialect: Dialect, command: AnchorCommandName, flag: string): string {
  const { tool, commands, read } = ANCHORS[dialect];
  const renamed = commands[command].flags.find((entry) => entry.ours === flag);
  if (renamed) return `${tool}'s name for it is --${renamed.flag}`;
  for (const [other, { flags }] of Object.entries(commands)) {
    const known = flags.find((entry) => entry.flag === flag);
    if (known) return `--${flag} is ${tool}'s \`envoy ${other}\` flag (since ${known.since}), not \`envoy ${command}\`'s`;
  }
  return `not a flag of ${tool}'s \`envoy ${command}\` up to ${read.release} (${read.branch} of ${read.date}), which this version follows: a newer ${tool} may write it, and a newer envoy-shutdown-manager take it`;
}
