/** Kubernetes manifests in: files, directories and standard input, YAML or JSON, every document and List item. */
import { nodeFs } from "../footprint.ts";

/** One Kubernetes object and where it came from. */
export interface ManifestObject {
  source: string;
  object: Record<string, unknown>;
}

/** Input that cannot be read or parsed: one line naming the file (and the line, where the parser says). */
export class ManifestError extends Error {
  override name = "ManifestError";
}

const MANIFEST_FILE = /\.(ya?ml|json)$/;

/** The manifest files a path names: the file itself, or every YAML and JSON file below a directory. */
function filesOf(path: string): string[] {
  const fs = nodeFs();
  let stats: import("node:fs").Stats;
  try {
    stats = fs.statSync(path);
  } catch (error) {
    throw new ManifestError(`${path}: cannot be read (${(error as { code?: string }).code ?? "error"})`);
  }
  if (!stats.isDirectory()) return [path];
  return fs
    .readdirSync(path, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((entry) => {
      const child = `${path.replace(/\/$/, "")}/${entry.name}`;
      return entry.isDirectory() ? filesOf(child) : MANIFEST_FILE.test(entry.name) ? [child] : [];
    });
}

/** The documents of one text: JSON, or YAML with any number of `---`-separated documents, each parsed on its own. */
function documentsOf(text: string, source: string): unknown[] {
  if (source.endsWith(".json")) {
    try {
      return [JSON.parse(text)];
    } catch (error) {
      throw new ManifestError(`${source}:1: not valid JSON: ${(error as Error).message}`);
    }
  }
  const documents: unknown[] = [];
  let line = 1;
  for (const part of text.split(/^---[ \t]*$/m)) {
    // The parser names no position: the document's first line is where to look.
    const start = line + (part.startsWith("\n") ? 1 : 0);
    line += part.split("\n").length - 1;
    if (part.trim() === "") continue;
    try {
      documents.push(Bun.YAML.parse(part));
    } catch (error) {
      throw new ManifestError(`${source}:${start}: not valid YAML in the document starting here: ${(error as Error).message}`);
    }
  }
  return documents;
}

/** Every object of the documents, a `List`'s items in place of the List. */
function objectsOf(documents: unknown[], source: string): ManifestObject[] {
  return documents.flatMap((document): ManifestObject[] => {
    if (typeof document !== "object" || document === null || Array.isArray(document)) return [];
    const object = document as Record<string, unknown>;
    if (typeof object.kind === "string" && object.kind.endsWith("List") && Array.isArray(object.items))
      return objectsOf(object.items, source);
    return [{ source, object }];
  });
}

/** Reads every path (`-` is standard input) into Kubernetes objects. */
export async function readManifests(paths: string[]): Promise<ManifestObject[]> {
  const objects: ManifestObject[] = [];
  for (const path of paths) {
    if (path === "-") {
      objects.push(...objectsOf(documentsOf(await Bun.stdin.text(), "<stdin>"), "<stdin>"));
      continue;
    }
    for (const file of filesOf(path)) {
      const text = nodeFs().readFileSync(file, "utf8");
      objects.push(...objectsOf(documentsOf(text, file), file));
    }
  }
  return objects;
}
