/**
 * The sidecar's footprint is guarded here: what its start loads is read off the source, so an import added
 * anywhere on its path cannot bring back a module that costs every pod megabytes (docs/benchmarks.md has the
 * figures). Loading such a module lazily, inside the code that needs it (help, the hook), stays allowed.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { tempDir } from "./support/fixtures.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Modules the sidecar's start must never load: each costs several MiB of every idle sidecar. */
const FORBIDDEN = ["node:fs", "fs", "node:fs/promises", "citty", "node:util", "node:tty", "node:crypto"];

/** The modules a file imports when it is evaluated: value imports and re-exports, not type-only ones or import(). */
function staticImports(file: string): string[] {
  const source = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of source.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^;"']*?\s+from\s+)?["']([^"']+)["']/gm))
    found.push(match[1] as string);
  return found;
}

/** Every module reached through static imports from `entries`: files of this project, and the packages they name. */
function reachedFrom(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const specifier of staticImports(file)) {
      if (!specifier.startsWith(".")) packages.add(specifier);
      else if (specifier.endsWith(".ts")) visit(resolve(dirname(file), specifier));
    }
  };
  for (const entry of entries) visit(`${ROOT}${entry}`);
  return { files, packages };
}

describe("what the sidecar's start loads", () => {
  const sidecar = reachedFrom(["src/cli/main.ts", "src/cli/commands/shutdown-manager.ts"]);

  test("none of the modules that cost an idle sidecar megabytes", () => {
    expect([...sidecar.packages].filter((name) => FORBIDDEN.includes(name))).toEqual([]);
  });

  test("nor the code only a drain, a scrape or some starts need: the Kubernetes client, /status and /metrics, `check`, the hook, the supervisor, the dialects", () => {
    const reached = [...sidecar.files].map((file) => file.slice(ROOT.length));
    const lazy = [
      "src/kube/pod-events.ts",
      "src/kube/grace-period.ts",
      "src/kube/in-cluster.ts",
      "src/sidecar/status.ts",
      "src/sidecar/metrics.ts",
      "src/check/",
      "src/hook/",
      "src/supervisor/",
      "src/cli/commands/envoy.ts",
    ];
    expect(reached.filter((file) => lazy.some((path) => file.startsWith(path)))).toEqual([]);
  });

  test("the guard sees the sidecar's whole path (its drain, server and admin client)", () => {
    const reached = [...sidecar.files].map((file) => file.slice(ROOT.length));
    expect(reached).toEqual(expect.arrayContaining(["src/drain/drain.ts", "src/sidecar/server.ts", "src/envoy/client.ts"]));
    expect(sidecar.packages).toContain("ofetch");
  });

  test("the guard would catch one: the hook's path reaches node:fs only through a lazy require", () => {
    const hook = reachedFrom(["src/cli/commands/shutdown.ts"]);
    expect([...hook.packages].filter((name) => FORBIDDEN.includes(name))).toEqual([]);
    expect(staticImports(`${ROOT}test/footprint.test.ts`)).toContain("node:fs");
  });
});

describe("the sidecar tells an empty ready-file path without starting Bun's thread pool", () => {
  test("nothing there, or a path under a file, holds no file; anything there is looked at closer, a device too", async () => {
    const { holdsNoFile } = await import("../src/footprint.ts");
    const dir = tempDir();
    const file = join(dir, "file");
    writeFileSync(file, "");
    const fifo = join(dir, "fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // The usual case: if Bun's lastModified stopped telling it, every sidecar would start the thread pool with a stat.
    expect(holdsNoFile(join(dir, "ready"))).toBe(true);
    expect(holdsNoFile(`${file}/ready`)).toBe(true);
    for (const there of [file, dir, fifo, "/dev/null"]) expect([there, holdsNoFile(there)]).toEqual([there, false]);
  });
});
