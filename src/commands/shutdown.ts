import { defineCommand } from "citty";
import { adminArgs, drainArgs, handoffArgs, logArgs } from "../args.ts";
import { loadConfig } from "../config.ts";
import { runShutdownHook } from "../exec-hook.ts";
import { configureLogging, containerLogMirror, isTerminal } from "../log.ts";
import { logPoll, progressLine } from "../progress.ts";

export const examples = [
  "envoy-shutdown-manager shutdown",
  "envoy-shutdown-manager shutdown --check-delay 0s --check-interval 1s --min-open-connections 1 --drain-timeout 10m",
  "envoy-shutdown-manager shutdown --serve-port 0 --admin-address http://127.0.0.1:19000",
];

export default defineCommand({
  meta: {
    name: "shutdown",
    description:
      "Drain Envoy as a preStop exec hook: joins a shutdown-manager on 127.0.0.1:<serve-port> or drains by itself; exit 0 drained, 1 failed or timed out, 2 bad usage",
  },
  args: { ...adminArgs, ...drainArgs, ...handoffArgs, ...logArgs },
  async run({ args }) {
    const config = loadConfig(args);
    configureLogging({ level: config.logLevel, format: config.logFormat, mirrorPath: containerLogMirror() });
    if (!isTerminal(2)) return runShutdownHook(config, logPoll);
    const line = progressLine();
    try {
      return await runShutdownHook(config, line.update);
    } finally {
      line.end();
    }
  },
});
