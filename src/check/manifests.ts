/**
 * Kubernetes manifests in: files, directories and standard input, YAML or JSON, every document and List item. The
 * input is bounded (size, nesting) and only regular files are read from directories, so no input hangs or crashes
 * the check.
 */
import { nodeFs } from "../footprint.ts";

/** One Kubernetes object and where it came from. */
export interface ManifestObject {
  source: string;
  object: Record<string, unknown>;
}

/** What the input held. */
export interface Manifests {
  objects: ManifestObject[];
  files: number;
  documents: number;
}

/** Input that cannot be read or parsed: one line naming the entry (and the line, where the parser says). */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/** All the input read, files and standard input together: more than any set of manifests, less than a CI runner's memory. */
export const MAX_INPUT_BYTES = 32 * 2 ** 20;
/** Documents in all the input, empty ones too: more than any set of manifests, each parsed on its own. */
export const MAX_DOCUMENTS = 100_000;
/** Maps and lists inside one another: deeper than any Kubernetes object, and within the YAML parser's stack. */
export const MAX_NESTING = 100;

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** What a path is that is neither a regular file nor a directory, for the line that refuses it. */
function typeOf(stats: import("node:fs").Stats): string {
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isSocket()) return "a socket";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  return "not a regular file";
}

/** The entry a path names, followed through links; a link to nothing or a loop of links is refused, naming it. */
function statOf(path: string): import("node:fs").Stats {
  try {
    return nodeFs().statSync(path);
  } catch (error) {
    const code = (error as { code?: string }).code ?? "error";
    const why = { ENOENT: "ENOENT: no such file, or a link to nothing", ELOOP: "ELOOP: a loop of links" }[code] ?? code;
    throw new ManifestError(`${path}: cannot be read (${why})`);
  }
}

/**
 * The manifest files below a directory: every YAML and JSON file, in name order, each directory once (a link back
 * up is not followed again). An entry named as a manifest that is not a regular file is refused, naming it.
 */
function filesBelow(directory: string, seen: Set<string>): string[] {
  const stats = statOf(directory);
  if (seen.has(`${stats.dev}:${stats.ino}`)) return [];
  seen.add(`${stats.dev}:${stats.ino}`);
  let entries: string[];
  try {
    entries = nodeFs().readdirSync(directory).sort();
  } catch (error) {
    throw new ManifestError(`${directory}: cannot be read (${(error as { code?: string }).code ?? "error"})`);
  }
  return entries.flatMap((name) => {
    const child = `${directory.replace(/\/$/, "")}/${name}`;
    const manifest = MANIFEST_FILE.test(name);
    let entry: import("node:fs").Stats;
    try {
      entry = statOf(child);
    } catch (error) {
      if (manifest) throw error;
      return [];
    }
    if (entry.isDirectory()) return filesBelow(child, seen);
    if (!manifest) return [];
    if (!entry.isFile()) throw new ManifestError(`${child}: ${typeOf(entry)}, not read: only regular files are read from a directory`);
    return [child];
  });
}

/** Counts what is read against MAX_INPUT_BYTES and MAX_DOCUMENTS. */
class InputBudget {
  private left = MAX_INPUT_BYTES;
  private documentsLeft = MAX_DOCUMENTS;
  /** Counts one more document against MAX_DOCUMENTS. */
  document(source: string): void {
    if (--this.documentsLeft < 0)
      throw new ManifestError(`${source}: more than ${MAX_DOCUMENTS.toLocaleString("en")} documents in the input: not read`);
  }
  take(bytes: number, source: string): void {
    this.left -= bytes;
    if (this.left < 0)
      throw new ManifestError(
        `${source}: the input is larger than ${MAX_INPUT_BYTES / 2 ** 20} MiB, more than any set of manifests: not read`,
      );
  }
}

const decode = (chunks: Uint8Array[]) => new TextDecoder().decode(Buffer.concat(chunks)).replace(/^\uFEFF/, "");

/** A file (or a pipe named on the command line, as `<(helm template …)` gives), read within the budget. */
function readFile(path: string, budget: InputBudget): string {
  const fs = nodeFs();
  const chunks: Uint8Array[] = [];
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "r");
    for (;;) {
      const chunk = Buffer.allocUnsafe(1 << 16);
      const read = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      budget.take(read, path);
      chunks.push(chunk.subarray(0, read));
    }
  } catch (error) {
    if (error instanceof ManifestError) throw error;
    throw new ManifestError(`${path}: cannot be read (${(error as { code?: string }).code ?? "error"})`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return decode(chunks);
}

/** Standard input, read within the budget: past it, reading stops. */
async function readStdin(budget: InputBudget): Promise<string> {
  const reader = Bun.stdin.stream().getReader();
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      budget.take(value.byteLength, "<stdin>");
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return decode(chunks);
}

/** Refuses a document nested deeper than MAX_NESTING (each node once, so shared aliases cost nothing more). */
function checkNesting(document: unknown, where: string): void {
  const stack: [unknown, number][] = [[document, 1]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== "object" || node === null || seen.has(node)) continue;
    if (depth > MAX_NESTING)
      throw new ManifestError(`${where}: nested more than ${MAX_NESTING} levels deep, deeper than any Kubernetes object`);
    seen.add(node);
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
}

// A document starts at `---` followed by a space, a tab or the line's end (a comment, a tag such as `!!map`, or
// content may follow); `...` ends one; directives (`%YAML 1.2`), comments and blank lines may come before either.
const DOCUMENT_START = /^---(?:\s|$)/;
const DOCUMENT_END = /^\.\.\.(?:\s|$)/;
const PREAMBLE = /^(?:%|\s*(?:#|$))/;

/** The YAML documents of a text, each with the line it starts on, split as YAML's document markers split them. */
function splitYaml(text: string, source: string, budget: InputBudget): { text: string; line: number }[] {
  const parts: { text: string; line: number }[] = [];
  let from = 0;
  let start = 1;
  let begun = false;
  const close = (to: number, next: number) => {
    if (to > from) {
      budget.document(source);
      parts.push({ text: text.slice(from, to), line: start });
    }
    from = to;
    start = next;
    begun = false;
  };
  for (let at = 0, number = 1; at < text.length; number++) {
    const end = text.indexOf("\n", at);
    const next = end < 0 ? text.length : end + 1;
    const line = text.slice(at, next);
    if (DOCUMENT_START.test(line) && begun) close(at, number);
    if (DOCUMENT_END.test(line)) close(next, number + 1);
    else if (DOCUMENT_START.test(line) || !PREAMBLE.test(line)) begun = true;
    at = next;
  }
  close(text.length, 0);
  return parts;
}

/** The documents of one text: JSON, or YAML with any number of documents, each parsed on its own. */
function documentsOf(text: string, source: string, budget: InputBudget): unknown[] {
  if (/\.json$/i.test(source)) {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw new ManifestError(`${source}:1: not valid JSON: ${(error as Error).message}`);
    }
    checkNesting(document, `${source}:1`);
    budget.document(source);
    return [document];
  }
  const documents: unknown[] = [];
  for (const part of splitYaml(text, source, budget)) {
    let document: unknown;
    try {
      document = Bun.YAML.parse(part.text);
    } catch (error) {
      // The parser names no position: the document's first line is where to look.
      const why = error instanceof RangeError ? `nested more than the parser can follow` : (error as Error).message;
      throw new ManifestError(`${source}:${part.line}: not valid YAML in the document starting here: ${why}`);
    }
    if (document === null || document === undefined) continue;
    checkNesting(document, `${source}:${part.line}`);
    documents.push(document);
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
export async function readManifests(paths: string[]): Promise<Manifests> {
  const budget = new InputBudget();
  const input: Manifests = { objects: [], files: 0, documents: 0 };
  const add = (text: string, source: string) => {
    const documents = documentsOf(text, source, budget);
    input.files++;
    input.documents += documents.length;
    for (const object of objectsOf(documents, source)) input.objects.push(object);
  };
  const seen = new Set<string>();
  for (const path of paths) {
    if (path === "-") {
      // Standard input redirected from a file named too is that file.
      const stdin = nodeFs().fstatSync(0);
      if (stdin.isFile() && seen.has(`${stdin.dev}:${stdin.ino}`)) continue;
      seen.add(`${stdin.dev}:${stdin.ino}`);
      add(await readStdin(budget), "<stdin>");
      continue;
    }
    const stats = statOf(path);
    if (stats.isSocket()) throw new ManifestError(`${path}: a socket, not read`);
    for (const file of stats.isDirectory() ? filesBelow(path, seen) : [path]) {
      // A regular file named twice, or named and found in a named directory, is read once; a pipe is read as named.
      const { dev, ino } = file === path ? stats : statOf(file);
      if (stats.isDirectory() || stats.isFile()) {
        if (seen.has(`${dev}:${ino}`)) continue;
        seen.add(`${dev}:${ino}`);
      }
      add(readFile(file, budget), file);
    }
  }
  return input;
}
