/** What a command file exports, and the one shape of a command that reads a flag table into settings and runs them. */
import type { ArgsDef, CommandDef, CommandMeta } from "citty";
import { checkReadyFileWritable, claimReadyFile, ReadyFileRefused } from "../drain/ready-file.ts";
import type { DrainSettings } from "../drain/settings.ts";
import { formatDuration } from "../duration.ts";
import { configureLogging, type LoggingOptions } from "../log.ts";
import type { HandoffSettings } from "../sidecar/client.ts";
import { type CommandOptions, toArgs, UsageError } from "./option-kinds.ts";

/** A command file's exports: citty's definition (its meta and args render the help) and the examples help shows. */
export interface CommandModule {
  default: CommandDef<ArgsDef>;
  examples: readonly string[];
}

/** The settings every such command has: where the ready file is, and how to log. */
interface CommonSettings {
  handoff: Pick<HandoffSettings, "readyFile">;
  log: LoggingOptions;
  drain?: Pick<DrainSettings, "minDrainMs" | "drainTimeoutMs">;
}

/**
 * Rejects drain settings that contradict each other: a minimum no drain can reach before its deadline. Only on
 * this program's own command paths: Contour's and Envoy Gateway's command lines are taken as those tools take them.
 */
export function checkDrainSettings<S extends Pick<CommonSettings, "drain">>(settings: S): S {
  const { drain } = settings;
  if (drain && drain.drainTimeoutMs > 0 && drain.minDrainMs >= drain.drainTimeoutMs)
    throw new UsageError(
      `--min-drain-duration ${formatDuration(drain.minDrainMs)} is not shorter than --drain-timeout ${formatDuration(drain.drainTimeoutMs)}: every drain would time out`,
    );
  return settings;
}

/** What a command does with its ready file: a sidecar watches it (and removes its own stale one), a hook writes it. */
export type ReadyFileUse = "watch" | "write";

/** Refuses a ready-file path the command cannot use, before anything starts: one line, exit 2. */
async function checkReadyFile(path: string | undefined, use: ReadyFileUse): Promise<void> {
  if (path === undefined) return;
  try {
    await (use === "watch" ? claimReadyFile(path) : checkReadyFileWritable(path));
  } catch (error) {
    throw error instanceof ReadyFileRefused ? new UsageError(error.message) : error;
  }
}

/**
 * A command whose flags are `table`: `read` turns the raw arguments into settings, which set up logging (`logging`
 * may add to it) and are checked (the ready file can be used as `use` says), then go to `body`, whose result is the exit code.
 */
export function settingsCommand<S extends CommonSettings>(
  meta: CommandMeta,
  table: CommandOptions,
  use: ReadyFileUse,
  read: (rawArgs: string[]) => S,
  body: (settings: S) => Promise<number>,
  logging: (settings: S) => LoggingOptions = (settings) => settings.log,
) {
  return {
    meta,
    // A function: citty asks for the flag definitions only to render help, so a running command never builds them.
    args: () => toArgs(table),
    async run({ rawArgs }) {
      const settings = read(rawArgs);
      await configureLogging(logging(settings));
      await checkReadyFile(settings.handoff.readyFile, use);
      return body(settings);
    },
  } satisfies CommandDef<ArgsDef>;
}
