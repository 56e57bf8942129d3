/** Captures what the process-wide logger says during one test, as the JSON-lines fields a process test would read. */
import { log } from "../../src/log.ts";
import { onTeardown } from "./teardown.ts";

export interface LogLine {
  level: number;
  msg: string;
  fields: Record<string, unknown>;
}

/** Log lines from now until the test ends (then the logger is silent again). */
export function captureLogs(): LogLine[] {
  const lines: LogLine[] = [];
  log.level = 4;
  log.setReporters([
    {
      log(entry) {
        const last = entry.args.at(-1);
        const fields = entry.args.length > 1 && typeof last === "object" && last !== null ? (last as Record<string, unknown>) : {};
        lines.push({ level: entry.level, msg: String(entry.args[0]), fields });
      },
    },
  ]);
  onTeardown(() => log.setReporters([]));
  return lines;
}

/** The one warning whose message starts with or contains `marker` (there must be exactly one), for its text. */
export function oneWarning(lines: LogLine[], marker: string): string {
  const found = lines.filter((line) => line.msg.includes(marker));
  if (found.length !== 1) throw new Error(`expected one log line with ${JSON.stringify(marker)}, got ${found.length}`);
  return found[0]?.msg ?? "";
}
