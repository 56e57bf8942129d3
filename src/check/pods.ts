/**
 * Pod templates out of workloads, and the parts of a pod spec the checks read as kubelet and the API server read
 * them (loosely typed: manifests are input). docs/check.md says where each rule comes from.
 */
import type { ManifestObject } from "./manifests.ts";

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped input, read field by field with care
export type Loose = any;

/** One pod template: the object it belongs to and its pod spec. */
export interface PodTemplate {
  /** `Kind/name`, as findings name it. */
  object: string;
  source: string;
  spec: Loose;
  /** Where the pod spec was found in an object of a kind check does not know (`spec.template.spec`). */
  guessedAt?: string;
}

/** A list field of the input, or none when it is something else. */
export const listOf = (value: unknown): Loose[] => (Array.isArray(value) ? value : []);
/** A list field's items that are objects (containers, mounts, headers). */
export const objectsIn = (value: unknown): Loose[] => listOf(value).filter((item) => typeof item === "object" && item !== null);

const template = (object: Loose) => object.spec?.template?.spec;

/** Where each kind keeps its pod spec. */
const POD_SPEC: Record<string, (object: Loose) => Loose> = {
  Pod: (object) => object.spec,
  PodTemplate: (object) => object.template?.spec,
  Deployment: template,
  DaemonSet: template,
  StatefulSet: template,
  ReplicaSet: template,
  ReplicationController: template,
  Job: template,
  CronJob: (object) => object.spec?.jobTemplate?.spec?.template?.spec,
  // Argo Rollouts: a Deployment's template (a Rollout with a workloadRef runs the Deployment it names).
  Rollout: template,
};

/** Where workloads of other kinds usually keep a pod spec, searched in this order. */
const CONVENTIONAL_PATHS = ["spec.template.spec", "spec.jobTemplate.spec.template.spec", "template.spec", "spec"];

const at = (object: Loose, path: string): Loose => path.split(".").reduce((node, key) => node?.[key], object);
const hasContainers = (spec: Loose) => Array.isArray(spec?.containers) || Array.isArray(spec?.initContainers);

/** The pod templates among the objects: those of the workload kinds above, and a pod spec where other kinds usually keep one. */
export function podTemplates(objects: ManifestObject[]): PodTemplate[] {
  return objects.flatMap(({ source, object }) => {
    if (typeof object.kind !== "string") return [];
    const name = `${object.kind}/${(object.metadata as Loose)?.name ?? "(unnamed)"}`;
    const known = Object.hasOwn(POD_SPEC, object.kind) ? POD_SPEC[object.kind] : undefined;
    if (known) {
      const spec = known(object);
      return typeof spec === "object" && spec !== null ? [{ object: name, source, spec }] : [];
    }
    const path = CONVENTIONAL_PATHS.find((candidate) => hasContainers(at(object, candidate)));
    return path ? [{ object: name, source, spec: at(object, path), guessedAt: path }] : [];
  });
}

/** A container of a pod: regular, a native sidecar (an init container with restartPolicy Always), or a plain init container. */
export interface PodContainer {
  name: string;
  spec: Loose;
  kind: "regular" | "native-sidecar" | "init";
}

/** Every container of a pod: the regular ones, then the init containers. */
export function podContainers(spec: Loose): PodContainer[] {
  return [
    ...objectsIn(spec.containers).map((container): PodContainer => ({ name: String(container.name), spec: container, kind: "regular" })),
    ...objectsIn(spec.initContainers).map(
      (container): PodContainer => ({
        name: String(container.name),
        spec: container,
        kind: container.restartPolicy === "Always" ? "native-sidecar" : "init",
      }),
    ),
  ];
}

/** A container's environment as kubelet builds it: known values, and the names whose values this check cannot see. */
export interface Environment {
  env: Record<string, string>;
  /** Variables from a `valueFrom` (a Secret, a ConfigMap, the downward API), or built on one. */
  unknown: string[];
  /** The `envFrom` sources, which may set any variable. */
  envFrom: string[];
}

/** The value of a `$(NAME)` reference: a string, "unknown" when it comes from what this check cannot see, or undefined. */
type Lookup = (name: string) => string | "unknown" | undefined;

const UNKNOWN = Symbol("unknown");

/** Looks a name up in an environment: a variable from a valueFrom is unknown, and so is any name an envFrom may set. */
const lookupIn =
  ({ env, unknown, envFrom }: Environment): Lookup =>
  (name) =>
    unknown.includes(name) || (!(name in env) && envFrom.length > 0) ? "unknown" : env[name];

/**
 * Kubernetes' `$(NAME)` expansion: `$$` is a literal `$`, `$(NAME)` the variable's value, and a reference to a
 * variable that does not exist stays as written. UNKNOWN when a reference is to a value this check cannot see.
 */
function expand(text: string, lookup: Lookup): string | typeof UNKNOWN {
  let out = "";
  let unknown = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    const next = text[i + 1];
    if (char !== "$" || next === undefined) {
      out += char;
      continue;
    }
    const close = next === "(" ? text.indexOf(")", i + 2) : -1;
    if (close < 0) {
      // `$$` is one `$`; any other `$x` (an unclosed `$(` too) stays as written.
      out += next === "$" ? "$" : `$${next}`;
      i++;
      continue;
    }
    const name = text.slice(i + 2, close);
    const value = lookup(name);
    if (value === "unknown") unknown = true;
    out += typeof value === "string" && value !== "unknown" ? value : `$(${name})`;
    i = close;
  }
  return unknown ? UNKNOWN : out;
}

/** A container's environment; a value may refer to variables defined before it, as kubelet expands it. */
export function environment(container: Loose): Environment {
  // No prototype: a variable named `constructor` is a variable like any other.
  const env: Record<string, string> = Object.create(null);
  const unknown: string[] = [];
  const envFrom = objectsIn(container.envFrom).map((source: Loose) => {
    const ref = source?.configMapRef ?? source?.secretRef;
    return `${source?.secretRef ? "Secret" : "ConfigMap"} ${ref?.name ?? "(unnamed)"}${source?.prefix ? ` (prefix ${source.prefix})` : ""}`;
  });
  const lookup = lookupIn({ env, unknown, envFrom });
  for (const variable of objectsIn(container.env)) {
    if (typeof variable?.name !== "string") continue;
    const value = variable.valueFrom ? UNKNOWN : expand(typeof variable.value === "string" ? variable.value : "", lookup);
    if (value === UNKNOWN) unknown.push(variable.name);
    else env[variable.name] = value;
  }
  return { env, unknown, envFrom };
}

/** Stands in a command line for a value this check cannot see, so that the reader knows which setting it is. */
export const UNKNOWN_VALUE = "\u0000unknown\u0000";

/**
 * A container's command line as kubelet starts it: command (the image's entrypoint when unset, empty here) and args,
 * `$(NAME)` expanded; a word built on a value this check cannot see holds UNKNOWN_VALUE, and is named in `unknown`.
 */
export function commandLine(container: Loose, environment: Environment): { argv: string[]; unknown: string[] } {
  const lookup = lookupIn(environment);
  const seen: Lookup = (name) => (lookup(name) === "unknown" ? UNKNOWN_VALUE : lookup(name));
  const words = [...listOf(container.command), ...listOf(container.args)].map(String);
  const argv = words.map((word) => expand(word, seen) as string);
  return { argv, unknown: words.filter((_, i) => argv[i]?.includes(UNKNOWN_VALUE)) };
}

/**
 * A port by number, or by name among the ports of the one container kubelet looks in (a hook's or probe's own
 * container); an empty name is port 80. Undefined when kubelet would not find it.
 */
export function resolvePort(port: unknown, container: PodContainer): number | undefined {
  if (typeof port === "number") return port;
  if (typeof port !== "string") return undefined;
  if (port === "") return 80;
  if (/^\d+$/.test(port)) return Number(port);
  for (const declared of objectsIn(container.spec.ports)) if (declared?.name === port) return Number(declared.containerPort);
  return undefined;
}

const SUFFIXES: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

/**
 * A Kubernetes quantity as a number (`200m` is 0.2, `64Mi` 67108864, `1e3` 1000): a signed decimal with a binary
 * or decimal SI suffix or a decimal exponent. "invalid" when the API server would refuse it; undefined when unset.
 */
export function quantity(value: unknown): number | "invalid" | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") return value;
  const match = typeof value === "string" ? QUANTITY.exec(value) : null;
  if (!match) return "invalid";
  const [, number, suffix = "", exponent] = match;
  return Number(number) * (exponent === undefined ? (SUFFIXES[suffix] ?? 1) : 10 ** Number(exponent));
}
