/** Logging through consola: JSON lines for machines, readable lines for people. */
import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";
import { errorMessage } from "./errors.ts";
import { isTerminal, nodeFs } from "./footprint.ts";

export const LOG_FORMATS = ["auto", "json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured fields carried by a log line (open_connections, elapsed, …). */
type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 3, debug: 4 };

/** consola's many log types folded into the four levels operators filter on. */
function levelName(logObj: LogObject): LogLevel {
  if (logObj.level <= 0) return "error";
  if (logObj.level === 1) return "warn";
  return logObj.level >= 4 ? "debug" : "info";
}

/** Splits consola's arguments into the message and the trailing fields object, if any. */
function messageAndFields(args: unknown[]): { message: string; fields: LogFields } {
  const last = args.at(-1);
  const hasFields = args.length > 1 && typeof last === "object" && last !== null && !(last instanceof Error);
  const parts = hasFields ? args.slice(0, -1) : args;
  const message = parts.map(errorMessage).join(" ");
  return { message, fields: hasFields ? (last as LogFields) : {} };
}

/** One JSON object per line: time, level, msg, then the fields. */
function formatJsonLine(logObj: LogObject): string {
  const { message, fields } = messageAndFields(logObj.args);
  return `${JSON.stringify({ time: logObj.date.toISOString(), level: levelName(logObj), msg: message, ...fields })}\n`;
}

/** `HH:MM:SS LEVEL message key=value …` for a terminal. */
function formatTextLine(logObj: LogObject): string {
  const { message, fields } = messageAndFields(logObj.args);
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  const time = logObj.date.toISOString().slice(11, 19);
  return `${time} ${levelName(logObj).toUpperCase().padEnd(5)} ${message}${pairs.join("")}\n`;
}

export interface LoggingOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; stderr by default so stdout stays for command output. */
  write?: (line: string) => void;
  /** Whether that destination is a terminal; found out for stderr when not given. */
  terminal?: boolean;
  /** A second file that receives every line too (the container's PID 1 stdout for exec hooks). */
  mirrorPath?: string;
}

/** The process-wide logger; `configureLogging` sets its level, format and destinations. */
export const log: ConsolaInstance = createConsola({ level: LEVELS.info, throttle: 0, reporters: [] });

/** Whether escape sequences (colours, line rewrites) may go to a file descriptor: a terminal, and NO_COLOR unset. */
export async function escapesAllowed(fd: number, env: Record<string, string | undefined> = process.env): Promise<boolean> {
  return !env.NO_COLOR && (await isTerminal(fd));
}

/** Writes a line to stderr through the native console ("%s": a message is never read as a format string). */
const writeStderr = (line: string) => console.error("%s", line.endsWith("\n") ? line.slice(0, -1) : line);

/** Applies the flags to the shared logger: one reporter that writes every line to each destination. */
export async function configureLogging(options: LoggingOptions): Promise<void> {
  const write = options.write ?? writeStderr;
  const terminal = options.terminal ?? (await isTerminal(2));
  const json = options.format === "json" || (options.format === "auto" && !terminal);
  const mirror = options.mirrorPath ? openMirror(options.mirrorPath) : undefined;
  // On a terminal, a log line first erases a progress line that may be showing.
  const erase = !json && terminal && !process.env.NO_COLOR ? "\r\x1b[2K" : "";
  log.level = LEVELS[options.level];
  log.setReporters([
    {
      log(logObj) {
        const line = json ? formatJsonLine(logObj) : erase + formatTextLine(logObj);
        // A log line that cannot be written (closed pipe) must never break a drain.
        try {
          write(line);
        } catch {}
        mirror?.(line);
      },
    },
  ]);
}

/**
 * A writer that appends to a file, or nothing when it cannot be opened; one whose reader went away is dropped,
 * never fatal. node:fs is loaded only here, by the hook in Kubernetes.
 */
function openMirror(path: string): ((line: string) => void) | undefined {
  const fs = nodeFs();
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "a");
  } catch {
    return undefined;
  }
  return (line) => {
    if (fd === undefined) return;
    try {
      fs.writeSync(fd, line);
    } catch {
      fd = undefined;
    }
  };
}

/** Where an exec hook's log lines should also go: PID 1's stdout, the only output `kubectl logs` shows. */
export function containerLogMirror(env = process.env, pid = process.pid): string | undefined {
  return env.KUBERNETES_SERVICE_HOST && pid !== 1 ? "/proc/1/fd/1" : undefined;
}
