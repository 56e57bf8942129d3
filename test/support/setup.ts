/** Preloaded into every test file (bunfig.toml): whatever a test started is gone after it, whatever it did. */
import { afterEach } from "bun:test";
import { cleanUpTempDirs } from "./drain-flags.ts";
import { killSpawned } from "./process.ts";

afterEach(async () => {
  await killSpawned();
  cleanUpTempDirs();
});
