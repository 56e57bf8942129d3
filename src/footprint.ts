/**
 * The few places where the obvious call costs every idle sidecar memory or start-up time, each replaced by one
 * that does not (what each saves is measured by `npm run bench`: docs/benchmarks.md). The sidecar's start must not
 * load node:fs, node:tty or citty's runtime: test/footprint.test.ts reads its imports and fails if it does.
 *
 * One rule has no function here: past 64 heap blocks at start, JavaScriptCore starts a thread that pre-faults heap
 * blocks (private memory, for good), and the sidecar's start sits near that line. What only a drain,
 * a scrape or a refused request needs (the drain's waiters and tracker, the metric tables, the refusal log) is made
 * when first needed, where it is used.
 */

/**
 * node:fs, loaded only by the code that needs it (the hook writing the ready file, the hook's log mirror): loading it
 * costs a sidecar megabytes, and the sidecar finds, reads and removes files through Bun.file instead.
 */
export const nodeFs = () => require("node:fs") as typeof import("node:fs");

/**
 * Whether a file descriptor is a terminal (a character device). Touching process.stderr or loading node:tty costs
 * the sidecar start-up time and megabytes, node:fs megabytes, and a stat starts Bun's thread pool (threads kept for
 * good). exists() needs none of them and is true for regular files and pipes, never terminals: a
 * container's stderr is a pipe, so only a device or a socket is asked with a stat. /dev/null is a character device
 * too, which is harmless: nobody reads the colours there.
 */
export async function isTerminal(fd: number): Promise<boolean> {
  const file = Bun.file(fd);
  if (await file.exists()) return false;
  const stat = await file.stat().catch(() => undefined);
  return stat?.isCharacterDevice() ?? false;
}

/** What Bun's `lastModified` reads when a path's stat fails (nothing there): 2^52 - 1, no time a file could have. */
const NO_MODIFICATION_TIME = 2 ** 52 - 1;

/**
 * Whether nothing is at a path (or it lies under something that is no directory), told by the synchronous stat
 * behind Bun.file's `lastModified`: the asynchronous stat(), and even a full read that fails, start Bun's thread pool
 * in an idle sidecar (two threads, kept for good). Whatever is there, a device included, has a time.
 */
export function holdsNoFile(path: string): boolean {
  return !(Bun.file(path).lastModified < NO_MODIFICATION_TIME);
}
