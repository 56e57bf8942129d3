/** What a command file exports: citty's definition (its meta and args render the help) and the examples help shows. */
import type { ArgsDef, CommandDef } from "citty";

export interface CommandModule {
  default: CommandDef<ArgsDef>;
  examples: readonly string[];
}
