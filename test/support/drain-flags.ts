/** Flags for a fast drain against a fake Envoy, with the ready file in a fresh temporary directory. */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dirs: string[] = [];

/** Removes the temporary directories made by the current test (called after each test). */
export function cleanUpTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A temporary directory removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "esm-"));
  dirs.push(dir);
  return dir;
}

export interface FastDrain {
  args: string[];
  readyFile: string;
}

/** `--check-delay 0s --check-interval 100ms` against `admin`, plus `extra` (later flags win). */
export function fastDrain(admin: string, extra: string[] = []): FastDrain {
  const readyFile = join(tempDir(), "ready");
  return {
    readyFile,
    args: ["--admin-address", admin, "--check-delay", "0s", "--check-interval", "100ms", "--ready-file", readyFile, ...extra],
  };
}
