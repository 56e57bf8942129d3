/**
 * `npm run fake-envoy`: the tests' simulated Envoy, running until Ctrl-C, for trying the program by hand. It
 * prints its admin address, keeps a few keep-alive clients busy on its data plane, and says what a drain does to
 * them: after `POST /healthcheck/fail` each connection closes once it finishes a request, as Envoy closes them.
 *
 *   --admin-port N   the admin API's loopback port (default: any free port)
 *   --clients N      keep-alive clients on the data plane (default: 8)
 *   --stuck N        connections that never close, as an idle TCP proxy connection would not (default: 0)
 */
import { chatter, openClient } from "../test/support/clients.ts";
import { startFakeEnvoy } from "../test/support/fake-envoy.ts";

const USAGE = "usage: npm run fake-envoy -- [--admin-port N] [--clients N] [--stuck N]";

/** The flags, each a whole number; anything else is one line and exit 2. */
function readFlags(argv: string[]): { adminPort: number; clients: number; stuck: number } {
  const flags = { adminPort: 0, clients: 8, stuck: 0 };
  const names: Record<string, keyof typeof flags> = { "--admin-port": "adminPort", "--clients": "clients", "--stuck": "stuck" };
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i] ?? ""];
    const value = Number(argv[i + 1]);
    if (!key || !Number.isInteger(value) || value < 0 || (key === "adminPort" && value > 65535)) {
      process.stderr.write(`fake-envoy: ${JSON.stringify(argv[i])} ${argv[i + 1] ?? ""} is not one of its flags\n${USAGE}\n`);
      process.exit(2);
    }
    flags[key] = value;
  }
  return flags;
}

const { adminPort, clients: clientCount, stuck } = readFlags(process.argv.slice(2));
const fake = await startFakeEnvoy({ mode: "live", adminPort, stuckConnections: stuck }).catch((error: unknown) => {
  process.stderr.write(`fake-envoy: cannot listen on 127.0.0.1:${adminPort}: ${error instanceof Error ? error.message : error}\n`);
  process.exit(2);
});
const clients = await Promise.all(Array.from({ length: clientCount }, () => openClient(fake.dataPort)));
let failed = 0;
for (const client of clients) void chatter(client, () => failed++);

const say = (text: string) => console.log(`fake-envoy: ${text}`);
say(`admin API on ${fake.adminAddress}, data plane on 127.0.0.1:${fake.dataPort}`);
say(`${clientCount} keep-alive clients send a request every 0.3 to 2.5 s${stuck > 0 ? `; ${stuck} connections never close` : ""}`);
say("drain it from another terminal, for instance:");
console.log(
  `  npx bun src/cli/main.ts shutdown --serve-port 0 --admin-address ${fake.adminAddress} --check-delay 0s --ready-file /tmp/envoy-ready`,
);

// What the program does to this Envoy, as it happens: health checks failed or passed again, connections closing.
let reported = { failed: fake.isHealthCheckFailed, open: fake.openConnections };
setInterval(() => {
  const now = { failed: fake.isHealthCheckFailed, open: fake.openConnections };
  if (now.failed !== reported.failed)
    say(
      now.failed ? "health checks failed (POST /healthcheck/fail): connections close after their next request" : "health checks pass again",
    );
  if (now.open !== reported.open) say(`${now.open} open connection(s)${failed > 0 ? `, ${failed} request(s) failed` : ""}`);
  reported = now;
}, 250);

for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    for (const client of clients) client.close();
    void fake.stop().then(() => process.exit(0));
  });
