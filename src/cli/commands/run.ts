import type { ArgsDef, CommandDef } from "citty";
import { configureLogging } from "../../log.ts";
import { ChildStartError, runSupervisor } from "../../supervisor/supervisor.ts";
import { readOptions, toArgs, UsageError } from "../option-kinds.ts";
import {
  adminOptions,
  checkReadyFile,
  drainOptions,
  logOptions,
  serveOptions,
  supervisorHandoffOptions,
  supervisorOptions,
} from "../options.ts";
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

export default {
  meta: {
    name: "run",
    description:
      "Run Envoy as a child and drain it before it stops: SIGTERM/SIGINT drain, then stop it (SIGKILL after --stop-timeout); serves /healthz, /shutdown, /status and /metrics; exits with Envoy's code",
  },
  args: toArgs(options),
  async run({ rawArgs }) {
    const { flags, command } = splitCommand(rawArgs);
    const settings = readOptions(options, flags);
    await checkReadyFile(settings.handoff.readyFile);
    await configureLogging(settings.log);
    const sidecarSettings = { ...settings, sidecar: { ...settings.serve, hookWaitMs: 0 } };
    try {
      return await runSupervisor(sidecarSettings, settings.supervisor, command);
    } catch (error) {
      if (error instanceof ChildStartError) throw new UsageError(error.message);
      throw listenUsageError(error);
    }
  },
} satisfies CommandDef<ArgsDef>;
