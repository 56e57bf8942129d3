/** Findings out: a table for people (colours only on a terminal), JSON for machines, and a summary line for both. */
import type { Finding } from "./checks.ts";

const COLUMNS = ["severity", "id", "object", "container", "message", "fix"] as const;

/** Text from the input, safe on a terminal and on one line: control characters (escapes, line ends) are shown escaped. */
export const printable = (text: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it replaces
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) => JSON.stringify(char).slice(1, -1));

/** How much was read and found: "3 files, 5 documents, 2 pods wired, 1 error, 1 warning". */
export function formatSummary(read: { files: number; documents: number; wired: number }, findings: Finding[]): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const errors = findings.filter((f) => f.severity === "error").length;
  return `${[count(read.files, "file"), count(read.documents, "document"), `${count(read.wired, "pod")} wired`, count(errors, "error"), count(findings.length - errors, "warning")].join(", ")}\n`;
}

/** The findings as an aligned table, then the summary; `colour` marks errors red and warnings yellow. */
export function formatTable(findings: Finding[], colour: boolean, summary: string): string {
  if (findings.length === 0) return summary;
  const cells = findings.map((f) => ({ ...f, ...Object.fromEntries(COLUMNS.map((column) => [column, printable(f[column])])) }) as Finding);
  const widths = COLUMNS.slice(0, 4).map((column) => Math.max(column.length, ...cells.map((f) => f[column].length)));
  const paint = (f: Finding, text: string) => (colour ? `\x1b[${f.severity === "error" ? 31 : 33}m${text}\x1b[0m` : text);
  const row = (cells: string[]) => cells.map((cell, i) => (i < 4 ? cell.padEnd(widths[i] ?? 0) : cell)).join("  ");
  const lines = [
    row(COLUMNS.map((column) => column.toUpperCase())),
    ...cells.map((f) => row([paint(f, f.severity.padEnd(widths[0] ?? 0)), f.id, f.object, f.container, f.message, `fix: ${f.fix}`])),
  ];
  return `${lines.join("\n")}\n\n${summary}`;
}

/** The findings as a JSON array, one object each. */
export const formatJson = (findings: Finding[]): string => `${JSON.stringify(findings, null, 2)}\n`;
