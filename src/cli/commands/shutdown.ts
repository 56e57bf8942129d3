import type { ArgsDef, CommandDef } from "citty";
import { logPoll } from "../../drain/drain.ts";
import { runShutdownHook } from "../../hook/hook.ts";
import { progressLine } from "../../hook/progress.ts";
import { configureLogging, containerLogMirror, escapesAllowed } from "../../log.ts";
import { readOptions, toArgs } from "../option-kinds.ts";
import { adminOptions, checkReadyFile, drainOptions, handoffOptions, logOptions } from "../options.ts";

export const options = { admin: adminOptions, drain: drainOptions, handoff: handoffOptions, log: logOptions };

export const examples = [
  "envoy-shutdown-manager shutdown",
  "envoy-shutdown-manager shutdown --check-delay 0s --check-interval 1s --min-open-connections 1 --drain-timeout 10m",
  "envoy-shutdown-manager shutdown --serve-port 0 --admin-address http://127.0.0.1:19000",
];

export default {
  meta: {
    name: "shutdown",
    description:
      "Drain Envoy as a preStop exec hook: joins a sidecar on 127.0.0.1:<serve-port> or drains by itself; exit 0 drained, 1 failed or timed out, 2 bad usage",
  },
  args: toArgs(options),
  async run({ rawArgs }) {
    const settings = readOptions(options, rawArgs);
    await checkReadyFile(settings.handoff.readyFile);
    await configureLogging({ ...settings.log, mirrorPath: containerLogMirror() });
    if (!(await escapesAllowed(2))) return runShutdownHook(settings, logPoll);
    const line = progressLine();
    try {
      return await runShutdownHook(settings, line.update);
    } finally {
      line.end();
    }
  },
} satisfies CommandDef<ArgsDef>;
