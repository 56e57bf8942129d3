/**
 * `npm run demo`: a shutdown-manager drains a simulated Envoy that has live keep-alive clients.
 * The preStop exec hook (`shutdown`) joins the manager's drain and shows the connections falling to zero.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { escapesAllowed } from "../src/log.ts";
import { chatter, openClient } from "../test/support/clients.ts";
import { startFakeEnvoy } from "../test/support/fake-envoy.ts";
import { SOURCE_CLI, startManager } from "../test/support/process.ts";

const CLIENTS = 12;
const label = (await escapesAllowed(1)) ? "\x1b[1mdemo:\x1b[0m" : "demo:";
const say = (text: string) => console.log(`${label} ${text}`);

const dir = mkdtempSync(join(tmpdir(), "envoy-shutdown-demo-"));
const fake = await startFakeEnvoy({ mode: "live" });
say(`simulated Envoy: admin API on ${fake.adminAddress}, data plane on 127.0.0.1:${fake.dataPort}`);
const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(fake.dataPort)));
const chatting = clients.map((client) => chatter(client));
say(`${CLIENTS} keep-alive clients connected; Envoy counts ${fake.openConnections} open connections`);

const flags = [
  "--admin-address",
  fake.adminAddress,
  "--check-delay",
  "0s",
  "--check-interval",
  "500ms",
  "--ready-file",
  join(dir, "ready"),
];
const manager = await startManager(flags);
const port = manager.port;
say(`shutdown-manager listening on 127.0.0.1:${port}`);

const hookArgs = ["shutdown", "--serve-port", String(port), ...flags, "--log-format", "text"];
say(`Kubernetes runs the preStop hook: envoy-shutdown-manager ${hookArgs.join(" ")}`);
const started = Date.now();
const hook = Bun.spawn([...SOURCE_CLI, ...hookArgs], { stdout: "inherit", stderr: "inherit" });
const code = await hook.exited;
await Promise.all(chatting);
say(
  `shutdown exited ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s: ${fake.openConnections} connections left, ` +
    `/healthcheck/fail posted ${fake.calls("/healthcheck/fail", "POST").length} time(s); Kubernetes would now send SIGTERM`,
);

manager.proc.kill("SIGTERM");
await manager.exited;
for (const client of clients) client.close();
await fake.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(code);
