/** What a command file exports, and the one shape of a command that reads a flag table into settings and runs them. */
import type { ArgsDef, CommandDef, CommandMeta } from "citty";
import type { DrainSettings } from "../drain/drain.ts";
import { formatDuration } from "../duration.ts";
import { configureLogging, type LoggingOptions } from "../log.ts";
import type { HandoffSettings } from "../sidecar/client.ts";
import { type CommandOptions, toArgs, UsageError } from "./option-kinds.ts";
import { checkReadyFile } from "./options.ts";

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

/**
 * A command whose flags are `table`: `read` turns the raw arguments into settings, which are checked (the ready file
 * is not a directory), set up logging (`logging` may add to it), then go to `body`, whose result is the exit code.
 */
export function settingsCommand<S extends CommonSettings>(
  meta: CommandMeta,
  table: CommandOptions,
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
      await checkReadyFile(settings.handoff.readyFile);
      await configureLogging(logging(settings));
      return body(settings);
    },
  } satisfies CommandDef<ArgsDef>;
}
