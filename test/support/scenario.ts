/** The prologue most end-to-end tests share: a fake Envoy, a sidecar process draining it fast, and its endpoints. */
import type { StatusReport } from "../../src/sidecar/status.ts";
import type { FakeEnvoyOptions } from "./fake-envoy.ts";
import { fakeEnvoy, fastDrain } from "./fixtures.ts";
import { spawnCli, startManager } from "./process.ts";

export interface ScenarioOptions {
  envoy?: FakeEnvoyOptions;
  /** Sidecar flags after the fast-drain ones (later flags win). */
  flags?: string[];
  env?: Record<string, string>;
  /** Run a compiled executable instead of the source. */
  cli?: string[];
}

/** Starts a fake Envoy and a sidecar process against it; both are gone after the test. */
export async function sidecarScenario(options: ScenarioOptions = {}) {
  const fake = await fakeEnvoy(options.envoy);
  const drain = fastDrain(fake.adminAddress, options.flags);
  const sidecar = await startManager(drain.args, { env: options.env, cli: options.cli });
  return {
    fake,
    sidecar,
    readyFile: drain.readyFile,
    url: sidecar.url,
    shutdown: (init?: RequestInit) => fetch(`${sidecar.url}/shutdown`, init),
    status: async () => (await (await fetch(`${sidecar.url}/status`)).json()) as StatusReport,
    /** Runs the exec hook against the same fake and ready file, joined to this sidecar unless flags say otherwise. */
    hook: (flags: string[] = [], env?: Record<string, string>) =>
      spawnCli(["shutdown", ...drain.args, "--serve-port", String(sidecar.port), ...flags], {
        env: { ...options.env, ...env },
        cli: options.cli,
      }),
  };
}
