/**
 * The hand-off between the hook and the sidecar: where they meet (the sidecar's port and token), and the ready file by
 * which a drain finished in one container releases waiters in another (a shared emptyDir).
 */
import { errorMessage, OperatorError } from "../errors.ts";
import { holdsNoFile, nodeFs } from "../footprint.ts";
import { log } from "../log.ts";
import type { FinalPhase } from "./drain.ts";

/** How the hook and the sidecar find each other. */
export interface HandoffSettings {
  /** The sidecar's port; for the hook, 0 means never join a sidecar. */
  servePort: number;
  /** Where a finished drain is announced; undefined: nowhere (the supervisor, with no second container). */
  readyFile: string | undefined;
  shutdownToken: string | undefined;
}

/** The token of an Authorization header in the Bearer scheme, whose name is case-insensitive (RFC 9110); else undefined. */
export function bearerToken(header: string | null | undefined): string | undefined {
  // HTTP allows more than one space after the scheme; a token has none in it.
  return header?.slice(0, 7).toLowerCase() === "bearer " ? header.slice(7).trimStart() : undefined;
}

/** How often a waiting sidecar looks for the ready file: well within the hand-off's 20 ms budget. */
const READY_FILE_POLL_MS = 10;

const parentOf = (path: string) => path.slice(0, path.lastIndexOf("/")) || "/";
const nameOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** What is at a ready-file path: nothing, a regular file and the start of its text, or something else, named. */
type ReadyFilePath = { kind: "none" } | { kind: "file"; text: string } | { kind: "other"; what: string };

/** The kind of a non-regular file, as an operator would name it. */
function describeKind(stats: import("node:fs").Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

/** Looks at what is at a ready-file path, with a stat: a FIFO or a device must not be read blindly (it blocks, or never ends). */
async function inspectReadyFile(path: string): Promise<ReadyFilePath> {
  const file = Bun.file(path);
  const stats = await file.stat().catch(() => undefined);
  if (!stats) return { kind: "none" };
  if (!stats.isFile()) return { kind: "other", what: describeKind(stats) };
  return { kind: "file", text: stats.size > MAX_OWN_BYTES ? "(larger than a ready file)" : await file.text() };
}

/** A ready file is at most this long: a phase and a newline. */
const MAX_OWN_BYTES = 16;

/** Whether a file's text is one a ready file holds: a phase written here, or nothing (Contour's and Envoy Gateway's). */
const isReadyFileText = (text: string) => ["", "drained", "timed_out", "failed"].includes(text.trim());

/**
 * Whether a ready file left by an earlier run is at a path a sidecar watches (an emptyDir outlives a container
 * restart); anything but nothing or a ready file is refused. A typo must never delete another file.
 */
async function staleReadyFile(path: string): Promise<boolean> {
  // The usual case, nothing there, is settled without starting Bun's thread pool (see footprint.ts).
  if (holdsNoFile(path)) return false;
  const found = await inspectReadyFile(path);
  if (found.kind === "none") return false;
  if (found.kind === "other") throw new ReadyFileRefused(path, `${found.what}, not a ready file`);
  if (!isReadyFileText(found.text)) throw new ReadyFileRefused(path, "a file this program did not write; it is left alone");
  return true;
}

/** Refuses, before a sidecar starts, a path it could not watch. */
export async function checkReadyFileWatchable(path: string): Promise<void> {
  await staleReadyFile(path);
}

/** Removes a ready file left by an earlier run, looked at again: only once the sidecar serves, so a failed start touches nothing. */
export async function removeStaleReadyFile(path: string): Promise<void> {
  if (!(await staleReadyFile(path))) return;
  await Bun.file(path).delete();
  log.warn("removed a stale ready file from an earlier run", { ready_file: path });
}

/**
 * Checks, before a hook drains, that it will be able to write the ready file: nothing but a ready file is at the
 * path, and its directory exists (or is made) and takes a new file. Found after the drain, it would be too late.
 */
export async function checkReadyFileWritable(path: string): Promise<void> {
  if (path.endsWith("/")) throw new ReadyFileRefused(path, "a directory path (it ends with a slash)");
  const found = await inspectReadyFile(path);
  if (found.kind === "other") throw new ReadyFileRefused(path, `${found.what}; the ready file would replace it`);
  if (found.kind === "file" && !isReadyFileText(found.text))
    throw new ReadyFileRefused(path, "a file this program did not write; the ready file would replace it");
  const fs = nodeFs();
  const probe = `${parentOf(path)}/.${nameOf(path)}.${process.pid}.probe`;
  try {
    fs.mkdirSync(parentOf(path), { recursive: true });
    fs.writeFileSync(probe, "");
    fs.rmSync(probe);
  } catch (error) {
    const code = (error as { code?: string }).code ?? errorMessage(error);
    // mkdir -p meets a file on the way: EEXIST (or ENOTDIR further down).
    if (code === "EEXIST" || code === "ENOTDIR") throw new ReadyFileRefused(path, "under a path that is not a directory");
    throw new ReadyFileRefused(path, `in a directory that takes no new file (${code})`);
  }
}

/** A ready-file path that cannot be used, found before anything starts. */
export class ReadyFileRefused extends OperatorError {
  override name = "ReadyFileRefused";
  constructor(path: string, what: string) {
    super(`--ready-file ${JSON.stringify(path)} is ${what}`);
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
 * READY_FILE_POLL_MS (Bun.file's exists()) rather than through node:fs's watcher, which costs the sidecar several
 * MiB, and it runs only while a /shutdown waits, that is, while the pod terminates.
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
