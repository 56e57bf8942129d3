/**
 * The ready file is a path other files may stand at: the hook refuses, before it drains, any path it could not or
 * must not write, and the sidecar removes on start only a ready file of its own.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readOptions } from "../src/cli/option-kinds.ts";
import { handoffOptions } from "../src/cli/options.ts";
import { fakeEnvoy, fastDrain, tempDir } from "./support/fixtures.ts";
import { spawnCli, startManager, within } from "./support/process.ts";

/** A FIFO in a fresh directory. */
function fifo(): string {
  const path = join(tempDir(), "fifo");
  expect(Bun.spawnSync(["mkfifo", path]).exitCode).toBe(0);
  return path;
}

/** A character device like /dev/null in a fresh directory (made as root), or undefined where mknod is refused. */
function device(): string | undefined {
  const path = join(tempDir(), "null");
  return Bun.spawnSync(["mknod", path, "c", "1", "3"]).exitCode === 0 ? path : undefined;
}

/** Runs the hook alone against a fake Envoy with `readyFile`; resolves with its exit code, its last stderr line, and the fake. */
async function hookWith(readyFile: string) {
  const fake = await fakeEnvoy({ connections: 0 });
  const cli = spawnCli(["shutdown", "--serve-port", "0", ...fastDrain(fake.adminAddress, ["--ready-file", readyFile]).args]);
  const code = await within(10_000, cli.exited, "shutdown");
  return { code, last: cli.stderrText().trim().split("\n").at(-1) ?? "", fake };
}

describe("the hook refuses, before the drain, a ready file it must not or cannot write", () => {
  const cases: [string, () => string | undefined, RegExp][] = [
    ["a FIFO", fifo, /is a FIFO; the ready file would replace it/],
    ["a device", device, /is a device; the ready file would replace it/],
    [
      "a file this program did not write",
      () => {
        const path = join(tempDir(), "envoy.yaml");
        writeFileSync(path, "static_resources: {}\n");
        return path;
      },
      /is a file this program did not write/,
    ],
    [
      "a path under a file",
      () => {
        const file = join(tempDir(), "file");
        writeFileSync(file, "");
        return `${file}/ready`;
      },
      /is under a path that is not a directory/,
    ],
    ["a path ending in a slash", () => `${tempDir()}/ready/`, /is a directory path \(it ends with a slash\)/],
    ["a path in /proc", () => "/proc/envoy-shutdown-ready", /is in a directory that takes no new file/],
  ];

  test.each(cases)("%s: exit 2 naming the path, Envoy untouched, nothing replaced", async (_, make, message) => {
    const path = make();
    if (path === undefined) return console.warn("skipped: mknod is refused here, so no device can be made");
    const before = existsSync(path) ? statSync(path) : undefined;
    const { code, last, fake } = await hookWith(path);
    expect(code).toBe(2);
    expect(last).toContain(`--ready-file ${JSON.stringify(path)}`);
    expect(last).toMatch(message);
    expect(fake.calls("/healthcheck/fail")).toHaveLength(0);
    if (before) expect(statSync(path).mode).toBe(before.mode);
  });

  test("a stale ready file of this program's is fine: it is replaced by the new phase", async () => {
    const path = join(tempDir(), "ready");
    writeFileSync(path, "timed_out\n");
    const { code } = await hookWith(path);
    expect(code).toBe(0);
    expect(readFileSync(path, "utf8")).toBe("drained\n");
  });
});

describe("the sidecar removes on start only a ready file it wrote", () => {
  test("a file of another program's, a FIFO or a device is left alone and the sidecar does not start: exit 2", async () => {
    const foreign = join(tempDir(), "envoy.yaml");
    writeFileSync(foreign, "static_resources: {}\n");
    for (const path of [foreign, fifo(), device() ?? "/dev/null"]) {
      const sidecar = spawnCli(["shutdown-manager", "--serve-port", "0", "--ready-file", path]);
      expect(await within(5000, sidecar.exited)).toBe(2);
      expect(sidecar.stderrText()).toContain(`--ready-file ${JSON.stringify(path)}`);
      expect(sidecar.lines.some((line) => line.msg === "shutdown-manager listening")).toBe(false);
    }
    expect(readFileSync(foreign, "utf8")).toBe("static_resources: {}\n");
  });

  test("a sidecar that cannot listen touches none: exit 2, the stale ready file still there", async () => {
    const path = join(tempDir(), "ok");
    writeFileSync(path, "drained\n");
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    try {
      const sidecar = spawnCli([
        "shutdown-manager",
        "--serve-address",
        "127.0.0.1",
        "--serve-port",
        String(taken.port),
        "--ready-file",
        path,
      ]);
      expect(await within(5000, sidecar.exited)).toBe(2);
      expect(sidecar.stderrText()).toContain("cannot listen");
      expect(readFileSync(path, "utf8")).toBe("drained\n");
    } finally {
      taken.stop(true);
    }
  });

  test("an empty file, as Contour's and Envoy Gateway's hooks leave, is a stale ready file: removed", async () => {
    const path = join(tempDir(), "ok");
    writeFileSync(path, "");
    const sidecar = await startManager(["--ready-file", path]);
    await sidecar.waitForLog((line) => line.msg === "removed a stale ready file from an earlier run");
    expect(existsSync(path)).toBe(false);
  });
});

describe("an empty ENVOY_SHUTDOWN_READY_FILE", () => {
  test("means no ready file, as an empty --ready-file does (and as help says)", () => {
    expect(readOptions({ handoff: handoffOptions }, [], { ENVOY_SHUTDOWN_READY_FILE: "" }).handoff.readyFile).toBeUndefined();
    expect(readOptions({ handoff: handoffOptions }, ["--ready-file="], {}).handoff.readyFile).toBeUndefined();
    expect(readOptions({ handoff: handoffOptions }, [], {}).handoff.readyFile).toBe("/admin/ok");
  });
});
