/** How a flag is declared once and read from the command line, its environment variable, or its default. */
import type { ArgDef } from "citty";
import { formatDuration, MAX_DURATION_MS, parseDuration } from "../duration.ts";
import { InvalidValue } from "../errors.ts";

/** A mistake in how the program was invoked: reported as one line that points at the command's help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
  /** Whether the line points at the command's help. */
  readonly pointsAtHelp: boolean = true;
}

/** A flag the command does not take. */
export class UnknownFlag extends UsageError {
  override name = "UnknownFlag";
  constructor(readonly flag: string) {
    super(`unknown flag --${flag}`);
  }
}

/** A start that cannot go ahead though the usage was fine (the command to run does not exist): one line, exit code 2. */
export class StartRefused extends UsageError {
  override name = "StartRefused";
  override readonly pointsAtHelp = false;
}

/** One flag: its name, default, help, and the parser that turns its text into the value a wing's settings take. */
export interface Option<T> {
  flag: string;
  /** The default as a user would type it; undefined means "unset". */
  default: string | undefined;
  description: string;
  valueHint: string;
  /** Booleans take no value (`--x`, `--no-x`) or `--x=<true|false|1|0|yes|no>`. */
  boolean: boolean;
  /** An empty environment variable is read as an empty flag is (the ready file's "none", the token's refusal); elsewhere it counts as unset. */
  readsEmptyVariable?: boolean;
  /** Shapes only what the command prints (`--json`, `--format`): read from the command line alone, no variable. */
  outputOnly?: boolean;
  /** Turns the text into the value; throws InvalidValue saying what would be accepted. */
  parse(text: string): T;
}

/** Flags keyed by the settings field they fill. */
export type OptionGroup = Record<string, Option<unknown>>;

/** The settings a group of flags produces: each key typed by its option's parser. */
export type Parsed<G extends OptionGroup> = { [K in keyof G]: G[K] extends Option<infer T> ? T : never };

/** A command's flags: groups by the wing settings they build. */
export type CommandOptions = Record<string, OptionGroup>;

/** Every option of a command's groups, in the order of its tables. */
export const allOptions = (groups: CommandOptions): Option<unknown>[] => Object.values(groups).flatMap((group) => Object.values(group));

function option<T>(flag: string, spec: Omit<Option<T>, "flag" | "boolean"> & { boolean?: boolean }): Option<T> {
  return { flag, boolean: false, ...spec };
}

/** A Go duration in milliseconds, no longer than a timer can hold; `positive` rejects 0, `minMs` anything shorter. */
export function duration(flag: string, defaultValue: string, description: string, { positive = false, minMs = 0 } = {}): Option<number> {
  // Worded only when a value is refused: declaring the flags is part of every start.
  const least = minMs > 0 ? ` of at least ${formatDuration(minMs)}` : positive ? " greater than zero" : "";
  const expected = () => `a Go duration${least} such as 300ms, 5s or 1m30s, at most ${formatDuration(MAX_DURATION_MS)}`;
  return option(flag, {
    default: defaultValue,
    description,
    valueHint: "duration",
    parse(text) {
      const ms = parseDuration(text);
      if (ms === undefined || ms > MAX_DURATION_MS || (positive && ms <= 0) || ms < minMs) throw new InvalidValue(expected());
      return ms;
    },
  });
}

/** A whole number at least `min`, and at most `max`. */
export function count(
  flag: string,
  defaultValue: string,
  description: string,
  { min = 0, max = Number.MAX_SAFE_INTEGER, valueHint = "count" } = {},
) {
  const expected = max === Number.MAX_SAFE_INTEGER ? `a whole number, ${min} or more` : `a whole number from ${min} to ${max}`;
  return option<number>(flag, {
    default: defaultValue,
    description,
    valueHint,
    parse(text) {
      const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
      if (!(n >= min && n <= max)) throw new InvalidValue(expected);
      return n;
    },
  });
}

/** What only some flags say about themselves. */
type Traits = Pick<Option<unknown>, "outputOnly">;

/** One of a fixed set of words. */
export function choice<const C extends string>(
  flag: string,
  choices: readonly C[],
  defaultValue: C,
  description: string,
  traits: Traits = {},
): Option<C> {
  return option(flag, {
    ...traits,
    default: defaultValue,
    description,
    valueHint: choices.join("|"),
    parse(text) {
      if (!(choices as readonly string[]).includes(text)) throw new InvalidValue(`one of ${choices.join(", ")}`);
      return text as C;
    },
  });
}

const TRUE = new Set(["true", "1", "yes"]);
const FALSE = new Set(["false", "0", "no"]);

/** The one boolean grammar of flags and environment variables: true/false, 1/0, yes/no, in any case. */
export function parseBoolean(text: string): boolean {
  const lowered = text.toLowerCase();
  if (TRUE.has(lowered)) return true;
  if (FALSE.has(lowered)) return false;
  throw new InvalidValue("true or false (also 1/0, yes/no)");
}

/** A boolean flag, also written `--no-<flag>`. */
export function toggle(flag: string, defaultValue: boolean, description: string, traits: Traits = {}): Option<boolean> {
  return option(flag, { ...traits, default: String(defaultValue), description, valueHint: "", boolean: true, parse: parseBoolean });
}

interface TextSpec {
  default: string | undefined;
  description: string;
  valueHint: string;
  readsEmptyVariable?: boolean;
}

/** Free text, or text turned into a value by `parse`. */
export function text(flag: string, spec: TextSpec): Option<string>;
export function text<T>(flag: string, spec: TextSpec & { parse: (text: string) => T }): Option<T>;
export function text<T>(flag: string, spec: TextSpec & { parse?: (text: string) => T }): Option<T | string> {
  return option<T | string>(flag, { ...spec, parse: spec.parse ?? ((value: string) => value) });
}

/** The same option under another tool's flag name, default or help: how other shutdown managers' flags map onto ours. */
export function alias<T>(option: Option<T>, changes: Partial<Pick<Option<T>, "flag" | "default" | "description">>): Option<T> {
  return { ...option, ...changes };
}

/** A flag another tool takes and this program accepts but does not use; help says so. */
export function ignored(flag: string, description: string): Option<string> {
  return option(flag, {
    default: undefined,
    description: `${description}: accepted and ignored`,
    valueHint: "value",
    parse: (text) => text,
  });
}

/** The environment variable that stands in for a flag: ENVOY_SHUTDOWN_CHECK_INTERVAL for --check-interval. */
export function envName(flag: string): string {
  return `ENVOY_SHUTDOWN_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/** The environment variable that stands in for an option, if one does. */
export const envNameOf = (spec: Option<unknown>): string | undefined => (spec.outputOnly ? undefined : envName(spec.flag));

/** The help text of a flag: its description, its default as written, and its environment variable. */
export function describeOption(spec: Option<unknown>): string {
  const env = envNameOf(spec);
  return `${spec.description} (default: ${spec.default ?? "unset"}${env ? `; env ${env}` : ""})`;
}

/** citty's argument definitions for a command's flags, in the order of its tables. */
export function flagArgs(groups: CommandOptions): Record<string, ArgDef> {
  return Object.fromEntries(
    allOptions(groups).map((spec) => [
      spec.flag,
      spec.boolean
        ? { type: "boolean", description: describeOption(spec), default: spec.default === "true" }
        : { type: "string", description: describeOption(spec), valueHint: spec.valueHint, default: spec.default },
    ]),
  );
}

/** The flags given on the command line, by name; the last occurrence of a flag wins, so `--no-x --x` is on. */
function parseArgv(groups: CommandOptions, argv: readonly string[]): Map<string, string> {
  const byFlag = new Map(allOptions(groups).map((spec) => [spec.flag, spec]));
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith("--") || token === "--") throw new UsageError(`unexpected argument ${JSON.stringify(token)}`);
    const eq = token.indexOf("=");
    const name = token.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : token.slice(eq + 1);
    const negated = name.startsWith("no-") && byFlag.get(name.slice(3))?.boolean ? name.slice(3) : undefined;
    const spec = byFlag.get(negated ?? name);
    if (!spec) throw new UnknownFlag(name);
    if (negated) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      given.set(spec.flag, "false");
    } else if (spec.boolean) given.set(spec.flag, inline ?? "true");
    else if (inline !== undefined) given.set(spec.flag, inline);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`flag --${name} needs a value`);
      given.set(spec.flag, next);
      i++;
    }
  }
  return given;
}

/** Reads one option: the flag, else its environment variable, else the default; throws UsageError on a bad value. */
function readOption(spec: Option<unknown>, given: Map<string, string>, env: Record<string, string | undefined>): unknown {
  const fromFlag = given.get(spec.flag);
  const variable = envNameOf(spec);
  const fromEnv = variable === undefined ? undefined : env[variable];
  const [source, raw] =
    fromFlag !== undefined
      ? [`--${spec.flag}`, fromFlag]
      : fromEnv !== undefined && (fromEnv !== "" || spec.readsEmptyVariable)
        ? [variable, fromEnv]
        : ["default", spec.default];
  if (raw === undefined) return undefined;
  try {
    return spec.parse(raw);
  } catch (error) {
    if (!(error instanceof InvalidValue)) throw error;
    throw new UsageError(`${source} ${JSON.stringify(raw)} is not valid: ${error.message}`);
  }
}

/** Reads a command's flags into the settings of each group. */
export function readOptions<C extends CommandOptions>(
  groups: C,
  argv: readonly string[],
  env: Record<string, string | undefined> = process.env,
): { [K in keyof C]: Parsed<C[K]> } {
  const given = parseArgv(groups, argv);
  const read = (group: OptionGroup) => Object.fromEntries(Object.entries(group).map(([key, spec]) => [key, readOption(spec, given, env)]));
  return Object.fromEntries(Object.entries(groups).map(([name, group]) => [name, read(group)])) as { [K in keyof C]: Parsed<C[K]> };
}
