/**
 * The anchors' command lines as data (src/cli/anchors.ts) against what this program does with them: the dialect
 * flag tables take every flag with its default, the fixed settings are the dialects' defaults, help lists the
 * anchor's flags first, docs/drop-in.md is generated from the data, and `check` says what the data knows of a flag
 * this version does not take. The compiled runs are in anchor-lines.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { checkPods } from "../src/check/checks.ts";
import { podTemplates } from "../src/check/pods.ts";
import { ANCHORS, type AnchorCommandName, type AnchorFlag } from "../src/cli/anchors.ts";
import type { ProgramCommand as Command } from "../src/cli/command.ts";
import { readProgram } from "../src/cli/commands/check.ts";
import { type Dialect, ENVOY_COMMANDS } from "../src/cli/commands/envoy.ts";
import hookCommand from "../src/cli/commands/shutdown.ts";
import sidecarCommand from "../src/cli/commands/shutdown-manager.ts";
import { flagArgs, readOptions } from "../src/cli/option-kinds.ts";
import { MAX_DURATION_MS } from "../src/duration.ts";
import { countListenerConnections } from "../src/envoy/stats.ts";
import { BEGIN, DOC_PATH, dialectOption, END, renderDropIn, sameDefault, withGenerated } from "./support/drop-in-doc.ts";

const DIALECTS = Object.keys(ANCHORS) as Dialect[];
const COMMANDS: AnchorCommandName[] = ["shutdown-manager", "shutdown"];
const OWN: Record<AnchorCommandName, Command> = { "shutdown-manager": sidecarCommand, shutdown: hookCommand };
const ROOT = new URL("..", import.meta.url).pathname;

/** Every flag the data gives a dialect's command: its own, then the tool's global ones. */
const anchorFlags = (dialect: Dialect, command: AnchorCommandName): AnchorFlag[] => [
  ...ANCHORS[dialect].commands[command].flags,
  ...ANCHORS[dialect].global,
];

const cases = DIALECTS.flatMap((dialect) => COMMANDS.map((command) => [dialect, command] as const));

/** Where a flag sits in a command's table: its group and settings key. */
function placeOf(command: Command, flag: string): [string, string] | undefined {
  for (const [group, options] of Object.entries(command.options ?? {}))
    for (const [key, option] of Object.entries(options)) if (option.flag === flag) return [group, key];
  return undefined;
}

describe.each(cases)("%s envoy %s, against the data", (dialect, command) => {
  const table = ENVOY_COMMANDS[dialect][command] as Command;

  test("takes every flag of the data, with the data's default unless a reason is written", () => {
    for (const entry of anchorFlags(dialect, command)) {
      const option = dialectOption(dialect, command, entry.flag);
      expect(option, `--${entry.flag}`).toBeDefined();
      if (!option) continue;
      if (entry.ignored) expect(option.description).toEndWith("accepted and ignored");
      else expect([entry.flag, sameDefault(option, entry.default)]).toEqual([entry.flag, entry.differs === undefined]);
    }
  });

  test("each anchor flag sets the setting this program's own flag of that name (or `ours`) sets", () => {
    for (const entry of anchorFlags(dialect, command).filter((known) => !known.ignored)) {
      const [group = "", key = ""] = placeOf(table, entry.flag) ?? [];
      expect([entry.flag, OWN[command].options?.[group]?.[key]?.flag]).toEqual([entry.flag, entry.ours ?? entry.flag]);
    }
  });

  test("help lists the anchor's flags first, in the anchor's order, then this program's", () => {
    const flags = anchorFlags(dialect, command).map((entry) => entry.flag);
    const listed = table.helpSections?.[0]?.flags ?? [];
    expect(listed.slice(0, flags.length)).toEqual(flags);
    expect(Object.keys(flagArgs(table.options ?? {})).length).toBeGreaterThan(flags.length);
  });

  test("the sidecar's help puts the drain flags it ignores under their own heading; the hook has none", () => {
    const ignored = table.helpSections?.[1];
    if (command === "shutdown") return expect(ignored).toBeUndefined();
    const drainFlags = Object.values(table.options?.drain ?? {}).map((option) => option.flag);
    const deadline = table.options?.drain?.drainTimeoutMs?.flag;
    expect(ignored?.title).toBe("IGNORED (THE PRESTOP HOOK DRAINS ENVOY)");
    expect(ignored?.flags).toEqual(drainFlags.filter((flag) => flag !== deadline));
  });
});

describe.each(DIALECTS)("what %s fixes in code", (dialect) => {
  test("is the default of the flag that holds it on its command lines", () => {
    for (const constant of ANCHORS[dialect].constants)
      for (const command of COMMANDS) {
        const option = dialectOption(dialect, command, constant.flag);
        if (option)
          expect([command, constant.flag, sameDefault(option, constant.ourDefault ?? constant.value)]).toEqual([
            command,
            constant.flag,
            true,
          ]);
      }
  });
});

describe("Envoy Gateway's command lines as its manifests write them", () => {
  const hook = ENVOY_COMMANDS["envoy-gateway"].shutdown as Command;

  test("--health-check-failure-delay takes every form Go prints a duration in", () => {
    const delay = (value: string) =>
      readOptions(hook.options ?? {}, [`--health-check-failure-delay=${value}`], {}).drain?.healthCheckFailDelayMs;
    expect([delay("15s"), delay("400ms"), delay("1.5s"), delay("1m0s"), delay("1h0m0s"), delay("0s")]).toEqual([
      15_000, 400, 1500, 60_000, 3_600_000, 0,
    ]);
  });

  test("durations as Go takes them: longer than a timer holds is the longest it holds, negative is none, 0 gives up at once", () => {
    const drain = (args: string[]) => readOptions(hook.options ?? {}, args, {}).drain as Record<string, number>;
    expect(drain(["--drain-timeout=99999h"]).drainTimeoutMs).toBe(MAX_DURATION_MS);
    expect(drain(["--min-drain-duration=-5s"]).minDrainMs).toBe(0);
    const atOnce = drain(["--drain-timeout=0s"]).drainTimeoutMs as number;
    expect(atOnce).toBeGreaterThan(0);
    expect(atOnce).toBeLessThan(1000);
    const sidecar = ENVOY_COMMANDS["envoy-gateway"]["shutdown-manager"] as Command;
    expect(readOptions(sidecar.options ?? {}, ["--ready-timeout=0s"], {}).drain?.drainTimeoutMs).toBe(atOnce);
    // A positive deadline shorter than that still leaves time to fail health checks and count once, as 0 does there.
    expect(drain(["--drain-timeout=1ns"]).drainTimeoutMs).toBe(atOnce);
    // Beyond what Go takes, and this program's own lines, still refuse.
    expect(() => drain(["--drain-timeout=9999999h"])).toThrow("not valid");
    expect(() => readOptions(hookCommand.options ?? {}, ["--drain-timeout=99999h"], {})).toThrow("not valid");
  });

  test("no listener drain by default: it cannot be undone, and Envoy Gateway drains listeners only before a delayed failure", () => {
    expect(readOptions(hook.options ?? {}, [], {}).drain).toMatchObject({ drainListeners: false, healthCheckFailDelayMs: 0 });
  });

  test("counting skips what Envoy Gateway skips: the admin, stats and readiness listeners and per-worker copies", () => {
    const { admin } = readOptions(hook.options ?? {}, [], {});
    const body = [
      "listener.0.0.0.0_10080.downstream_cx_active: 3",
      "listener.0.0.0.0_10080.worker_0.downstream_cx_active: 3",
      "listener.0.0.0.0_19001.downstream_cx_active: 2",
      "listener.0.0.0.0_19003.downstream_cx_active: 1",
      "listener.[__]_19003.downstream_cx_active: 1",
      "listener.admin.downstream_cx_active: 1",
      "listener.0.0.0.0_10443.downstream_cx_active: 4",
    ].join("\n");
    const count = countListenerConnections(body, admin?.ignoreListeners as RegExp[]);
    expect(count.total).toBe(7);
    expect([...count.byListener.keys()].sort()).toEqual(["0.0.0.0_10080", "0.0.0.0_10443"]);
  });
});

describe("docs/drop-in.md", () => {
  test("its generated part is what the data and the tables give (`npm run docs:drop-in` rewrites it)", () => {
    const doc = readFileSync(DOC_PATH, "utf8");
    expect(doc).toBe(withGenerated(doc, renderDropIn()));
    expect(doc).toContain(ANCHORS["envoy-gateway"].read.commit.slice(0, 10));
  });

  test("a generated table copied into README.md matches too, and every flag its drop-in section names exists", () => {
    const readme = readFileSync(`${ROOT}README.md`, "utf8");
    if (readme.includes(BEGIN)) {
      const copied = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length);
      expect(copied).toBe(renderDropIn());
    }
    const section = /^## Drop-in[^\n]*\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? "";
    const known = new Set(
      [...Object.values(ENVOY_COMMANDS).flatMap((commands) => Object.values(commands)), ...Object.values(OWN)].flatMap((command) =>
        Object.keys(flagArgs(command.options ?? {})),
      ),
    );
    const named = [...section.matchAll(/`--(?:no-)?([a-z][a-z-]*)/g)].map((match) => match[1] as string);
    expect(named.filter((flag) => !known.has(flag))).toEqual([]);
  });
});

describe("`check` on a flag the dialect does not take", () => {
  // biome-ignore lint/suspicious/noExplicitAny: parsed YAML, changed field by field
  const daemonSet = (): any => Bun.YAML.parse(readFileSync(`${ROOT}examples/contour/envoy-daemonset.yaml`, "utf8"));
  const hookFindings = (hook: string[]) => {
    const object = daemonSet();
    const manager = object.spec.template.spec.containers.find((c: { name: string }) => c.name === "shutdown-manager");
    manager.lifecycle.preStop.exec.command = hook;
    return checkPods(podTemplates([{ source: "test", object }]), readProgram).findings.filter((finding) => finding.id === "flags");
  };

  test("names the anchor command it belongs to and the release that introduced it", () => {
    const [finding] = hookFindings(["envoy-gateway", "envoy", "shutdown", "--ready-timeout=70s"]);
    expect(finding?.message).toBe(
      "the preStop hook `envoy shutdown` would exit 2: unknown flag --ready-timeout: --ready-timeout is Envoy Gateway's `envoy shutdown-manager` flag (since v1.0.0), not `envoy shutdown`'s",
    );
  });

  test("names the anchor release this version follows for a flag the data does not know", () => {
    const [finding] = hookFindings(["/bin/contour", "envoy", "shutdown", "--drain-timeout-grace=5s"]);
    expect(finding?.message).toContain(
      `unknown flag --drain-timeout-grace: not a flag of Contour's \`envoy shutdown\` up to ${ANCHORS.contour.read.release} (main of ${ANCHORS.contour.read.date})`,
    );
  });

  test("reads Contour's --log-format before the command words, as Contour does", () => {
    const line = readProgram(["/bin/contour", "--log-format", "json", "envoy", "shutdown", "--check-delay=5s"], {});
    expect([line?.command, line?.role, line?.errors, line?.settings?.drain.checkDelayMs]).toEqual(["envoy shutdown", "hook", [], 5000]);
  });

  test("names a contradiction on a dialect's hook with the tool's flag names", () => {
    const line = readProgram(["envoy-gateway", "envoy", "shutdown", "--health-check-failure-delay=70s", "--drain-timeout=60s"], {});
    expect(line?.contradiction).toBe(
      "--health-check-failure-delay 1m10s is not shorter than --drain-timeout 1m0s: the first connection count would come after the deadline",
    );
    expect(line?.errors).toEqual([]);
  });

  test("a sidecar line without a ready file is refused at start: nothing else could release Envoy's /shutdown", async () => {
    for (const dialect of DIALECTS) {
      const sidecar = ENVOY_COMMANDS[dialect]["shutdown-manager"] as Command;
      const run = sidecar.run?.({ rawArgs: ["--ready-file="] });
      await expect(run).rejects.toThrow("--ready-file is empty: the preStop hook's drain could never release Envoy's /shutdown");
    }
  });

  test("this program's own command lines keep the plain message", () => {
    expect(readProgram(["envoy-shutdown-manager", "shutdown", "--ready-timeout=70s"], {})?.errors[0]?.message).toContain(
      "unknown flag --ready-timeout",
    );
  });
});
