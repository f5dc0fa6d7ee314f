/**
 * Reads a LoraFineTune spec file for the cli. Valid files read exactly as `readLoraFineTuneFile`
 * reads them; an invalid one gets, per problem, the YAML line of the field and, for a key the API
 * does not know, the nearest key it does ("trainig" -> training).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import {
  InvalidLoraFineTuneError,
  type LoraFineTune,
  LoraFineTuneSchema,
  readLoraFineTuneFile,
} from "@loraforge/crds";
import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseAllDocuments } from "yaml";
import type { z } from "zod";
import { CliError } from "../errors.ts";
import { MissingInputError } from "./paths.ts";
import { didYouMean } from "./suggest.ts";

export class SpecFileError extends CliError {
  constructor(
    readonly file: string,
    readonly problems: readonly { line: number | null; path: string; message: string }[],
  ) {
    super(
      `${file}: invalid LoraFineTune:\n${problems.map((p) => `  ${p.line === null ? file : `${file}:${p.line}`}: ${p.path}: ${p.message}`).join("\n")}`,
    );
    this.name = "SpecFileError";
  }
}

export function readSpecFile(file: string): LoraFineTune {
  if (!existsSync(file)) throw new MissingInputError(`spec ${file}: no such file`);
  if (statSync(file).isDirectory())
    throw new MissingInputError(`spec ${file}: is a directory, not a spec file`);
  try {
    return readLoraFineTuneFile(file);
  } catch (e) {
    if (!(e instanceof InvalidLoraFineTuneError)) throw e;
    const located = locateProblems(file, readFileSync(file, "utf8"));
    throw located ?? e;
  }
}

/** The schema's problems with YAML lines, or undefined when the file is not one valid document. */
function locateProblems(file: string, text: string): SpecFileError | undefined {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines }).filter((d) => d.contents !== null);
  const doc = docs[0];
  if (docs.length !== 1 || !doc || doc.errors.length > 0) return undefined;
  const r = LoraFineTuneSchema.safeParse(doc.toJS());
  if (r.success) return undefined;
  const lineOf = (path: readonly PropertyKey[], key?: string): number | null => {
    // the deepest node of `path` that the file has (a missing field points at its parent)
    let node: unknown = doc.contents;
    let at: unknown = node;
    for (const step of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === String(step));
        if (!pair) break;
        at = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof step === "number") {
        node = node.items[step];
        at = node;
      } else break;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
      if (pair && isNode(pair.key)) at = pair.key;
    }
    const offset = isNode(at) ? at.range?.[0] : undefined;
    return offset === undefined ? null : lines.linePos(offset).line;
  };
  const problems = r.error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join(".") || "(root)";
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(LoraFineTuneSchema, issue.path);
      return issue.keys.map((k) => ({
        line: lineOf(issue.path, k),
        path: path === "(root)" ? k : `${path}.${k}`,
        message: `unknown key${didYouMean(k, known)}${known.length > 0 && !closestShown(k, known) ? ` (known: ${known.join(", ")})` : ""}`,
      }));
    }
    return [{ line: lineOf(issue.path), path, message: issue.message }];
  });
  return new SpecFileError(file, problems);
}

function closestShown(key: string, known: string[]): boolean {
  return didYouMean(key, known) !== "";
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The keys the schema knows for the object at `path` (wrappers, pipes, unions looked through). */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const objects = (s: z.ZodType, depth = 0): Record<string, z.ZodType>[] => {
    if (depth > 20) return [];
    const d = defOf(s);
    if (d.type === "object" && d.shape) return [d.shape];
    if (d.innerType) return objects(d.innerType, depth + 1);
    if (d.type === "pipe" && d.in) return objects(d.in, depth + 1);
    if (d.type === "lazy" && d.getter) return objects(d.getter(), depth + 1);
    if (d.type === "union" && d.options) return d.options.flatMap((o) => objects(o, depth + 1));
    return [];
  };
  const elementOf = (s: z.ZodType, depth = 0): z.ZodType | undefined => {
    if (depth > 20) return undefined;
    const d = defOf(s);
    if (d.type === "array") return d.element;
    if (d.innerType) return elementOf(d.innerType, depth + 1);
    if (d.type === "pipe" && d.in) return elementOf(d.in, depth + 1);
    return undefined;
  };
  let current: z.ZodType[] = [schema];
  for (const step of path) {
    current =
      typeof step === "number"
        ? current.flatMap((s) => elementOf(s) ?? [])
        : current.flatMap((s) => objects(s).flatMap((shape) => shape[String(step)] ?? []));
  }
  return [...new Set(current.flatMap((s) => objects(s).flatMap((shape) => Object.keys(shape))))];
}
