/** The flags reference (docs/flags.md) is what the option tables give, and help lists nothing it does not. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { FLAGS_REFERENCE, flagsReference, listedCommands } from "../scripts/flags-reference.ts";
import { flagTerm, renderHelp } from "../src/cli/help.ts";

const plain = (width: number) => ({ width, heading: (text: string) => text, term: (text: string) => text });
const commands = await listedCommands();

describe("the flags reference", () => {
  test("docs/flags.md is what `npm run docs:flags` writes from the tables (run it after changing a flag)", async () => {
    expect(readFileSync(FLAGS_REFERENCE, "utf8")).toBe(await flagsReference());
  });

  test("covers every command, the dialects' included", () => {
    expect(commands.map(({ path }) => path)).toEqual(
      expect.arrayContaining([
        "envoy-shutdown-manager shutdown-manager",
        "envoy-shutdown-manager check",
        "contour envoy shutdown",
        "envoy-gateway envoy shutdown-manager",
      ]),
    );
  });

  test.each(commands.map(({ path, command }) => [path, command] as const))(
    "every flag %s's help lists is in its section",
    async (path, command) => {
      const reference = readFileSync(FLAGS_REFERENCE, "utf8");
      const section = reference.slice(reference.indexOf(`## \`${path}\``)).split("\n## ")[0] ?? "";
      const help = await renderHelp(command, path, plain(100));
      const listed = Object.entries(command.args ?? {}).filter(([, arg]) => arg.type !== "positional");
      expect(listed.length).toBeGreaterThan(0);
      for (const [name, arg] of listed) {
        expect(help).toContain(flagTerm(name, arg));
        expect(section).toContain(`\`${flagTerm(name, arg).replaceAll("|", "\\|")}\``);
      }
    },
  );
});

describe("help", () => {
  test("lists a command's flags under its own headings first, in their order, then the rest", async () => {
    const [{ command }] = commands.filter(({ path }) => path === "envoy-gateway envoy shutdown") as [(typeof commands)[number]];
    const grouped = { ...command, helpSections: [{ title: "ENVOY GATEWAY'S FLAGS", flags: ["exit-at-connections", "drain-timeout"] }] };
    const help = await renderHelp(grouped, "envoy-gateway envoy shutdown", plain(100));
    const at = (text: string) => help.indexOf(text);
    expect(at("ENVOY GATEWAY'S FLAGS")).toBeLessThan(at("--exit-at-connections"));
    expect(at("--exit-at-connections")).toBeLessThan(at("--drain-timeout"));
    expect(at("--drain-timeout")).toBeLessThan(at("OTHER OPTIONS"));
    expect(at("OTHER OPTIONS")).toBeLessThan(at("--admin-address"));
    expect(help.match(/^ {2}--drain-timeout=/gm)).toHaveLength(1);
  });

  test.each([80, 100])("of every command fits %d columns", async (width) => {
    for (const { path, command } of commands) {
      const long = (await renderHelp(command, path, plain(width))).split("\n").filter((line) => line.length > width);
      expect([path, long]).toEqual([path, []]);
    }
  });
});
