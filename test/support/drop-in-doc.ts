/**
 * The generated part of docs/drop-in.md: the anchors' command lines (src/cli/anchors.ts) beside the dialect flag
 * tables as this program reads them. `npm run docs:drop-in` rewrites it; test/anchors.test.ts fails when it is stale.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { type AdminCall, ANCHORS, type Anchor, type AnchorCommandName, type AnchorFlag } from "../../src/cli/anchors.ts";
import { type Dialect, ENVOY_COMMANDS } from "../../src/cli/commands/envoy.ts";
import type { Option } from "../../src/cli/option-kinds.ts";

export const DOC_PATH = new URL("../../docs/drop-in.md", import.meta.url).pathname;
export const BEGIN = "<!-- generated from src/cli/anchors.ts by `npm run docs:drop-in`: edit the data, not this part -->";
export const END = "<!-- end of the generated part -->";

const PROGRAM_NAME: Record<Dialect, string> = { contour: "contour", "envoy-gateway": "envoy-gateway" };

/** The option a dialect command reads for `flag`. */
export function dialectOption(dialect: Dialect, command: AnchorCommandName, flag: string): Option<unknown> | undefined {
  const groups = Object.values(ENVOY_COMMANDS[dialect][command]?.options ?? {});
  return groups.flatMap((group) => Object.values(group)).find((option) => option.flag === flag);
}

const cell = (text: string) => text.replaceAll("|", "\\|");
const code = (text: string | undefined) => (text === undefined || text === "" ? "none" : `\`${cell(text)}\``);

/** Whether an option's default reads as the same value as `text` (`610s` and `10m10s` do). */
export function sameDefault(option: Option<unknown>, text: string | undefined): boolean {
  const value = (raw: string | undefined) => (raw === undefined ? undefined : option.parse(raw));
  try {
    return Bun.deepEquals(value(option.default), value(text));
  } catch {
    return false; // the tool's value is not one this option takes (a host name for an address)
  }
}

/** An option's default as help shows it, or "the same" when it reads as `text`. */
const shown = (option: Option<unknown>, text: string | undefined) =>
  sameDefault(option, text) ? "the same" : code(option.default === undefined ? "unset" : option.default);

function flagRow(dialect: Dialect, command: AnchorCommandName, entry: AnchorFlag): string {
  const option = dialectOption(dialect, command, entry.flag);
  const ours = !option
    ? "**not taken**"
    : entry.ignored
      ? "accepted and ignored"
      : `${shown(option, entry.default)}${entry.ours ? `; \`--${entry.ours}\` on this program's own commands` : ""}${entry.differs ? ` (${entry.differs})` : ""}`;
  const notes = [entry.history, entry.rendered && `rendered as \`${cell(entry.rendered)}\``].filter(Boolean).join("; ");
  return `| \`--${entry.flag}\` | ${code(entry.default)} | ${entry.since} | ${entry.meaning}${notes ? ` (${notes})` : ""} | ${ours} |`;
}

const call = (entry: AdminCall) =>
  `\`${entry.method} ${entry.path}${entry.query ? `?${entry.query}` : ""}\`${entry.repeats ? " (repeated)" : ""}`;

function commandSection(dialect: Dialect, anchor: Anchor, name: AnchorCommandName): string[] {
  const command = anchor.commands[name];
  const flags = [...command.flags, ...anchor.global];
  return [
    `### \`${PROGRAM_NAME[dialect]} envoy ${name}\``,
    "",
    `${command.summary}.`,
    "",
    `| flag | ${anchor.tool}'s default | since | meaning | as \`${PROGRAM_NAME[dialect]} envoy ${name}\` here |`,
    "| --- | --- | --- | --- | --- |",
    ...flags.map((entry) => flagRow(dialect, name, entry)),
    "",
    "| when | admin calls, in order | steps |",
    "| --- | --- | --- |",
    ...command.sequences.map(
      (sequence) => `| ${sequence.when} | ${sequence.calls.map(call).join(", ") || "none"} | ${sequence.steps.map(cell).join("; ")} |`,
    ),
    "",
  ];
}

function anchorSection(dialect: Dialect): string[] {
  const anchor = ANCHORS[dialect];
  const { read } = anchor;
  return [
    `## ${anchor.tool}`,
    "",
    `Read at [${anchor.repository}](https://github.com/${anchor.repository}) ${read.branch} \`${read.commit.slice(0, 10)}\` (${read.date}; latest release ${read.release}): ${anchor.files.map((file) => `\`${file}\``).join(", ")}.`,
    "",
    ...commandSection(dialect, anchor, "shutdown-manager"),
    ...commandSection(dialect, anchor, "shutdown"),
    `Counting: ${anchor.counting}.`,
    "",
    `| fixed in ${anchor.tool}'s code | ${anchor.tool} | here, as a flag's default on its command lines |`,
    "| --- | --- | --- |",
    ...anchor.constants.map((constant) => {
      const option = dialectOption(dialect, "shutdown", constant.flag);
      return `| ${constant.what} | ${code(constant.value)} | \`--${constant.flag}\`: ${option ? shown(option, constant.value) : "**missing**"} |`;
    }),
    "",
  ];
}

/** The generated part, markers included. */
export function renderDropIn(): string {
  return [BEGIN, "", ...anchorSection("envoy-gateway"), ...anchorSection("contour"), END].join("\n");
}

/** docs/drop-in.md with its generated part replaced by `generated`. */
export function withGenerated(doc: string, generated: string): string {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${DOC_PATH} has no generated part between its markers`);
  return `${doc.slice(0, begin)}${generated}${doc.slice(end + END.length)}`;
}

if (import.meta.main) {
  const doc = readFileSync(DOC_PATH, "utf8");
  writeFileSync(DOC_PATH, withGenerated(doc, renderDropIn()));
  console.log(`wrote ${DOC_PATH}`);
}
