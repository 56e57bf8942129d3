/** Every Kubernetes manifest in examples/, and the Contour DaemonSet as the drop-in patch leaves it, against the API's schemas. */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isKubernetesObject, type Manifest, schemaProblems, strategicMerge } from "./support/kubernetes-schema.ts";

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;
const yamlFiles = (dir: string): string[] =>
  readdirSync(join(EXAMPLES, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? yamlFiles(join(dir, entry.name)) : entry.name.endsWith(".yaml") ? [join(dir, entry.name)] : [],
  );
const load = (file: string): Manifest[] => [Bun.YAML.parse(readFileSync(join(EXAMPLES, file), "utf8"))].flat() as Manifest[];

// Patches are partial objects by design: they are checked as the whole objects they produce.
const patches = new Set(
  yamlFiles(".")
    .filter((file) => file.endsWith("kustomization.yaml"))
    .flatMap((file) => (load(file)[0]?.patches ?? []).map((patch: Manifest) => join(file, "..", patch.path))),
);
const manifests = yamlFiles(".")
  .filter((file) => !patches.has(file))
  .flatMap((file) =>
    load(file)
      .filter(isKubernetesObject)
      .map((doc, i) => ({ name: `${file}#${i}`, doc })),
  );
const [contourBase] = load("contour/envoy-daemonset.yaml");
const [contourPatch] = load("contour/shutdown-manager-image.yaml");
const patchedContour = strategicMerge(contourBase as Manifest, contourPatch as Manifest);

describe("schemas", () => {
  test("every example is a valid Kubernetes object, and the patched Contour DaemonSet too", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    expect(schemaProblems([...manifests, { name: "contour patched", doc: patchedContour }])).toEqual([]);
  });

  test("a misspelled field, a wrong type and a missing required field are each caught", () => {
    const doc = manifests.find(({ name }) => name.startsWith("envoy-deployment-httpget.yaml"))?.doc as Manifest;
    const misspelled = structuredClone(doc);
    misspelled.spec.template.spec.containers[0].imagee = misspelled.spec.template.spec.containers[0].image;
    const wrongType = structuredClone(doc);
    wrongType.spec.replicas = "three";
    const missing = structuredClone(doc);
    delete missing.spec.template.spec.containers[1].name;
    const problems = schemaProblems([
      { name: "misspelled", doc: misspelled },
      { name: "wrong type", doc: wrongType },
      { name: "missing", doc: missing },
    ]);
    expect(problems.filter((p) => p.startsWith("misspelled:")).join()).toMatch(/imagee.*does not exist in type 'IContainer'/);
    expect(problems.filter((p) => p.startsWith("wrong type:")).join()).toContain("replicas must be integer");
    expect(problems.filter((p) => p.startsWith("missing:")).join()).toContain("must have required property name");
  });
});

describe("the Contour drop-in patch", () => {
  test("changes the shutdown manager's image and nothing else", () => {
    const containers = (d: Manifest) => d.spec.template.spec.containers as Manifest[];
    const before = containers(contourBase as Manifest).find((c) => c.name === "shutdown-manager");
    const after = containers(patchedContour).find((c) => c.name === "shutdown-manager");
    expect(after?.image).toBe("envoy-shutdown-manager:0.1.0");
    expect({ ...after, image: before?.image } as Manifest).toEqual(before as Manifest);
    expect({ ...patchedContour, spec: undefined }).toEqual({ ...(contourBase as Manifest), spec: undefined });
    expect(containers(patchedContour).find((c) => c.name === "envoy")).toEqual(
      containers(contourBase as Manifest).find((c) => c.name === "envoy"),
    );
  });
});
