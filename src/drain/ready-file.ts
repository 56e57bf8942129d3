/** The ready file: how a drain finished in one container releases waiters in another (shared emptyDir). */
import { existsSync, type FSWatcher, mkdirSync, readFileSync, renameSync, rmSync, watch, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { errorMessage, OperatorError } from "../errors.ts";
import { log } from "../log.ts";
import type { FinalPhase } from "./drain.ts";

/** How often the watcher also checks by hand, in case the directory cannot be watched (or an event is missed). */
const READY_FILE_POLL_MS = 1000;

/** Removes a ready file left by an earlier run: an emptyDir outlives a container restart. */
export function removeStaleReadyFile(path: string): void {
  if (!existsSync(path)) return;
  rmSync(path, { force: true });
  log.warn("removed a stale ready file from an earlier run", { ready_file: path });
}

/**
 * Writes the ready file with the drain's final phase, atomically, so a watcher never reads it half-written. The
 * temporary name is unique to this write: hooks of several containers may finish at the same moment.
 */
export function writeReadyFile(path: string, phase: FinalPhase): void {
  const partial = `${dirname(path)}/.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(partial, `${phase}\n`);
    renameSync(partial, path);
  } catch (error) {
    removeQuietly(partial);
    throw new OperatorError(`could not write the ready file ${path}: ${errorMessage(error)}`);
  }
}

/** Removes a file if it can; a path under a non-directory cannot even be checked. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {}
}

/** Reads the phase written into a ready file; an empty or unknown file means a plain "drained". */
function readPhase(path: string): FinalPhase {
  try {
    const text = readFileSync(path, "utf8").trim();
    return text === "timed_out" || text === "failed" ? text : "drained";
  } catch {
    return "drained";
  }
}

/** Calls `onReady` once, when the ready file appears; returns a function that stops watching. */
export function watchReadyFile(path: string, onReady: (phase: FinalPhase) => void): () => void {
  let watcher: FSWatcher | undefined;
  let done = false;
  const stop = () => {
    done = true;
    watcher?.close();
    clearInterval(poller);
  };
  const check = () => {
    if (done || !existsSync(path)) return;
    stop();
    onReady(readPhase(path));
  };
  const poller = setInterval(check, READY_FILE_POLL_MS);
  try {
    const name = basename(path);
    watcher = watch(dirname(path), (_event, file) => {
      if (file === null || file === name) check();
    });
    watcher.on("error", () => watcher?.close());
  } catch (error) {
    log.warn(`cannot watch the ready file's directory; checking it every ${READY_FILE_POLL_MS} ms instead`, {
      ready_file: path,
      reason: errorMessage(error),
    });
  }
  return stop;
}
