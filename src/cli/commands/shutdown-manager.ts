import { networkFailure } from "../../errors.ts";
import type { LoggingOptions } from "../../log.ts";
import { ListenError } from "../../sidecar/server.ts";
import { runSidecar, type SidecarSettings } from "../../sidecar/sidecar.ts";
import { checkDrainSettings, type ProgramCommand, type RoleCommandSpec, settingsCommand } from "../command.ts";
import { type CommandOptions, UsageError } from "../option-kinds.ts";
import { adminOptions, drainOptions, eventOptions, handoffOptions, logOptions, sidecarOptions } from "../options.ts";

export const options = {
  admin: adminOptions,
  drain: drainOptions,
  handoff: handoffOptions,
  sidecar: sidecarOptions,
  events: eventOptions,
  log: logOptions,
};

/** The sidecar command under any flag table that yields its settings (ours, or another tool's names and defaults). */
export function sidecarCommand<C extends CommandOptions>(
  spec: RoleCommandSpec<C, SidecarSettings & { log: LoggingOptions }>,
): ProgramCommand {
  return settingsCommand({
    ...spec,
    readyFile: "watch",
    run: (settings) => runSidecar(settings).catch((error) => Promise.reject(listenUsageError(error))),
  });
}

export default sidecarCommand({
  meta: {
    name: "shutdown-manager",
    description: "Run the sidecar: /healthz for liveness, /shutdown for the preStop httpGet hook, /status and /metrics",
    examples: [
      "envoy-shutdown-manager shutdown-manager",
      "envoy-shutdown-manager shutdown-manager --admin-address /admin/admin.sock --check-interval 1s --drain-timeout 5m",
      "ENVOY_SHUTDOWN_SHUTDOWN_TOKEN=s3cret envoy-shutdown-manager shutdown-manager --serve-port 8090",
    ],
  },
  options,
  settings: checkDrainSettings,
});

const UNRESOLVED = "the host name does not resolve to an address of this machine";
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: "the port is in use, or the address is not one of this machine's",
  // What the resolver's failure for a name becomes, by the form of the name.
  EINVAL: UNRESOLVED,
  ENOENT: UNRESOLVED,
  EAGAIN: "the host name could not be looked up (no name server answered)",
};

/** A server that cannot listen is a start-up error naming the flags and values (exit 2); other errors pass. */
export function listenUsageError(error: unknown): unknown {
  if (!(error instanceof ListenError)) return error;
  const cause = LISTEN_FAILURES[String(error.code)] ?? networkFailure(error);
  return new UsageError(`--serve-address ${JSON.stringify(error.hostname)} --serve-port ${error.port}: cannot listen: ${cause}`);
}
