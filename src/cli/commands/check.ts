import type { ProgramLine, ProgramSettings } from "../../check/checks.ts";
import { checkPods } from "../../check/checks.ts";
import { ManifestError, readManifests } from "../../check/manifests.ts";
import { podTemplates } from "../../check/pods.ts";
import { formatJson, formatTable } from "../../check/report.ts";
import { escapesAllowed } from "../../log.ts";
import { checkDrainSettings, type ProgramCommand, splitCommand } from "../command.ts";
import { choice, flagArgs, readOptions, toggle, UsageError } from "../option-kinds.ts";
import { ENVOY_COMMANDS } from "./envoy.ts";
import runCommand from "./run.ts";
import hookCommand from "./shutdown.ts";
import sidecarCommand from "./shutdown-manager.ts";

export const options = {
  check: {
    format: choice("format", ["table", "json"], "table", "table: aligned lines (colours on a terminal); json: an array of findings", {
      outputOnly: true,
    }),
    strict: toggle("strict", false, "Exit 1 on warnings too", { outputOnly: true }),
  },
};

/** The names this program is started by: its own, and Contour's and Envoy Gateway's (the image links them). */
const PROGRAM_NAMES = new Set(["envoy-shutdown-manager", "contour", "envoy-gateway"]);
const OWN_COMMANDS: Record<string, ProgramCommand> = { "shutdown-manager": sidecarCommand, shutdown: hookCommand, run: runCommand };
const ROLES: Record<string, ProgramLine["role"]> = { "shutdown-manager": "sidecar", shutdown: "hook", run: "supervisor" };

/**
 * Reads a container's (or hook's) command line as this program reads it at start, through the same option tables
 * and messages; undefined when the line does not run this program. An empty command is this image's entrypoint.
 */
export function readProgram(argv: string[], env: Record<string, string>): ProgramLine | undefined {
  const started = (argv[0] ?? "").slice((argv[0] ?? "").lastIndexOf("/") + 1);
  const named = PROGRAM_NAMES.has(started);
  const args = named ? argv.slice(1) : argv;
  const [first = "", second = ""] = args;
  const dialect = first === "envoy" ? (started === "envoy-gateway" ? "envoy-gateway" : "contour") : undefined;
  const command = dialect ? ENVOY_COMMANDS[dialect][second] : OWN_COMMANDS[first];
  if (!command) return undefined;
  const path = dialect ? `envoy ${second}` : first;
  const role = ROLES[command.meta.name] ?? "sidecar";
  try {
    const rest = args.slice(dialect ? 2 : 1);
    const read = readOptions(command.options ?? {}, role === "supervisor" ? splitCommand(rest).flags : rest, env);
    const settings = (dialect ? read : checkDrainSettings(read)) as unknown as ProgramSettings;
    return { command: path, role, dialect: dialect !== undefined, settings };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return { command: path, role, dialect: dialect !== undefined, error: error.message };
  }
}

/** Splits the arguments into the paths to read and the flags (`--format json` takes the word after it). */
function pathsAndFlags(rawArgs: string[]): { paths: string[]; flags: string[] } {
  const paths: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i] as string;
    if (!arg.startsWith("--")) paths.push(arg);
    else if (arg === "--format") flags.push(arg, rawArgs[++i] ?? "");
    else flags.push(arg);
  }
  return { paths, flags };
}

export default {
  meta: {
    name: "check",
    description:
      "Check Kubernetes manifests for drain wiring that would drop traffic: exit 0 fine, 1 errors (or warnings with --strict), 2 unreadable input",
    usage: "[OPTIONS] PATH|-...",
    examples: [
      "envoy-shutdown-manager check examples/",
      "kubectl kustomize overlays/prod | envoy-shutdown-manager check -",
      "helm template envoy ./chart | envoy-shutdown-manager check - --format json --strict",
    ],
  },
  args: {
    paths: {
      type: "positional",
      valueHint: "PATH|-",
      description: "Manifest files (YAML or JSON), directories of them, or - for standard input; one or more",
    },
    ...flagArgs(options),
  },
  options,
  async run({ rawArgs }) {
    const { paths, flags } = pathsAndFlags(rawArgs);
    const settings = readOptions(options, flags);
    if (paths.length === 0) throw new UsageError("no manifests: name files or directories, or - for standard input");
    let objects: Awaited<ReturnType<typeof readManifests>>;
    try {
      objects = await readManifests(paths);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      process.stderr.write(`envoy-shutdown-manager: ${error.message}\n`);
      return 2;
    }
    const { findings, wired } = checkPods(podTemplates(objects), readProgram);
    if (wired === 0) process.stderr.write("envoy-shutdown-manager: no pod in the input runs envoy-shutdown-manager: nothing to check\n");
    const { format, strict } = settings.check;
    process.stdout.write(format === "json" ? formatJson(findings) : formatTable(findings, await escapesAllowed(1)));
    const failing = findings.filter((finding) => finding.severity === "error" || strict);
    return failing.length > 0 ? 1 : 0;
  },
} satisfies ProgramCommand;
