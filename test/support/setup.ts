/** Preloaded into every test file (bunfig.toml): whatever a test started is gone after it, whatever it did. */
import { afterEach } from "bun:test";
import { runTeardowns } from "./teardown.ts";

// A test run inside a pod must never reach that cluster's API: tests that need one start their own on loopback.
delete process.env.KUBERNETES_SERVICE_HOST;
delete process.env.KUBERNETES_SERVICE_PORT;

afterEach(runTeardowns);
