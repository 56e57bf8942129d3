/** Fixtures that clean up after themselves: a fake Envoy, temporary directories, flags for a fast drain. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FakeEnvoy, type FakeEnvoyOptions, startFakeEnvoy } from "./fake-envoy.ts";
import { onTeardown } from "./teardown.ts";

/** A fake Envoy admin API on a free loopback port, stopped after the test. */
export async function fakeEnvoy(options: FakeEnvoyOptions = {}): Promise<FakeEnvoy> {
  const fake = await startFakeEnvoy(options);
  onTeardown(() => fake.stop());
  return fake;
}

/** A scripted Envoy holding `connections` that all close `afterFailMs` after health checks are failed. */
export const closesAfter = (connections: number, afterFailMs: number): FakeEnvoyOptions => ({
  connections,
  timeline: [{ afterFailMs, connections: 0 }],
});

/** A temporary directory removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "esm-"));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface FastDrain {
  args: string[];
  readyFile: string;
}

/**
 * `--check-delay 0s --check-interval 100ms --quiet-period 0s --count-idle-connections` against `admin`, plus `extra`
 * (later flags win). The quiet period is off: its own tests turn it on, the others would each wait it out. Every open
 * connection counts, so a scripted count is the drain's count; the traffic tests say `--no-count-idle-connections`.
 */
export function fastDrain(admin: string, extra: string[] = []): FastDrain {
  const readyFile = join(tempDir(), "ready");
  return {
    readyFile,
    args: [
      ...["--admin-address", admin, "--check-delay", "0s", "--check-interval", "100ms", "--quiet-period", "0s", "--count-idle-connections"],
      ...["--ready-file", readyFile, ...extra],
    ],
  };
}
