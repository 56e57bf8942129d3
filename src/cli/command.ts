/** The program's one command shape, and the command that reads a flag table into settings and runs them. */
import type { ArgsDef, CommandContext, CommandDef, CommandMeta } from "citty";
import { checkReadyFileWatchable, checkReadyFileWritable, type HandoffSettings, ReadyFileRefused } from "../drain/handoff.ts";
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import { configureLogging, type LoggingOptions, log } from "../log.ts";
import { type CommandOptions, flagArgs, type Parsed, readOptions, UsageError } from "./option-kinds.ts";
import { drainOptions } from "./options.ts";

/** What help says of a command besides its arguments. */
export interface CommandHelp extends CommandMeta {
  name: string;
  description: string;
  /** What follows the command's name in its USAGE line, where the arguments do not say it: `[OPTIONS] -- COMMAND...`. */
  usage?: string;
  /** Command lines that help shows. */
  examples?: readonly string[];
}

/** Help's headings over a command's flags, in order; flags no section names come last, under OPTIONS. */
export type HelpSections = readonly { title: string; flags: readonly string[] }[];

/**
 * A command: citty's definition (meta, args with positionals, subcommands), written whole in its own file. A citty
 * definition is a plain object (defineCommand returns what it is given), typed here by citty's CommandDef, so no
 * module of citty loads at the sidecar's start; this program runs the definitions itself (cli/main.ts), reading the
 * flags strictly from the tables the args are made from, with their environment variables.
 */
export interface ProgramCommand extends CommandDef<ArgsDef> {
  meta: CommandHelp;
  /** The flag tables `run` reads (and the args and help come from): empty for a command that only holds others. */
  options?: CommandOptions;
  helpSections?: HelpSections;
  subCommands?: Record<string, ProgramCommand | (() => Promise<ProgramCommand>)>;
  /** Runs on the arguments after the command's name; resolves with the exit code. */
  run?: (context: Pick<CommandContext, "rawArgs">) => Promise<number>;
}

/** The settings a flag table reads into: one field per group. */
export type ReadSettings<C extends CommandOptions> = { [K in keyof C]: Parsed<C[K]> };

/** The settings every such command has: where the ready file is, and how to log. */
export interface CommonSettings {
  handoff: Pick<HandoffSettings, "readyFile">;
  log: LoggingOptions;
  drain?: DrainTimes;
  /** Said once logging is set up, before the command runs: what the flags ask that the command will not do as asked. */
  startWarnings?: readonly string[];
}

/** The drain settings these rules read: the delays before the first count, the minimum, the quiet period, the deadline. */
type DrainTimes = Pick<
  DrainSettings,
  "drainDelayMs" | "healthCheckFailDelayMs" | "checkDelayMs" | "minDrainMs" | "quietPeriodMs" | "drainTimeoutMs"
>;

/** The least a drain takes: its first count waits for the delays, and it is not complete before its minimum or a quiet period. */
export function leastDrainMs(drain: DrainTimes): number {
  const firstCount = drain.drainDelayMs + drain.healthCheckFailDelayMs + drain.checkDelayMs;
  return Math.max(firstCount, drain.minDrainMs, drain.quietPeriodMs);
}

/** A drain setting's flag, as a command line names it: `--drain-timeout`, or another tool's name for it. */
export type DrainFlagOf = (setting: keyof DrainTimes) => string;

const ownDrainFlag: DrainFlagOf = (setting) => `--${drainOptions[setting].flag}`;

/** Why no drain can complete before its deadline with these settings, or undefined when one can. */
export function drainContradiction(drain: DrainTimes, flagOf: DrainFlagOf = ownDrainFlag): string | undefined {
  const deadline = drain.drainTimeoutMs;
  if (deadline === 0) return undefined;
  const timeout = `${flagOf("drainTimeoutMs")} ${formatDuration(deadline)}`;
  const waits = (["drainDelayMs", "healthCheckFailDelayMs", "checkDelayMs"] as const).filter((setting) => drain[setting] > 0);
  const firstCountMs = waits.reduce((sum, setting) => sum + drain[setting], 0);
  for (const setting of ["minDrainMs", "quietPeriodMs"] as const)
    if (drain[setting] >= deadline)
      return `${flagOf(setting)} ${formatDuration(drain[setting])} is not shorter than ${timeout}: every drain would time out`;
  if (firstCountMs >= deadline)
    return `${waits.map((setting) => `${flagOf(setting)} ${formatDuration(drain[setting])}`).join(" + ")} is not shorter than ${timeout}: the first connection count would come after the deadline`;
  return undefined;
}

/**
 * Rejects drain settings under which no drain can complete. Only on this program's own command paths: Contour's and
 * Envoy Gateway's command lines are taken as those tools take them.
 */
export function checkDrainSettings<S extends { drain?: DrainTimes }>(settings: S): S {
  const contradiction = settings.drain && drainContradiction(settings.drain);
  if (contradiction) throw new UsageError(contradiction);
  return settings;
}

/** What a command does with its ready file: a sidecar watches it (and removes its own stale one), a hook writes it. */
export type ReadyFileUse = "watch" | "write";

/** Refuses a ready-file path the command cannot use, before anything starts: one line, exit 2. */
async function checkReadyFile(path: string | undefined, use: ReadyFileUse): Promise<void> {
  if (path === undefined) return;
  try {
    await (use === "watch" ? checkReadyFileWatchable(path) : checkReadyFileWritable(path));
  } catch (error) {
    throw error instanceof ReadyFileRefused ? new UsageError(error.message) : error;
  }
}

/** A command that reads its flags into settings, checks them, and runs on them. */
export interface SettingsCommandSpec<C extends CommandOptions, S extends CommonSettings> {
  meta: CommandHelp;
  options: C;
  helpSections?: HelpSections;
  readyFile: ReadyFileUse;
  /** Takes a command after `--` (`run -- envoy …`): it comes to `settings` as `trailing`. */
  trailing?: boolean;
  /** The settings from what the flags read (and the trailing command); this program's own paths also check them. */
  settings: (read: ReadSettings<C>, trailing: string[]) => S;
  run: (settings: S) => Promise<number>;
  /** How to log, from the settings; `settings.log` unless said otherwise. */
  logging?: (settings: S) => LoggingOptions;
}

/** What a command of one role is besides its flags' use: name, help, flags, examples, and its settings from what they read. */
export type RoleCommandSpec<C extends CommandOptions, S> = Pick<
  SettingsCommandSpec<C, CommonSettings>,
  "meta" | "options" | "helpSections"
> & {
  settings: (read: ReadSettings<C>) => S;
};

/** Splits `[flags] -- command [args]`; the command is required. */
export function splitCommand(rawArgs: string[]): { flags: string[]; command: string[] } {
  const at = rawArgs.indexOf("--");
  if (at < 0) throw new UsageError("no command: write the Envoy command after `--`, as in `run -- envoy -c envoy.yaml`");
  const command = rawArgs.slice(at + 1);
  if (command.length === 0)
    throw new UsageError("no command after `--`: write the Envoy command to run, as in `run -- envoy -c envoy.yaml`");
  return { flags: rawArgs.slice(0, at), command };
}

/**
 * A command whose flags are `options`: they are read into settings, which set up logging and are checked (the
 * ready file can be used as `readyFile` says), then go to `run`, whose result is the exit code.
 */
export function settingsCommand<C extends CommandOptions, S extends CommonSettings>(spec: SettingsCommandSpec<C, S>): ProgramCommand {
  const { meta, options, helpSections } = spec;
  return {
    meta,
    args: flagArgs(options),
    options,
    helpSections,
    async run({ rawArgs }) {
      const { flags, command } = spec.trailing ? splitCommand(rawArgs) : { flags: rawArgs, command: [] };
      const settings = spec.settings(readOptions(options, flags), command);
      await configureLogging(spec.logging?.(settings) ?? settings.log);
      for (const warning of settings.startWarnings ?? []) log.warn(warning);
      await checkReadyFile(settings.handoff.readyFile, spec.readyFile);
      return spec.run(settings);
    },
  };
}
