#!/usr/bin/env bun
/** The executable: picks the command, rejects unknown flags, and maps errors to one line and an exit code. */
import { type ArgsDef, type CommandDef, renderUsage, runCommand } from "citty";
import { version } from "../package.json";
import * as shutdownCommand from "./commands/shutdown.ts";
import * as shutdownManagerCommand from "./commands/shutdown-manager.ts";
import * as statusCommand from "./commands/status.ts";
import { FatalError, UsageError } from "./errors.ts";

interface CommandModule {
  default: CommandDef<ArgsDef>;
  examples: string[];
}

const COMMANDS: Record<string, CommandModule> = {
  "shutdown-manager": shutdownManagerCommand as CommandModule,
  shutdown: shutdownCommand as CommandModule,
  status: statusCommand as CommandModule,
};

const main = {
  meta: { name: "envoy-shutdown-manager", version, description: "Drains Envoy before Kubernetes stops its pod" },
  subCommands: Object.fromEntries(Object.entries(COMMANDS).map(([name, module]) => [name, module.default])),
} satisfies CommandDef<ArgsDef>;

const HELP = new Set(["--help", "-h"]);

/** The command's help text, with its examples. */
async function usage(module?: CommandModule): Promise<string> {
  if (!module) return renderUsage(main);
  const examples = module.examples.map((example) => `  ${example}`).join("\n");
  return `${await renderUsage(module.default, main)}\n\nEXAMPLES\n\n${examples}\n`;
}

/** Rejects flags the command does not have, stray arguments, and flags missing their value (citty lets them through). */
function checkFlags(commandName: string, args: ArgsDef, rawArgs: string[]): void {
  const hint = `see 'envoy-shutdown-manager ${commandName} --help'`;
  for (let i = 0; i < rawArgs.length; i++) {
    const token = rawArgs[i] as string;
    if (!token.startsWith("--")) throw new UsageError(`unexpected argument ${JSON.stringify(token)} (${hint})`);
    const [name = "", value] = token.slice(2).split(/=(.*)/s);
    const negated = name.startsWith("no-") ? name.slice(3) : undefined;
    const def = args[name] ?? (negated ? args[negated] : undefined);
    if (!def || (negated && def.type !== "boolean" && !args[name])) throw new UsageError(`unknown flag --${name} (${hint})`);
    if (def.type === "boolean" || value !== undefined) continue;
    const next = rawArgs[i + 1];
    if (next === undefined || next.startsWith("--")) throw new UsageError(`flag --${name} needs a value (${hint})`);
    i++;
  }
}

/** Runs the CLI with the given arguments and returns the exit code. */
async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const module = name === undefined ? undefined : COMMANDS[name];
  try {
    if (name === undefined || HELP.has(name)) {
      process.stdout.write(`${await usage()}\n`);
      return name === undefined ? 2 : 0;
    }
    if (name === "--version") {
      process.stdout.write(`${version}\n`);
      return 0;
    }
    if (!module) throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${Object.keys(COMMANDS).join(", ")})`);
    if (rest.some((arg) => HELP.has(arg))) {
      process.stdout.write(`${await usage(module)}\n`);
      return 0;
    }
    const args = (await module.default.args) as ArgsDef;
    checkFlags(name, args, rest);
    const { result } = await runCommand(module.default, { rawArgs: rest });
    return typeof result === "number" ? result : 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`envoy-shutdown-manager: ${error.message}\n`);
      return 2;
    }
    const message =
      error instanceof FatalError ? error.message : `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
    process.stderr.write(`envoy-shutdown-manager: ${message}\n`);
    return 1;
  }
}

// No top-level await: it keeps the entry compatible with `bun build --bytecode`.
if (import.meta.main) void runCli(process.argv.slice(2)).then((code) => process.exit(code));
