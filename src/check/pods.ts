/** Pod templates out of workloads, and the parts of a pod spec the checks read (loosely typed: manifests are input). */
import type { ManifestObject } from "./manifests.ts";

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped input, read field by field with care
export type Loose = any;

/** One pod template: the object it belongs to and its pod spec. */
export interface PodTemplate {
  /** `Kind/name`, as findings name it. */
  object: string;
  source: string;
  spec: Loose;
}

/** Where each kind keeps its pod spec. */
const POD_SPEC: Record<string, (object: Loose) => Loose> = {
  Pod: (object) => object.spec,
  Deployment: (object) => object.spec?.template?.spec,
  DaemonSet: (object) => object.spec?.template?.spec,
  StatefulSet: (object) => object.spec?.template?.spec,
  ReplicaSet: (object) => object.spec?.template?.spec,
  Job: (object) => object.spec?.template?.spec,
  CronJob: (object) => object.spec?.jobTemplate?.spec?.template?.spec,
};

/** The pod templates among the objects; other kinds are passed over. */
export function podTemplates(objects: ManifestObject[]): PodTemplate[] {
  return objects.flatMap(({ source, object }) => {
    const spec = typeof object.kind === "string" ? POD_SPEC[object.kind]?.(object) : undefined;
    if (typeof spec !== "object" || spec === null) return [];
    const name = (object.metadata as Loose)?.name ?? "(unnamed)";
    return [{ object: `${object.kind}/${name}`, source, spec }];
  });
}

/** A container of a pod: regular, or an init container (a native sidecar when its restartPolicy is Always). */
export interface PodContainer {
  name: string;
  spec: Loose;
  nativeSidecar: boolean;
}

/** The containers that run beside Envoy: the regular ones and native sidecars. */
export function runningContainers(spec: Loose): PodContainer[] {
  const regular: Loose[] = Array.isArray(spec.containers) ? spec.containers : [];
  const init: Loose[] = Array.isArray(spec.initContainers) ? spec.initContainers : [];
  return [
    ...regular.map((container) => ({ name: String(container.name), spec: container, nativeSidecar: false })),
    ...init
      .filter((container) => container.restartPolicy === "Always")
      .map((container) => ({ name: String(container.name), spec: container, nativeSidecar: true })),
  ];
}

/** A container's command line as it runs: its command (or the image's entrypoint, empty here) and its args. */
export const commandLine = (container: Loose): string[] => [...(container.command ?? []), ...(container.args ?? [])].map(String);

/** A container's environment as the program reads it; a `valueFrom` is unknown here, and named. */
export function environment(container: Loose): { env: Record<string, string>; unknown: string[] } {
  const env: Record<string, string> = {};
  const unknown: string[] = [];
  for (const variable of Array.isArray(container.env) ? container.env : []) {
    if (typeof variable?.name !== "string") continue;
    if (typeof variable.value === "string") env[variable.name] = variable.value;
    else if (variable.valueFrom) unknown.push(variable.name);
    else env[variable.name] = "";
  }
  return { env, unknown };
}

/** A port by number or by one of the container's port names. */
export function resolvePort(port: unknown, containers: PodContainer[]): number | undefined {
  if (typeof port === "number") return port;
  if (typeof port !== "string") return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  for (const container of containers)
    for (const declared of container.spec.ports ?? []) if (declared?.name === port) return Number(declared.containerPort);
  return undefined;
}

/** Kubernetes CPU quantities in millicores (`200m`, `0.5`, `1`); undefined when not set or not understood. */
export function millicores(quantity: unknown): number | undefined {
  if (typeof quantity === "number") return quantity * 1000;
  if (typeof quantity !== "string") return undefined;
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  return match ? Number(match[1]) * (match[2] ? 1 : 1000) : undefined;
}

const BINARY_UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9, "": 1 };

/** Kubernetes memory quantities in bytes (`64Mi`, `128M`, `1Gi`); undefined when not set or not understood. */
export function bytes(quantity: unknown): number | undefined {
  if (typeof quantity === "number") return quantity;
  if (typeof quantity !== "string") return undefined;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G|)$/.exec(quantity);
  return match ? Number(match[1]) * (BINARY_UNITS[match[2] ?? ""] ?? 1) : undefined;
}
