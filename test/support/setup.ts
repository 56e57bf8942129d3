/** Preloaded into every test file (bunfig.toml): whatever a test started is gone after it, whatever it did. */
import { afterEach } from "bun:test";
import { runTeardowns } from "./teardown.ts";

afterEach(runTeardowns);
