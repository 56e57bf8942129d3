/**
 * `npm run demo:run`: the supervisor runs a simulated Envoy as its child, with live keep-alive clients, then gets
 * SIGTERM as `docker stop` would send it: it drains Envoy, and only then stops it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { escapesAllowed } from "../src/log.ts";
import { chatter, openClient } from "../test/support/clients.ts";
import { SOURCE_CLI } from "../test/support/process.ts";
import { FAKE_ENVOY_CLI } from "../test/support/supervised.ts";

const CLIENTS = 12;
const label = (await escapesAllowed(1)) ? "\x1b[1mdemo:\x1b[0m" : "demo:";
const say = (text: string) => console.log(`${label} ${text}`);

/** Requests that failed: a drain that works loses none. */
let failed = 0;

const dir = mkdtempSync(join(tmpdir(), "envoy-shutdown-demo-run-"));
const socket = join(dir, "admin.sock");
const envoyCommand = [process.execPath, FAKE_ENVOY_CLI, "-c", "envoy.yaml", "--admin-socket", socket, "--info-dir", dir];
const runArgs = [
  "run",
  "--admin-address",
  socket,
  "--serve-port",
  "0",
  "--check-delay",
  "0s",
  "--check-interval",
  "500ms",
  "--drain-timeout",
  "20s",
];
say(`envoy-shutdown-manager ${runArgs.join(" ")} -- <simulated envoy>`);
const supervisor = Bun.spawn([...SOURCE_CLI, ...runArgs, "--log-format", "text", "--", ...envoyCommand], {
  stdout: "inherit",
  stderr: "inherit",
});
const info = join(dir, "epoch-0.json");
for (let i = 0; i < 200 && !existsSync(info); i++) await Bun.sleep(25);
const { dataPort } = JSON.parse(readFileSync(info, "utf8")) as { dataPort: number };
const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(dataPort)));
await Promise.all(clients.map((client) => client.request()));
const chatting = clients.map((client) => chatter(client, () => failed++));
say(`${CLIENTS} keep-alive clients connected to the simulated Envoy on 127.0.0.1:${dataPort}`);

await Bun.sleep(1000);
say("the orchestrator stops the container: SIGTERM to the supervisor (PID 1 in a container)");
const started = Date.now();
supervisor.kill("SIGTERM");
const code = await supervisor.exited;
await Promise.all(chatting);
const open = clients.filter((client) => !client.isClosed).length;
say(
  `the supervisor exited ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s: ${open} client connections still open, ` +
    `${failed} failed requests; Envoy got SIGTERM only after the drain`,
);
for (const client of clients) client.close();
rmSync(dir, { recursive: true, force: true });
process.exit(code === 0 && failed === 0 ? 0 : 1);
