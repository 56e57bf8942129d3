import { logPoll } from "../../drain/drain.ts";
import { type HookSettings, runShutdownHook } from "../../hook/hook.ts";
import { progressLine } from "../../hook/progress.ts";
import { containerLogMirror, escapesAllowed, type LoggingOptions } from "../../log.ts";
import { checkDrainSettings, type ProgramCommand, type RoleCommandSpec, settingsCommand } from "../command.ts";
import type { CommandOptions } from "../option-kinds.ts";
import { adminOptions, drainOptions, eventOptions, handoffOptions, logOptions } from "../options.ts";

export const options = { admin: adminOptions, drain: drainOptions, handoff: handoffOptions, events: eventOptions, log: logOptions };

/** Runs the hook with a live progress line on a terminal that takes escapes, and a log line per count elsewhere. */
async function runHookWithProgress(settings: HookSettings): Promise<number> {
  if (!(await escapesAllowed(2))) return runShutdownHook(settings, logPoll);
  const line = progressLine();
  try {
    return await runShutdownHook(settings, line.update);
  } finally {
    line.end();
  }
}

/** The hook command under any flag table that yields its settings (ours, or another tool's names and defaults). */
export function hookCommand<C extends CommandOptions>(spec: RoleCommandSpec<C, HookSettings & { log: LoggingOptions }>): ProgramCommand {
  return settingsCommand({
    ...spec,
    readyFile: "write",
    run: runHookWithProgress,
    // An exec hook's output is kept by kubelet only when it fails: its lines also go to the container's PID 1 stdout.
    logging: (settings) => ({ ...settings.log, mirrorPath: containerLogMirror() }),
  });
}

export default hookCommand({
  meta: {
    name: "shutdown",
    description:
      "Drain Envoy as a preStop exec hook: joins a sidecar on 127.0.0.1:<serve-port> or drains by itself; exit 0 drained, 1 failed or timed out, 2 bad usage",
    examples: [
      "envoy-shutdown-manager shutdown",
      "envoy-shutdown-manager shutdown --check-delay 0s --check-interval 1s --min-open-connections 1 --drain-timeout 10m",
      "envoy-shutdown-manager shutdown --serve-port 0 --admin-address http://127.0.0.1:19000",
    ],
  },
  options,
  settings: checkDrainSettings,
});
