/** Logging through consola: JSON lines for machines, readable lines for people. */
import { closeSync, openSync, readlinkSync, writeSync } from "node:fs";
import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";
import { errorMessage } from "./errors.ts";

export type LogFormat = "auto" | "json" | "text";
export type LogLevel = "error" | "warn" | "info" | "debug";

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
  fd?: number;
  /** A second file that receives every line too (the container's PID 1 stdout for exec hooks). */
  mirrorPath?: string;
}

/** The process-wide logger; `configureLogging` sets its level, format and destinations. */
export const log: ConsolaInstance = createConsola({ level: LEVELS.info, throttle: 0, reporters: [] });

let mirrorFd: number | undefined;

/**
 * Whether a file descriptor is a terminal. On Linux, read from /proc: touching process.stderr or loading node:tty
 * costs the sidecar about 17 ms of start-up each. Elsewhere (a developer's Mac), ask node:tty.
 */
export function isTerminal(fd: number): boolean {
  try {
    return /^\/dev\/(?:pts\/|tty|console$)/.test(readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return (require("node:tty") as typeof import("node:tty")).isatty(fd);
  }
}

/** Whether escape sequences (colours, line rewrites) may go to a file descriptor: a terminal, and NO_COLOR unset. */
export function escapesAllowed(fd: number, env: Record<string, string | undefined> = process.env): boolean {
  return !env.NO_COLOR && isTerminal(fd);
}

/** Applies the flags to the shared logger: one reporter that writes every line to each destination. */
export function configureLogging(options: LoggingOptions): void {
  const fd = options.fd ?? 2;
  const json = options.format === "json" || (options.format === "auto" && !isTerminal(fd));
  if (mirrorFd !== undefined) closeSync(mirrorFd);
  mirrorFd = options.mirrorPath ? openMirror(options.mirrorPath) : undefined;
  // On a terminal, a log line first erases a progress line that may be showing.
  const erase = !json && escapesAllowed(fd) ? "\r\x1b[2K" : "";
  log.level = LEVELS[options.level];
  log.setReporters([
    {
      log(logObj) {
        const line = json ? formatJsonLine(logObj) : erase + formatTextLine(logObj);
        // A log line that cannot be written (closed pipe) must never break a drain.
        try {
          writeSync(fd, line);
        } catch {}
        if (mirrorFd !== undefined) writeLineToMirror(line);
      },
    },
  ]);
}

/** Opens the mirror for appending; a mirror that cannot be opened is simply not used. */
function openMirror(path: string): number | undefined {
  try {
    return openSync(path, "a");
  } catch {
    return undefined;
  }
}

/** Writes to the mirror; a mirror that fails (its reader went away) is dropped, never fatal. */
function writeLineToMirror(line: string): void {
  try {
    writeSync(mirrorFd as number, line);
  } catch {
    mirrorFd = undefined;
  }
}

/** Where an exec hook's log lines should also go: PID 1's stdout, the only output `kubectl logs` shows. */
export function containerLogMirror(env = process.env, pid = process.pid): string | undefined {
  return env.KUBERNETES_SERVICE_HOST && pid !== 1 ? "/proc/1/fd/1" : undefined;
}
