/**
 * Help, rendered from a command's citty definition (meta, args, subcommands) and wrapped to the terminal's width:
 * each flag on a line of its own with its description indented below it, so no column grows with the longest flag.
 */
import type { ArgDef } from "citty";
import { escapesAllowed } from "../log.ts";
import type { ProgramCommand } from "./command.ts";

/** The width help wraps to when stdout is not a terminal. */
export const PIPE_WIDTH = 80;
const INDENT = "  ";
const DESCRIPTION_INDENT = "      ";

interface Style {
  width: number;
  heading: (text: string) => string;
  term: (text: string) => string;
}

/** Words filled into lines of at most `width` columns, each line starting with `indent`; a longer word gets a line alone. */
export function wrap(text: string, width: number, indent = ""): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(indent + line);
  return lines.join("\n");
}

/** A command line as a shell takes it: continued with ` \` where it is longer than the width. */
function wrapCommandLine(line: string, width: number): string {
  const lines = wrap(line, width - 2, DESCRIPTION_INDENT)
    .trimStart()
    .split("\n");
  return lines.map((text, at) => `${at === 0 ? INDENT : ""}${text}${at < lines.length - 1 ? " \\" : ""}`).join("\n");
}

/** A term (a flag, an argument) on its own line, its description wrapped below it. */
function entry(term: string, description: string, style: Style): string {
  return `${INDENT}${style.term(term)}\n${wrap(description, style.width, DESCRIPTION_INDENT)}`;
}

/** How help writes a flag: `--name=<hint>`, or `--[no-]name` for a boolean. */
export function flagTerm(name: string, arg: ArgDef): string {
  if (arg.type === "boolean") return `--[no-]${name}`;
  return `--${name}${arg.valueHint ? `=<${arg.valueHint}>` : ""}`;
}

/** The OPTIONS part: every flag in its table order, under the command's own headings where it has them. */
function options(command: ProgramCommand, flags: [string, ArgDef][], style: Style): string[] {
  const sections = command.helpSections ?? [];
  const named = new Set(sections.flatMap((section) => section.flags));
  const groups = [
    ...sections.map((section) => ({
      title: section.title,
      flags: section.flags.flatMap((flag) => flags.filter(([name]) => name === flag)),
    })),
    { title: sections.length > 0 ? "OTHER OPTIONS" : "OPTIONS", flags: flags.filter(([name]) => !named.has(name)) },
  ];
  return groups
    .filter((group) => group.flags.length > 0)
    .map(
      (group) =>
        `${style.heading(group.title)}\n\n${group.flags.map(([name, arg]) => entry(flagTerm(name, arg), arg.description ?? "", style)).join("\n")}`,
    );
}

/** The COMMANDS part: names in a column, descriptions wrapped beside them. */
async function commands(subCommands: NonNullable<ProgramCommand["subCommands"]>, style: Style): Promise<string> {
  const entries = await Promise.all(
    Object.entries(subCommands).map(async ([name, load]) => [name, (typeof load === "function" ? await load() : load).meta] as const),
  );
  const column = Math.max(...entries.map(([name]) => name.length)) + INDENT.length * 2;
  const lines = entries.map(([name, meta]) => {
    const text = wrap(meta.description, style.width, " ".repeat(column)).trimStart();
    return `${INDENT}${style.term(name)}${" ".repeat(column - INDENT.length - name.length)}${text}`;
  });
  return [style.heading("COMMANDS"), lines.join("\n")].join("\n\n");
}

/** The USAGE line's words after the command's path. */
export function usageTail(command: ProgramCommand): string {
  if (command.meta.usage) return command.meta.usage;
  const args = Object.entries(command.args ?? {}) as [string, ArgDef][];
  const positionals = args.filter(([, arg]) => arg.type === "positional");
  const hasFlags = positionals.length < args.length;
  const words = hasFlags ? ["[OPTIONS]"] : [];
  for (const [name, arg] of positionals) words.push(`<${arg.valueHint ?? name.toUpperCase()}>`);
  if (command.subCommands) words.unshift("<COMMAND>");
  return words.join(" ");
}

/**
 * The help of `command`, invoked as `path` (the words a user types, the program's name first): description, USAGE,
 * ARGUMENTS, OPTIONS (or the command's headings), COMMANDS and EXAMPLES, each only when there is something in it.
 */
export async function renderHelp(command: ProgramCommand, path: string, style: Style): Promise<string> {
  const args = Object.entries(command.args ?? {}) as [string, ArgDef][];
  const positionals = args.filter(([, arg]) => arg.type === "positional");
  const flags = args.filter(([, arg]) => arg.type !== "positional");
  const version = command.meta.version ? ` (version ${command.meta.version})` : "";
  const parts = [
    wrap(`${command.meta.description}${version}`, style.width),
    [style.heading("USAGE"), wrap(`${path} ${usageTail(command)}`, style.width, INDENT)].join("\n\n"),
  ];
  if (positionals.length > 0)
    parts.push(
      [
        style.heading("ARGUMENTS"),
        ...positionals.map(([name, arg]) => entry(arg.valueHint ?? name.toUpperCase(), arg.description ?? "", style)),
      ].join("\n\n"),
    );
  parts.push(...options(command, flags, style));
  if (command.subCommands) {
    parts.push(await commands(command.subCommands, style));
    parts.push(wrap(`Run '${path} <COMMAND> --help' for a command's flags.`, style.width));
  }
  const examples = command.meta.examples ?? [];
  if (examples.length > 0)
    parts.push([style.heading("EXAMPLES"), examples.map((example) => wrapCommandLine(example, style.width)).join("\n")].join("\n\n"));
  return `${parts.join("\n\n")}\n`;
}

/** Help as stdout takes it: the terminal's width and colours there, 80 columns and plain text in a pipe or a file. */
export async function helpStyle(): Promise<Style> {
  const colour = await escapesAllowed(1);
  const paint = (code: number) => (text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  return {
    width: process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : PIPE_WIDTH,
    heading: paint(1),
    term: paint(36),
  };
}
