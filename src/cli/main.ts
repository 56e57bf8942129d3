#!/usr/bin/env bun
/**
 * The executable: picks the command, prints help, and maps errors to one line and an exit code. Commands are citty
 * definitions; citty itself is loaded only to render help, since a sidecar that never prints help should not pay
 * its start-up time and memory (the commands read their flags with cli/option-kinds.ts).
 */
import type { ArgsDef, CommandDef, CommandMeta, ParsedArgs } from "citty";
import { version } from "../../package.json";
import { errorMessage, OperatorError } from "../errors.ts";
import { escapesAllowed } from "../log.ts";
import type { CommandModule } from "./command.ts";
import { UsageError } from "./option-kinds.ts";

// Loaded when named: a sidecar should not evaluate the hook, the supervisor or the dialects at start (about 3 ms).
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  "shutdown-manager": () => import("./commands/shutdown-manager.ts"),
  shutdown: () => import("./commands/shutdown.ts"),
  status: () => import("./commands/status.ts"),
  run: () => import("./commands/run.ts"),
};

/** The program's own command definitions, for the top-level help. */
async function main(): Promise<CommandDef<ArgsDef>> {
  const loaded = await Promise.all(Object.entries(COMMANDS).map(async ([name, load]) => [name, (await load()).default] as const));
  return {
    meta: { name: "envoy-shutdown-manager", version, description: "Drains Envoy before Kubernetes stops its pod" },
    subCommands: Object.fromEntries(loaded),
  };
}

const HELP = new Set(["--help", "-h"]);

/** The help text of the program or of one command (with its examples); plain unless stdout is a terminal that takes colours. */
async function usage(module?: CommandModule): Promise<string> {
  const { renderUsage } = await import("citty");
  const examples = module ? `\n\nEXAMPLES\n\n${module.examples.map((example) => `  ${example}`).join("\n")}\n` : "";
  const program = await main();
  const text = `${await renderUsage(module?.default ?? program, module ? program : undefined)}${examples}`;
  return (await escapesAllowed(1)) ? text : Bun.stripANSI(text);
}

/** The command the arguments name, the words that named it, and the rest: one of ours, or `envoy <name>` in a dialect. */
async function resolveCommand(argv: string[]): Promise<{ module: CommandModule; path: string; rest: string[] }> {
  const [name = "", ...rest] = argv;
  if (name === "envoy") {
    const { dialectOf, ENVOY_COMMANDS } = await import("./commands/envoy.ts");
    const table: Record<string, CommandModule> = ENVOY_COMMANDS[dialectOf()];
    const [sub = "", ...subRest] = rest;
    const module = table[sub];
    const commands = Object.keys(table).join(", ");
    if (sub === "" || HELP.has(sub))
      throw new UsageError(`envoy takes a command: ${commands} (Contour's and Envoy Gateway's command lines)`);
    if (!module) throw new UsageError(`unknown command "envoy ${sub}" (envoy commands: ${commands})`);
    return { module, path: `envoy ${sub}`, rest: subRest };
  }
  const load = COMMANDS[name];
  if (!load) throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${Object.keys(COMMANDS).join(", ")}, envoy)`);
  return { module: await load(), path: name, rest };
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
      const { dialectOf, ENVOY_COMMANDS } = await import("./commands/envoy.ts");
      const lines = Object.entries(ENVOY_COMMANDS[dialectOf()]).map(
        ([sub, module]) => `  envoy ${sub.padEnd(18)} ${(module.default.meta as CommandMeta | undefined)?.description ?? ""}`,
      );
      process.stdout.write(`${lines.join("\n")}\n`);
      return 0;
    }
    const { module, path, rest } = await resolveCommand(argv);
    // Help is asked before `--`; after it, `--help` belongs to the command being run.
    const ownArgs = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
    if (ownArgs.some((arg) => HELP.has(arg))) {
      process.stdout.write(`${await usage(module)}\n`);
      return 0;
    }
    try {
      const result: unknown = await module.default.run?.({ rawArgs: rest, args: {} as ParsedArgs<ArgsDef>, cmd: module.default });
      return typeof result === "number" ? result : 0;
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
