import type { LineError, ProgramLine, ProgramSettings } from "../../check/checks.ts";
import { checkInput, checkPods, PROGRAM_NAMES } from "../../check/checks.ts";
import { ManifestError, readManifests } from "../../check/manifests.ts";
import { podTemplates, UNKNOWN_VALUE } from "../../check/pods.ts";
import { formatJson, formatSummary, formatTable, printable } from "../../check/report.ts";
import { shellScript, simpleCommands } from "../../check/shell.ts";
import { escapesAllowed } from "../../log.ts";
import { type AnchorCommandName, anchorFlagNote } from "../anchors.ts";
import { drainContradiction, type ProgramCommand, splitCommand } from "../command.ts";
import {
  type CommandOptions,
  choice,
  envName,
  envNameOf,
  flagArgs,
  type Option,
  readOptions,
  toggle,
  UnknownFlag,
  UsageError,
} from "../option-kinds.ts";
import { dialectOf, ENVOY_COMMANDS, globalFlagsAfterCommand, hookLineContradiction } from "./envoy.ts";
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

const OWN_COMMANDS: Record<string, ProgramCommand> = { "shutdown-manager": sidecarCommand, shutdown: hookCommand, run: runCommand };
const ROLES: Record<string, ProgramLine["role"]> = { "shutdown-manager": "sidecar", shutdown: "hook", run: "supervisor" };
const TOOLS = { contour: "Contour", "envoy-gateway": "Envoy Gateway" };

/** Every option of a command, with the setting it fills (`drain.drainTimeoutMs`). */
const settingsOf = (options: CommandOptions): { setting: string; option: Option<unknown> }[] =>
  Object.entries(options).flatMap(([group, table]) =>
    Object.entries(table).map(([key, option]) => ({ setting: `${group}.${key}`, option })),
  );

/** Edits (insertions, deletions, substitutions, swaps of neighbours) between two flag names. */
function distance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i] as number[];
      const up = rows[i - 1] as number[];
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((rows[i - 2] as number[])[j - 2] as number) + 1);
    }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The flag a misspelled name most likely meant: at most two edits away, and fewer than a third of its letters. */
function nearest<T extends { option: Option<unknown> }>(specs: T[], name: string): T | undefined {
  const ranked = specs
    .map((spec) => ({ spec, edits: distance(name, spec.option.flag) }))
    .filter(({ edits }) => edits <= Math.min(2, Math.floor(name.length / 3)))
    .sort((a, b) => a.edits - b.edits);
  return ranked[0]?.spec;
}

/**
 * Reads a command line's flags and variables as the program does, one at a time, so that every one it would refuse
 * is named (the program stops at the first) and the settings of the others are still read.
 */
function readLine(
  options: CommandOptions,
  argv: string[],
  env: Record<string, string>,
  unknown: string[],
  anchorNote?: (flag: string) => string,
) {
  const specs = settingsOf(options);
  const byFlag = new Map(specs.map((spec) => [spec.option.flag, spec]));
  const specOf = (name: string) =>
    byFlag.get(name) ?? (name.startsWith("no-") && byFlag.get(name.slice(3))?.option.boolean ? byFlag.get(name.slice(3)) : undefined);
  const errors: LineError[] = [];
  const unread = new Set<string>();
  const given = new Set<string>();
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    const name = token.startsWith("--") && token !== "--" ? token.slice(2).split("=")[0] : undefined;
    const spec = name === undefined ? undefined : specOf(name);
    const next = argv[i + 1];
    const unit =
      spec && !spec.option.boolean && !token.includes("=") && next !== undefined && !next.startsWith("--")
        ? [token, argv[++i] as string]
        : [token];
    // A value this check cannot see: the setting is unknown, neither refused nor judged.
    if (unit.some((word) => word.includes(UNKNOWN_VALUE))) {
      if (spec) unread.add(spec.setting);
      continue;
    }
    try {
      readOptions(options, unit, {});
      kept.push(...unit);
      if (spec) given.add(spec.setting);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      // A flag Contour or Envoy Gateway writes that this version does not take: what the anchor data says of it.
      if (anchorNote && error instanceof UnknownFlag) {
        errors.push({ message: `${error.message}: ${anchorNote(error.flag)}`, fix: `remove ${JSON.stringify(token)}` });
        continue;
      }
      const meant = spec ?? (name === undefined ? undefined : nearest(specs, name));
      if (meant) unread.add(meant.setting);
      const [message, fix] = spec
        ? [error.message, `give --${spec.option.flag} a valid value`]
        : meant
          ? [`${error.message}: did you mean --${meant.option.flag}?`, `write --${meant.option.flag}`]
          : [error.message, `remove ${JSON.stringify(token)}: see the command's --help for its flags`];
      errors.push({ message, fix });
    }
  }
  const readEnv: Record<string, string> = {};
  for (const { setting, option } of specs) {
    const variable = envName(option.flag);
    if (given.has(setting)) continue;
    if (unknown.includes(variable)) unread.add(setting);
    const value = env[variable];
    if (value?.includes(UNKNOWN_VALUE)) unread.add(setting);
    if (value === undefined || value.includes(UNKNOWN_VALUE)) continue;
    try {
      readOptions({ one: { option } }, [], { [variable]: value });
      readEnv[variable] = value;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      unread.add(setting);
      errors.push({ message: error.message, fix: `give ${variable} a valid value` });
    }
  }
  const flagOf = new Map(specs.map((spec) => [spec.setting, `--${spec.option.flag}`]));
  return {
    variables: specs.flatMap(({ option }) => envNameOf(option) ?? []),
    settings: readOptions(options, kept, readEnv) as unknown as ProgramSettings,
    errors,
    unread: [...unread],
    given: [...given],
    flag: (setting: string) => flagOf.get(setting) ?? setting,
  };
}

/**
 * Reads a container's (or hook's) command line as this program reads it at start, through the same option tables
 * and messages; undefined when the line does not run this program. An empty command is this image's entrypoint;
 * `sh -c '…'` is read for the simple command that runs it; another file name is taken when one of this program's
 * commands follows it.
 */
export function readProgram(argv: string[], env: Record<string, string>, unknown: string[] = []): ProgramLine | undefined {
  const script = shellScript(argv);
  if (script !== undefined) {
    // A shell expands `$NAME` from the same environment: a value this check cannot see stays unknown there too.
    const shellEnv = { ...env, ...Object.fromEntries(unknown.map((name) => [name, UNKNOWN_VALUE])) };
    for (const command of simpleCommands(script, shellEnv)) {
      const line = readProgram(command.argv, command.env, unknown);
      if (line) return line;
    }
    return undefined;
  }
  const program = argv[0] ?? "";
  const started = program.slice(program.lastIndexOf("/") + 1);
  const renamed = !PROGRAM_NAMES.has(started) && Object.hasOwn(OWN_COMMANDS, argv[1] ?? "");
  const named = PROGRAM_NAMES.has(started) || renamed || argv[1] === "envoy";
  const args = globalFlagsAfterCommand(named ? argv.slice(1) : argv, dialectOf(named ? program : ""));
  const [first = "", second = ""] = args;
  const dialect = first === "envoy" ? dialectOf(named ? program : "") : undefined;
  const table: Record<string, ProgramCommand> = dialect ? ENVOY_COMMANDS[dialect] : OWN_COMMANDS;
  const name = dialect ? second : first;
  const command = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!command) return undefined;
  const role = ROLES[command.meta.name] ?? "sidecar";
  let rest = args.slice(dialect ? 2 : 1);
  const errors: LineError[] = [];
  if (role === "supervisor")
    try {
      rest = splitCommand(rest).flags;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      errors.push({ message: error.message, fix: "write the Envoy command after `--`" });
    }
  const anchorNote = dialect ? (flag: string) => anchorFlagNote(dialect, name as AnchorCommandName, flag) : undefined;
  const read = readLine(command.options ?? {}, rest, env, unknown, anchorNote);
  // The program's own rule for settings under which no drain can complete; a dialect's sidecar does not drain.
  const judged = !(dialect && role === "sidecar") && !read.unread.some((setting) => setting.startsWith("drain."));
  const drain = read.settings.drain;
  const contradiction = !judged
    ? undefined
    : dialect
      ? hookLineContradiction(command.options?.drain ?? {}, drain)
      : drainContradiction(drain);
  // This program's own lines refuse such settings at start (exit 2).
  if (contradiction && !dialect)
    read.errors.push({ message: contradiction, fix: "give the drain a deadline longer than its delays, minimum and quiet period" });
  return {
    command: dialect ? `envoy ${second}` : first,
    program: named ? program : "envoy-shutdown-manager",
    role,
    dialect: dialect !== undefined,
    tool: dialect && TOOLS[dialect],
    ...read,
    errors: [...errors, ...read.errors],
    contradiction,
  };
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
    if (paths.filter((path) => path === "-").length > 1) throw new UsageError("- is named more than once: standard input is read once");
    let input: Awaited<ReturnType<typeof readManifests>>;
    try {
      input = await readManifests(paths);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      process.stderr.write(`envoy-shutdown-manager: ${printable(error.message)}\n`);
      return 2;
    }
    const { findings, wired } = checkPods(podTemplates(input.objects), readProgram);
    findings.push(...checkInput(input.documents, wired));
    const summary = formatSummary({ files: input.files, documents: input.documents, wired }, findings);
    const { format, strict } = settings.check;
    if (format === "json") {
      process.stdout.write(formatJson(findings));
      process.stderr.write(summary);
    } else process.stdout.write(formatTable(findings, await escapesAllowed(1), summary));
    const failing = findings.filter((finding) => finding.severity === "error" || strict);
    return failing.length > 0 ? 1 : 0;
  },
} satisfies ProgramCommand;
