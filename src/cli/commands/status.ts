import { OperatorError } from "../../errors.ts";
import { configureLogging } from "../../log.ts";
import { fetchStatus, handoffProblem } from "../../sidecar/client.ts";
import { formatStatus } from "../../sidecar/status.ts";
import type { ProgramCommand } from "../command.ts";
import { count, flagArgs, readOptions, toggle } from "../option-kinds.ts";
import { logOptions, SERVE_PORT } from "../options.ts";

export const options = {
  status: {
    // The sidecar's flag and variable, but 0, which there means any free port, names no sidecar here.
    servePort: count("serve-port", SERVE_PORT, "Port of the sidecar whose drain status to print", {
      min: 1,
      max: 65535,
      valueHint: "port",
    }),
    json: toggle("json", false, "Print the JSON document served at /status instead of readable lines", { outputOnly: true }),
  },
  log: logOptions,
};

export default {
  meta: {
    name: "status",
    description: "Print the drain status of the sidecar listening on 127.0.0.1:<serve-port>",
    examples: ["envoy-shutdown-manager status", "envoy-shutdown-manager status --serve-port 8090 --json"],
  },
  args: flagArgs(options),
  options,
  async run({ rawArgs }) {
    const settings = readOptions(options, rawArgs);
    await configureLogging(settings.log);
    const report = await fetchStatus(settings.status.servePort, 5000);
    // Readable lines need this release's fields; --json prints whatever answered.
    const problem = settings.status.json ? undefined : handoffProblem(report);
    if (problem)
      throw new OperatorError(`the sidecar on 127.0.0.1:${settings.status.servePort} ${problem}; --json prints its answer as it is`);
    process.stdout.write(settings.status.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    return 0;
  },
} satisfies ProgramCommand;
