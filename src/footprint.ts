/**
 * The few places where the obvious call costs every idle sidecar memory or start-up time, each replaced by one
 * that does not, with what it saves (measured by `npm run bench`; method in docs/benchmarks.md). The sidecar's
 * start must not load node:fs, node:tty or citty: test/footprint.test.ts reads its imports and fails if it does.
 *
 * One rule has no function here: past 64 heap blocks at start, JavaScriptCore starts a thread that pre-faults heap
 * blocks (about 0.5 MiB of private memory for good), and the sidecar's start sits near that line. What only a drain,
 * a scrape or a refused request needs (the drain's waiters and tracker, the metric tables, the refusal log) is made
 * when first needed, where it is used.
 */

/**
 * node:fs, loaded only by the code that needs it (the hook writing the ready file, the hook's log mirror): loading it
 * costs a sidecar 3 to 4 MiB, and the sidecar finds, reads and removes files through Bun.file instead.
 */
export const nodeFs = () => require("node:fs") as typeof import("node:fs");

/**
 * Whether a file descriptor is a terminal (a character device). Touching process.stderr or loading node:tty costs
 * the sidecar about 17 ms of start-up and several MiB, node:fs a few, and a stat starts Bun's thread pool (0.5 to
 * 0.9 MiB more for good). exists() needs none of them and is true for regular files and pipes, never terminals: a
 * container's stderr is a pipe, so only a device or a socket is asked with a stat. /dev/null is a character device
 * too, which is harmless: nobody reads the colours there.
 */
export async function isTerminal(fd: number): Promise<boolean> {
  const file = Bun.file(fd);
  if (await file.exists()) return false;
  const stat = await file.stat().catch(() => undefined);
  return stat?.isCharacterDevice() ?? false;
}

/** How long a one-byte read may take before the path counts as something that is there (a FIFO or device blocks). */
const READ_PROBE_MS = 1000;

/**
 * Whether a path holds no file a sidecar must look closer at, told without a stat, which would start Bun's thread
 * pool in an idle sidecar (two threads, 0.7 to 0.9 MiB for good). exists() is false for all but regular files and
 * FIFOs; of what remains, a one-byte read resolves empty for nothing at all (the usual case), and also for a path
 * under a file or an empty device such as /dev/null, none of which holds a file to remove; it fails for a directory
 * or a socket, and reads a byte or blocks on other devices.
 */
export async function holdsNoFile(path: string): Promise<boolean> {
  const file = Bun.file(path);
  if (await file.exists()) return false;
  let timer: Timer | undefined;
  const blocked = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), READ_PROBE_MS);
  });
  const read = file
    .slice(0, 1)
    .text()
    .then(
      (text) => text === "",
      () => false,
    );
  try {
    return await Promise.race([read, blocked]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Bun's fetch with the body read as text before ofetch sees the response. ofetch looks at `response.body` first,
 * and that getter builds a ReadableStream: loading the stream machinery costs a sidecar about 0.6 MiB (0.8 with
 * ofetch's URL joining, which full URLs skip) for bodies it reads whole anyway. The answer keeps its status and
 * headers; its text is handed over through `_bodyInit`, the field ofetch 1.5 reads for a response without a stream.
 * That field is ofetch's own: test/footprint.test.ts pins the ofetch version and the behaviour, so an upgrade that
 * changes either fails there, loudly, before a drain could read an empty body.
 */
export async function fetchWithTextBody(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await fetch(input, init);
  const text = await response.text();
  return Object.defineProperties(response, {
    body: { value: null },
    _bodyInit: { value: text },
    text: { value: () => Promise.resolve(text) },
  });
}
