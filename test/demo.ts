/**
 * `npm run demo`: a shutdown-manager drains a simulated Envoy that has live keep-alive clients.
 * The preStop exec hook (`shutdown`) joins the manager's drain and shows the connections falling to zero.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KeepAliveClient, openClient } from "./support/clients.ts";
import { startFakeEnvoy } from "./support/fake-envoy.ts";

const CLIENTS = 12;
const CLI = [process.execPath, new URL("../src/cli.ts", import.meta.url).pathname];
const say = (text: string) => console.log(`\x1b[1mdemo:\x1b[0m ${text}`);

/** A client that sends a request every 0.3–2.5 s until Envoy answers `connection: close`, as a real one would. */
async function chatter(client: KeepAliveClient): Promise<void> {
  while (!client.isClosed) {
    await Bun.sleep(300 + Math.random() * 2200);
    const response = await client.request().catch(() => "");
    if (response.includes("connection: close")) break;
  }
}

const dir = mkdtempSync(join(tmpdir(), "envoy-shutdown-demo-"));
const fake = await startFakeEnvoy({ mode: "live" });
say(`simulated Envoy: admin API on ${fake.adminAddress}, data plane on 127.0.0.1:${fake.dataPort}`);
const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(fake.dataPort)));
const chatting = clients.map(chatter);
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
const manager = Bun.spawn(
  [...CLI, "shutdown-manager", "--serve-address", "127.0.0.1", "--serve-port", "0", ...flags, "--log-format", "json"],
  {
    stdout: "inherit",
    stderr: "pipe",
  },
);
// The manager logs JSON: read its port from the "listening" line, and keep reading so it never blocks on a full pipe.
const port = await new Promise<number>((resolve, reject) => {
  void (async () => {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of manager.stderr) {
      text += decoder.decode(chunk);
      const match = /"msg":"shutdown-manager listening".*?"port":(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    }
    reject(new Error(`the shutdown-manager stopped:\n${text}`));
  })();
});
say(`shutdown-manager listening on 127.0.0.1:${port}`);

const hookArgs = ["shutdown", "--serve-port", String(port), ...flags, "--log-format", "text"];
say(`Kubernetes runs the preStop hook: envoy-shutdown-manager ${hookArgs.join(" ")}`);
const started = Date.now();
const hook = Bun.spawn([...CLI, ...hookArgs], { stdout: "inherit", stderr: "inherit" });
const code = await hook.exited;
await Promise.all(chatting);
say(
  `shutdown exited ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s: ${fake.openConnections} connections left, ` +
    `/healthcheck/fail posted ${fake.calls("/healthcheck/fail", "POST").length} time(s); Kubernetes would now send SIGTERM`,
);

manager.kill("SIGTERM");
await manager.exited;
for (const client of clients) client.close();
await fake.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(code);
