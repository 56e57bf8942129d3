/** The executable as `bun run build` makes it, built once per test process into a directory of its own. */
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILD_FLAGS } from "./build-flags.ts";
import { tempDir } from "./fixtures.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
let built: Promise<string> | undefined;

/** The path of a freshly compiled executable (same flags as `bun run build`); removed when the process exits. */
export function compiledExecutable(): Promise<string> {
  built ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "esm-build-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    const outfile = join(dir, "envoy-shutdown-manager");
    const build = Bun.spawn([process.execPath, "build", `${ROOT}src/cli/main.ts`, ...BUILD_FLAGS, "--outfile", outfile], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if ((await build.exited) !== 0) throw new Error(`bun build failed: ${await new Response(build.stderr).text()}`);
    return outfile;
  })();
  return built;
}

/** The compiled executable under another tool's name (as the image links `contour` and `envoy-gateway`), in a directory of its own. */
export async function compiledAs(name: string): Promise<string> {
  const path = join(tempDir(), name);
  symlinkSync(await compiledExecutable(), path);
  return path;
}
