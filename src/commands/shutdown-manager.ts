import { defineCommand } from "citty";
import { adminArgs, drainArgs, handoffArgs, logArgs, serverArgs } from "../args.ts";
import { loadConfig } from "../config.ts";
import { configureLogging } from "../log.ts";
import { runShutdownManager } from "../manager.ts";

export const examples = [
  "envoy-shutdown-manager shutdown-manager",
  "envoy-shutdown-manager shutdown-manager --admin-address /admin/admin.sock --check-interval 1s --drain-timeout 5m",
  "ENVOY_SHUTDOWN_SHUTDOWN_TOKEN=s3cret envoy-shutdown-manager shutdown-manager --serve-port 8090",
];

export default defineCommand({
  meta: {
    name: "shutdown-manager",
    description: "Run the sidecar: /healthz for liveness, /shutdown for the preStop httpGet hook, /status and /metrics",
  },
  args: { ...adminArgs, ...drainArgs, ...handoffArgs, ...serverArgs, ...logArgs },
  async run({ args }) {
    const config = loadConfig(args);
    configureLogging({ level: config.logLevel, format: config.logFormat });
    return runShutdownManager(config);
  },
});
