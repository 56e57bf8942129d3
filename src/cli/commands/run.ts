import { ChildStartError, runSupervisor } from "../../supervisor/supervisor.ts";
import { checkDrainSettings, settingsCommand } from "../command.ts";
import { readOptions, StartRefused, UsageError } from "../option-kinds.ts";
import { adminOptions, drainOptions, logOptions, serveOptions, supervisorHandoffOptions, supervisorOptions } from "../options.ts";
import { listenUsageError } from "./shutdown-manager.ts";

export const options = {
  admin: adminOptions,
  drain: drainOptions,
  handoff: supervisorHandoffOptions,
  serve: serveOptions,
  supervisor: supervisorOptions,
  log: logOptions,
};

export const examples = [
  "envoy-shutdown-manager run -- envoy -c /etc/envoy/envoy.yaml",
  "envoy-shutdown-manager run --check-delay 5s --drain-timeout 60s --stop-timeout 10s -- envoy -c /etc/envoy/envoy.yaml",
  "envoy-shutdown-manager run --hot-restart -- envoy -c /etc/envoy/envoy.yaml --base-id 1",
];

/** Splits `[flags] -- command [args]`; the command is required. */
export function splitCommand(rawArgs: string[]): { flags: string[]; command: string[] } {
  const at = rawArgs.indexOf("--");
  if (at < 0) throw new UsageError("no command: write the Envoy command after `--`, as in `run -- envoy -c envoy.yaml`");
  const command = rawArgs.slice(at + 1);
  if (command.length === 0)
    throw new UsageError("no command after `--`: write the Envoy command to run, as in `run -- envoy -c envoy.yaml`");
  return { flags: rawArgs.slice(0, at), command };
}

/** The settings `run` reads: the sidecar's, the supervisor's, and the command after `--`. */
function readRun(rawArgs: string[]) {
  const { flags, command } = splitCommand(rawArgs);
  const settings = checkDrainSettings(readOptions(options, flags));
  // A signal here means "drain now": there is no hook on its way to wait for.
  return { ...settings, sidecar: { ...settings.serve, hookWaitMs: 0 }, command };
}

export default settingsCommand(
  {
    name: "run",
    description:
      "Run Envoy as a child and drain it before it stops: SIGTERM/SIGINT drain, then stop it (SIGKILL after --stop-timeout); serves /healthz, /shutdown, /status and /metrics; exits with Envoy's code",
  },
  options,
  "watch",
  readRun,
  (settings) =>
    runSupervisor(settings, settings.supervisor, settings.command).catch((error) =>
      Promise.reject(error instanceof ChildStartError ? new StartRefused(error.message) : listenUsageError(error)),
    ),
);
