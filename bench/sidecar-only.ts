/**
 * The benchmark's sidecar without its command line: the program's own sidecar (server, drain, hand-off, start-up
 * check, logging) started with no flag table, argument or environment parsing, validation or command loading. The
 * benchmark builds it with the program's default settings defined as `SIDECAR_DEFAULTS` (read from the flag tables
 * in its own process), so it runs as the program would; it is not meant to run unbuilt. `--serve-port N
 * --admin-address ADDRESS [--ready-file PATH]` are looked up as the floor looks up its port. What it measures is
 * what the sidecar itself costs over the reference (bench/reference.ts).
 */
import { parseAdminAddress } from "../src/envoy/address.ts";
import { configureLogging, type LoggingOptions } from "../src/log.ts";
import { runSidecar, type SidecarSettings } from "../src/sidecar/sidecar.ts";

/** The defaults as JSON carries them: the ignore patterns as their sources. */
export type SidecarDefaults = Omit<SidecarSettings, "admin"> & {
  admin: Omit<SidecarSettings["admin"], "ignoreListeners"> & { ignoreListeners: string[] };
  log: LoggingOptions;
};
declare const SIDECAR_DEFAULTS: SidecarDefaults;

const given = (flag: string) => {
  const at = process.argv.indexOf(flag);
  return at < 0 ? undefined : process.argv[at + 1];
};
const { admin, handoff, sidecar, log, drain } = SIDECAR_DEFAULTS;

void configureLogging(log).then(() =>
  runSidecar({
    admin: {
      ...admin,
      address: parseAdminAddress(given("--admin-address") ?? admin.address.display),
      ignoreListeners: admin.ignoreListeners.map((pattern) => new RegExp(pattern)),
    },
    drain,
    handoff: { ...handoff, servePort: Number(given("--serve-port")), readyFile: given("--ready-file") },
    sidecar: { ...sidecar, serveAddress: "127.0.0.1" },
  }),
);
