/** Findings out: a table for people (colours only on a terminal), JSON for machines. */
import type { Finding } from "./checks.ts";

const COLUMNS = ["severity", "id", "object", "container", "message", "fix"] as const;

/** The findings as an aligned table; `colour` marks errors red and warnings yellow. */
export function formatTable(findings: Finding[], colour: boolean): string {
  if (findings.length === 0) return "no findings\n";
  const widths = COLUMNS.slice(0, 4).map((column) => Math.max(column.length, ...findings.map((f) => f[column].length)));
  const paint = (f: Finding, text: string) => (colour ? `\x1b[${f.severity === "error" ? 31 : 33}m${text}\x1b[0m` : text);
  const row = (cells: string[]) => cells.map((cell, i) => (i < 4 ? cell.padEnd(widths[i] ?? 0) : cell)).join("  ");
  const lines = [
    row(COLUMNS.map((column) => column.toUpperCase())),
    ...findings.map((f) => row([paint(f, f.severity.padEnd(widths[0] ?? 0)), f.id, f.object, f.container, f.message, `fix: ${f.fix}`])),
  ];
  const errors = findings.filter((f) => f.severity === "error").length;
  return `${lines.join("\n")}\n\n${errors} error(s), ${findings.length - errors} warning(s)\n`;
}

/** The findings as a JSON array, one object each. */
export const formatJson = (findings: Finding[]): string => `${JSON.stringify(findings, null, 2)}\n`;
