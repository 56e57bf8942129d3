#!/usr/bin/env bun
/**
 * The executable: the program's citty definition, run by this file rather than by citty's runner, so that flags are
 * read strictly (unknown flags, booleans, environment variables; cli/option-kinds.ts) and every mistake is one line
 * and exit code 2. The sidecar, which runs for a pod's whole life, is part of this module; every other command, and
 * help, is loaded only when it is named. The build splits those into chunks of their own (`--splitting`), so an
 * idle sidecar holds none of their code: bundled into one module, even code never run takes heap at start.
 */
import { version } from "../../package.json";
import { errorMessage, OperatorError } from "../errors.ts";
import type { ProgramCommand } from "./command.ts";
import shutdownManager from "./commands/shutdown-manager.ts";
import { UsageError } from "./option-kinds.ts";

const load = (module: Promise<{ default: ProgramCommand }>) => module.then((loaded) => loaded.default);

export const program: ProgramCommand = {
  meta: { name: "envoy-shutdown-manager", version, description: "Drains Envoy before Kubernetes stops its pod" },
  subCommands: {
    "shutdown-manager": shutdownManager,
    shutdown: () => load(import("./commands/shutdown.ts")),
    status: () => load(import("./commands/status.ts")),
    run: () => load(import("./commands/run.ts")),
    check: () => load(import("./commands/check.ts")),
    envoy: () => import("./commands/envoy.ts").then(({ envoyCommand }) => envoyCommand()),
  },
};

const HELP = new Set(["--help", "-h"]);

/** The name to show in help and hints: Contour's or Envoy Gateway's for their command lines, when started as them. */
function programName(path: readonly string[]): string {
  const started = process.argv0.slice(process.argv0.lastIndexOf("/") + 1);
  return path[0] === "envoy" && (started === "envoy-gateway" || started === "contour") ? started : "envoy-shutdown-manager";
}

/** The command the arguments name, the words that named it, and the arguments left for it; `path` grows as they are read. */
async function resolveCommand(argv: string[], path: string[]): Promise<{ command: ProgramCommand; rest: string[] }> {
  let command = program;
  let rest = argv;
  while (command.subCommands) {
    const [name, ...after] = rest;
    if (name === undefined || HELP.has(name)) break;
    const sub = command.subCommands[name];
    const names = Object.keys(command.subCommands).join(", ");
    if (!sub) {
      const what = path.length > 0 ? `${path.join(" ")} commands` : "commands";
      throw new UsageError(`unknown command ${JSON.stringify([...path, name].join(" "))}; ${what}: ${names}`);
    }
    command = typeof sub === "function" ? await sub() : sub;
    path.push(name);
    rest = after;
  }
  return { command, rest };
}

/** Writes the help of a command invoked as `path`. */
async function printHelp(command: ProgramCommand, path: string[]): Promise<void> {
  const { helpStyle, renderHelp } = await import("./help.ts");
  process.stdout.write(await renderHelp(command, [programName(path), ...path].join(" "), await helpStyle()));
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const path: string[] = [];
  try {
    if (argv.length === 1 && argv[0] === "--version") {
      process.stdout.write(`${version}\n`);
      return 0;
    }
    // Contour's global flags may come before its command words; looked for only then, so a sidecar's start is unchanged.
    const globalFirst = argv[0]?.startsWith("--") || (argv[0] === "envoy" && argv[1]?.startsWith("--"));
    const args = globalFirst ? (await import("./commands/envoy.ts")).globalFlagsAfterCommand(argv) : argv;
    const { command, rest } = await resolveCommand(args, path);
    // Help is asked before `--`; after it, `--help` belongs to the command being run.
    const ownArgs = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
    if (ownArgs.some((arg) => HELP.has(arg))) {
      await printHelp(command, path);
      return 0;
    }
    if (!command.run) {
      if (path.length === 0) {
        await printHelp(command, path);
        return 2;
      }
      throw new UsageError(`${path.join(" ")} takes a command: ${Object.keys(command.subCommands ?? {}).join(", ")}`);
    }
    return await command.run({ rawArgs: rest });
  } catch (error) {
    const [code, message] =
      error instanceof UsageError
        ? [2, error.pointsAtHelp ? `${error.message} (see '${[programName(path), ...path, "--help"].join(" ")}')` : error.message]
        : error instanceof OperatorError
          ? [1, error.message]
          : [1, `unexpected error: ${errorMessage(error)}`];
    process.stderr.write(`envoy-shutdown-manager: ${message}\n`);
    return code;
  }
}

// Runs when executed, not when imported (tests import runCli).
if (import.meta.main) void runCli(process.argv.slice(2)).then((code) => process.exit(code));
