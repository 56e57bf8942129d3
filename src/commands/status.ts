import { defineCommand } from "citty";
import { handoffArgs, logArgs } from "../args.ts";
import { loadConfig } from "../config.ts";
import { configureLogging } from "../log.ts";
import { fetchStatus, formatStatus } from "../status.ts";

export const examples = ["envoy-shutdown-manager status", "envoy-shutdown-manager status --serve-port 8090 --json"];

export default defineCommand({
  meta: { name: "status", description: "Print the drain status of the shutdown-manager listening on 127.0.0.1:<serve-port>" },
  args: {
    "serve-port": handoffArgs["serve-port"],
    json: { type: "boolean", description: "Print the JSON document served at /status" },
    ...logArgs,
  },
  async run({ args }) {
    const config = loadConfig(args);
    configureLogging({ level: config.logLevel, format: config.logFormat });
    const report = await fetchStatus(config.servePort);
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    return 0;
  },
});
