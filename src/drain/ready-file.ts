/** The ready file: how a drain finished in one container releases waiters in another (shared emptyDir). */
import { errorMessage, OperatorError } from "../errors.ts";
import { log } from "../log.ts";
import type { FinalPhase } from "./drain.ts";

/** How often a waiting sidecar looks for the ready file. */
const READY_FILE_POLL_MS = 10;

// node:fs costs the sidecar several MiB: only the hook loads it, to write the file atomically; the sidecar finds,
// reads and removes the file through Bun.file.
const nodeFs = () => require("node:fs") as typeof import("node:fs");

const parentOf = (path: string) => path.slice(0, path.lastIndexOf("/")) || "/";
const nameOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** Removes a ready file left by an earlier run: an emptyDir outlives a container restart. */
export async function removeStaleReadyFile(path: string): Promise<void> {
  const file = Bun.file(path);
  if (!(await file.exists())) return;
  await file.delete();
  log.warn("removed a stale ready file from an earlier run", { ready_file: path });
}

/** How long a one-byte read may take before the path counts as no directory (a directory fails at once). */
const DIRECTORY_PROBE_MS = 1000;

/**
 * Whether a path is an existing directory, where no ready file can be written. Asked without a stat, which would
 * start Bun's thread pool in an idle sidecar: exists() is true for regular files and pipes, and reading one byte of
 * what remains fails with EISDIR for a directory and ENOENT for nothing at all (the usual case). A device that
 * never answers the read is no directory.
 */
export async function isDirectory(path: string): Promise<boolean> {
  const file = Bun.file(path);
  if (await file.exists()) return false;
  let timer: Timer | undefined;
  const unanswered = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), DIRECTORY_PROBE_MS);
  });
  const read = file
    .slice(0, 1)
    .text()
    .then(
      () => false,
      (error: { code?: string }) => error.code === "EISDIR",
    );
  try {
    return await Promise.race([read, unanswered]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Writes the ready file with the drain's final phase, atomically, so a reader never sees it half-written. The
 * temporary name is unique to this write: hooks of several containers may finish at the same moment.
 */
export function writeReadyFile(path: string, phase: FinalPhase): void {
  const fs = nodeFs();
  const partial = `${parentOf(path)}/.${nameOf(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
  try {
    fs.mkdirSync(parentOf(path), { recursive: true });
    fs.writeFileSync(partial, `${phase}\n`);
    fs.renameSync(partial, path);
  } catch (error) {
    try {
      fs.rmSync(partial, { force: true });
    } catch {
      // A path under a non-directory cannot even be checked.
    }
    throw new OperatorError(`could not write the ready file ${path}: ${errorMessage(error)}`);
  }
}

/** Reads the phase written into a ready file; an empty or unknown file means a plain "drained". */
async function readPhase(path: string): Promise<FinalPhase> {
  const text = (
    await Bun.file(path)
      .text()
      .catch(() => "")
  ).trim();
  return text === "timed_out" || text === "failed" ? text : "drained";
}

/**
 * Calls `onReady` once, when the ready file appears; returns a function that stops watching. It looks every
 * READY_FILE_POLL_MS with a stat: that keeps the hand-off within its 20 ms budget without node:fs's watcher, which
 * costs the sidecar several MiB, and it runs only while a /shutdown waits, that is, while the pod terminates.
 */
export function watchReadyFile(path: string, onReady: (phase: FinalPhase) => void): () => void {
  let done = false;
  const stop = () => {
    done = true;
    clearInterval(poller);
  };
  const check = async () => {
    if (done || !(await Bun.file(path).exists()) || done) return;
    stop();
    onReady(await readPhase(path));
  };
  const poller = setInterval(check, READY_FILE_POLL_MS);
  void check();
  return stop;
}
