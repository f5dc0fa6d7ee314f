import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { IMMUTABLE_MESSAGE } from "./rules.ts";
import { type LoraFineTuneSpec, LoraFineTuneSpecSchema } from "./spec.ts";
import { LoraFineTuneStatusSchema } from "./status.ts";

export const GROUP = "loraforge.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "LoraFineTune";
export const PLURAL = "lorafinetunes";
export const SINGULAR = "lorafinetune";
export const SHORT_NAMES = ["lft"] as const;
export const CATEGORIES = ["loraforge", "ml"] as const;

const MetadataSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(
        /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
        "must be a DNS label (lower case letters, digits, '-')",
      ),
    namespace: z.string().max(63).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .passthrough();

export const LoraFineTuneSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(KIND),
    metadata: MetadataSchema,
    spec: LoraFineTuneSpecSchema,
    status: LoraFineTuneStatusSchema.optional(),
  })
  .strict();

export type LoraFineTune = z.output<typeof LoraFineTuneSchema>;
export type LoraFineTuneInput = z.input<typeof LoraFineTuneSchema>;

/** A validation problem with the dotted path of the field it is about. */
export interface SpecProblem {
  path: string;
  message: string;
}

export class InvalidLoraFineTuneError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly SpecProblem[],
  ) {
    super(
      `${source}: invalid LoraFineTune:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`,
    );
    this.name = "InvalidLoraFineTuneError";
  }
}

function problemsOf(error: z.ZodError): SpecProblem[] {
  return error.issues.map((i) => ({
    path: i.path.map(String).join(".") || "(root)",
    message: i.message,
  }));
}

export type ParseResult =
  | { ok: true; value: LoraFineTune }
  | { ok: false; problems: SpecProblem[] };

/** Validates a manifest object and applies the defaults the API server would apply. */
export function safeParseLoraFineTune(manifest: unknown): ParseResult {
  const r = LoraFineTuneSchema.safeParse(manifest);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: problemsOf(r.error) };
}

/** Like safeParseLoraFineTune, but throws InvalidLoraFineTuneError naming `source`. */
export function parseLoraFineTune(manifest: unknown, source = "manifest"): LoraFineTune {
  const r = safeParseLoraFineTune(manifest);
  if (!r.ok) throw new InvalidLoraFineTuneError(source, r.problems);
  return r.value;
}

/** Reads a YAML or JSON file holding exactly one LoraFineTune. */
export function readLoraFineTuneFile(path: string): LoraFineTune {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new InvalidLoraFineTuneError(path, [{ path: "(file)", message: (e as Error).message }]);
  }
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) {
    throw new InvalidLoraFineTuneError(path, [
      { path: "(file)", message: `expected exactly one YAML document, found ${docs.length}` },
    ]);
  }
  const doc = docs[0];
  if (doc && doc.errors.length > 0) {
    const err = doc.errors[0];
    const line = err?.linePos?.[0]?.line;
    throw new InvalidLoraFineTuneError(path, [
      { path: line ? `(line ${line})` : "(file)", message: err?.message ?? "YAML syntax error" },
    ]);
  }
  return parseLoraFineTune(doc?.toJS(), path);
}

/**
 * The API server's transition rules, for callers that hold both versions: everything
 * in the spec is immutable except `suspend`.
 */
export function validateSpecUpdate(
  oldSpec: LoraFineTuneSpec,
  newSpec: LoraFineTuneSpec,
): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const keys = new Set([...Object.keys(oldSpec), ...Object.keys(newSpec)]);
  for (const key of keys) {
    if (key === "suspend") continue;
    const a = JSON.stringify((oldSpec as Record<string, unknown>)[key]);
    const b = JSON.stringify((newSpec as Record<string, unknown>)[key]);
    if (a !== b) problems.push({ path: `spec.${key}`, message: IMMUTABLE_MESSAGE });
  }
  return problems;
}
