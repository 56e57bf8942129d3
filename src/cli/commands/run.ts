import { ChildStartError, runSupervisor } from "../../supervisor/supervisor.ts";
import { checkDrainSettings, settingsCommand } from "../command.ts";
import { StartRefused } from "../option-kinds.ts";
import {
  adminOptions,
  drainOptions,
  eventOptions,
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
  events: eventOptions,
  log: logOptions,
};

export default settingsCommand({
  meta: {
    name: "run",
    description:
      "Run Envoy as a child and drain it before it stops: SIGTERM/SIGINT drain, then stop it (SIGKILL after --stop-timeout); serves /healthz, /shutdown, /status and /metrics; exits with Envoy's code",
    usage: "[OPTIONS] -- COMMAND...",
    examples: [
      "envoy-shutdown-manager run -- envoy -c /etc/envoy/envoy.yaml",
      "envoy-shutdown-manager run --check-delay 5s --drain-timeout 60s --stop-timeout 10s -- envoy -c /etc/envoy/envoy.yaml",
      "envoy-shutdown-manager run --hot-restart -- envoy -c /etc/envoy/envoy.yaml --base-id 1",
    ],
  },
  options,
  readyFile: "watch",
  trailing: true,
  // A signal here means "drain now": there is no hook on its way to wait for.
  settings: (read, command) => ({ ...checkDrainSettings(read), sidecar: { ...read.serve, hookWaitMs: 0 }, command }),
  run: (settings) =>
    runSupervisor(settings, settings.supervisor, settings.command).catch((error) =>
      Promise.reject(error instanceof ChildStartError ? new StartRefused(error.message) : listenUsageError(error)),
    ),
});
