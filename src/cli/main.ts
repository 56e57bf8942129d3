#!/usr/bin/env bun
/**
 * The executable: picks the command, prints help, and maps errors to one line and an exit code. Commands have this
 * program's own shape (cli/command.ts) and read their flags with cli/option-kinds.ts; citty is loaded only to
 * render help, since a sidecar that never prints help should not pay its start-up time and memory (4 MiB).
 */
import type { ArgsDef, CommandDef } from "citty";
import { version } from "../../package.json";
import { errorMessage, OperatorError } from "../errors.ts";
import { escapesAllowed } from "../log.ts";
import type { Command } from "./command.ts";
import { toArgs, UsageError } from "./option-kinds.ts";

// Loaded when named: a sidecar should not evaluate the hook, the supervisor or the dialects at start (about 3 ms).
const COMMANDS: Record<string, () => Promise<{ default: Command }>> = {
  "shutdown-manager": () => import("./commands/shutdown-manager.ts"),
  shutdown: () => import("./commands/shutdown.ts"),
  status: () => import("./commands/status.ts"),
  run: () => import("./commands/run.ts"),
  check: () => import("./commands/check.ts"),
};

/** A command as citty's help renderer takes it: citty renders help and does nothing else here. */
const helpDefinition = (command: Command): CommandDef<ArgsDef> => ({
  meta: { name: command.name, description: command.description },
  args: toArgs(command.options, command.helpFirst),
});

/** The program's own commands, for the top-level help. */
async function programHelpDefinition(): Promise<CommandDef<ArgsDef>> {
  const loaded = await Promise.all(Object.values(COMMANDS).map(async (load) => helpDefinition((await load()).default)));
  return {
    meta: { name: "envoy-shutdown-manager", version, description: "Drains Envoy before Kubernetes stops its pod" },
    subCommands: Object.fromEntries(loaded.map((definition) => [(definition.meta as { name: string }).name, definition])),
  };
}

const HELP = new Set(["--help", "-h"]);

/** The help text of the program or of one command (with its examples); plain unless stdout is a terminal that takes colours. */
async function usage(command?: Command): Promise<string> {
  const { renderUsage } = await import("citty");
  const program = await programHelpDefinition();
  const examples = command ? `\n\nEXAMPLES\n\n${command.examples.map((example) => `  ${example}`).join("\n")}\n` : "";
  const text = `${await renderUsage(command ? helpDefinition(command) : program, command ? program : undefined)}${examples}`;
  return (await escapesAllowed(1)) ? text : Bun.stripANSI(text);
}

/** The `envoy` commands of the dialect the executable was started as. */
async function envoyCommands(): Promise<Record<string, Command>> {
  const { dialectOf, ENVOY_COMMANDS } = await import("./commands/envoy.ts");
  return ENVOY_COMMANDS[dialectOf()];
}

/** The command the arguments name, the words that named it, and the rest: one of ours, or `envoy <name>` in a dialect. */
async function resolveCommand(argv: string[]): Promise<{ command: Command; path: string; rest: string[] }> {
  const [name = "", ...rest] = argv;
  if (name === "envoy") {
    const table = await envoyCommands();
    const [sub = "", ...subRest] = rest;
    const command = table[sub];
    const commands = Object.keys(table).join(", ");
    if (sub === "") throw new UsageError(`envoy takes a command: ${commands} (Contour's and Envoy Gateway's command lines)`);
    if (!command) throw new UsageError(`unknown command "envoy ${sub}" (envoy commands: ${commands})`);
    return { command, path: `envoy ${sub}`, rest: subRest };
  }
  const load = COMMANDS[name];
  if (!load) throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${Object.keys(COMMANDS).join(", ")}, envoy)`);
  return { command: (await load()).default, path: name, rest };
}

/** The name to show in a help hint: Contour's or Envoy Gateway's for their command lines, when started as them. */
function programName(path: string): string {
  const started = process.argv0.slice(process.argv0.lastIndexOf("/") + 1);
  return path.startsWith("envoy ") && (started === "envoy-gateway" || started === "contour") ? started : "envoy-shutdown-manager";
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [name] = argv;
  try {
    if (name === undefined || HELP.has(name)) {
      process.stdout.write(`${await usage()}\n`);
      return name === undefined ? 2 : 0;
    }
    if (name === "--version") {
      process.stdout.write(`${version}\n`);
      return 0;
    }
    if (name === "envoy" && HELP.has(argv[1] ?? "")) {
      const lines = Object.entries(await envoyCommands()).map(([sub, command]) => `  envoy ${sub.padEnd(18)} ${command.description}`);
      process.stdout.write(`${lines.join("\n")}\n`);
      return 0;
    }
    const { command, path, rest } = await resolveCommand(argv);
    // Help is asked before `--`; after it, `--help` belongs to the command being run.
    const ownArgs = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
    if (ownArgs.some((arg) => HELP.has(arg))) {
      process.stdout.write(`${await usage(command)}\n`);
      return 0;
    }
    try {
      return await command.run(rest);
    } catch (error) {
      if (error instanceof UsageError && error.pointsAtHelp)
        throw new UsageError(`${error.message} (see '${programName(path)} ${path} --help')`);
      throw error;
    }
  } catch (error) {
    const [code, message] =
      error instanceof UsageError
        ? [2, error.message]
        : error instanceof OperatorError
          ? [1, error.message]
          : [1, `unexpected error: ${errorMessage(error)}`];
    process.stderr.write(`envoy-shutdown-manager: ${message}\n`);
    return code;
  }
}

// Runs when executed, not when imported (tests import runCli).
if (import.meta.main) void runCli(process.argv.slice(2)).then((code) => process.exit(code));
