/** How the benchmark starts the executable: with its output going where a container's goes, not to /dev/null. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

let outputDir: string | undefined;
let spawnedCount = 0;

/**
 * Spawns `argv` with stdout and stderr written to a file of their own (removed when the benchmark exits). A pod's
 * container writes to a pipe, which the program treats as it treats a file: neither can be a terminal. Not
 * /dev/null or Bun's spawn pipes, a device and sockets: for those the program looks closer with a stat, which starts
 * Bun's thread pool, so they would measure a process no pod runs.
 */
export function spawnAsContainer(argv: string[]): Subprocess {
  if (!outputDir) {
    const dir = mkdtempSync(join(tmpdir(), "esm-bench-output-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    outputDir = dir;
  }
  const output = Bun.file(join(outputDir, `output-${++spawnedCount}.log`));
  return Bun.spawn(argv, { stdin: "ignore", stdout: output, stderr: output });
}
