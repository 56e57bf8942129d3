/**
 * Checks Kubernetes manifests against the API's own schemas, as kubernetes-models ships them: its validators catch
 * wrong types, formats and missing required fields; its TypeScript types, given each manifest as an object literal,
 * make the compiler reject any field the API does not have (a misspelled one included), which the validators let pass.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";

const ROOT = new URL("../..", import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: a manifest is arbitrary YAML until it has been checked
export type Manifest = Record<string, any>;

/** A kubernetes-models class: it validates at run time, and names the module that declares its type (I<Kind>). */
type Model = (new (data: never) => { validate(): void }) & { apiVersion: string; kind: string };

/** Each kind the examples use, by name. */
const KINDS: Record<string, Model> = Object.fromEntries(
  [Deployment, DaemonSet, Pod, ConfigMap, Secret, ServiceAccount, Role, RoleBinding].map((model) => [model.kind, model as Model]),
);

/** The kubernetes-models module of a kind: its path is the API version, then the kind (`apps/v1/Deployment`). */
const moduleOf = (kind: string) => `kubernetes-models/${KINDS[kind]?.apiVersion}/${kind}`;

/** Whether a YAML document is a Kubernetes object this checker knows (Compose files and Kustomizations are not). */
export const isKubernetesObject = (doc: Manifest) => typeof doc?.kind === "string" && doc.kind in KINDS;

/** Every problem found in `manifests`, each prefixed with its name; empty when all are valid. */
export function schemaProblems(manifests: { name: string; doc: Manifest }[]): string[] {
  const problems: string[] = [];
  for (const { name, doc } of manifests) {
    const model = KINDS[doc.kind];
    if (!model) {
      problems.push(`${name}: kind ${JSON.stringify(doc.kind)} is not checked`);
      continue;
    }
    try {
      new model(structuredClone(doc) as never).validate();
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  return problems.concat(typeProblems(manifests.filter(({ doc }) => doc.kind in KINDS)));
}

/** Type-checks each manifest as a literal of its kind's interface; one line per manifest, so errors map back. */
function typeProblems(manifests: { name: string; doc: Manifest }[]): string[] {
  // Inside node_modules, so that the compiler finds kubernetes-models from there.
  const dir = join(ROOT, "node_modules", ".cache", `schema-check-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  try {
    const kinds = [...new Set(manifests.map(({ doc }) => doc.kind as string))];
    const imports = kinds.map((kind) => `import type { I${kind} } from "${moduleOf(kind)}";`);
    const lines = manifests.map(({ doc }, i) => `export const manifest${i}: I${doc.kind} = ${JSON.stringify(doc)};`);
    writeFileSync(join(dir, "manifests.ts"), [...imports, ...lines].join("\n"));
    const tsconfig = {
      compilerOptions: { strict: true, noEmit: true, module: "Preserve", moduleResolution: "bundler", skipLibCheck: true, types: [] },
      files: ["manifests.ts"],
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
    const tsc = Bun.spawnSync([join(ROOT, "node_modules", ".bin", "tsc"), "-p", dir], { stdout: "pipe", stderr: "pipe" });
    const output = `${tsc.stdout.toString()}${tsc.stderr.toString()}`;
    return output
      .split("\n")
      .filter((line) => line.includes("error TS"))
      .map((line) => {
        const row = Number(/manifests\.ts\((\d+),/.exec(line)?.[1]) - imports.length - 1;
        return `${manifests[row]?.name ?? "manifests"}: ${line.slice(line.indexOf("error TS"))}`;
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Applies a strategic merge patch as kubectl does for what these patches touch: maps merge, containers merge by name. */
export function strategicMerge(base: Manifest, patch: Manifest): Manifest {
  if (Array.isArray(base) && Array.isArray(patch) && base.every((item) => typeof item?.name === "string")) {
    return base.map((item) => {
      const change = patch.find((p) => p.name === item.name);
      return change ? strategicMerge(item, change) : item;
    });
  }
  if (typeof base !== "object" || base === null || typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const merged: Manifest = { ...base };
  for (const [key, value] of Object.entries(patch)) merged[key] = key in base ? strategicMerge(base[key], value) : value;
  return merged;
}
