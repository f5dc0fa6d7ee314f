import type { z } from "zod";

/**
 * A validation rule written once and enforced twice: by zod (where users run
 * `loraforge train` or the Action builds a manifest) and by the API server (CEL in
 * the generated CRD). Keep `cel` and `holds` saying the same thing; the apiserver
 * table test checks that they agree.
 */
export interface Rule<T> {
  /** CEL expression with `self` bound to the value; true means valid. */
  cel: string;
  /** Shown to the user by both zod and the API server. */
  message: string;
  /** The field the message is about, relative to the value (absent: the value itself). */
  field?: readonly string[];
  /** The same predicate in TypeScript, on the parsed (defaulted) value. */
  holds: (self: T) => boolean;
}

interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

export const IMMUTABLE_MESSAGE = "is immutable once the run is created; create a new LoraFineTune";

interface Annotation<T> {
  description: string;
  rules?: readonly Rule<T>[];
  /**
   * A CEL transition rule (`self == oldSelf`): the API server refuses changes after
   * creation. zod cannot see the old object; `validateSpecUpdate` does the same check.
   */
  immutable?: boolean;
}

/** Describes a schema and attaches its rules: a zod refinement plus their CEL form. */
export function annotate<S extends z.ZodType>(schema: S, a: Annotation<z.output<S>>): S {
  const rules = a.rules ?? [];
  const validations: CelValidation[] = rules.map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.field && r.field.length > 0 ? { fieldPath: `.${r.field.join(".")}` } : {}),
  }));
  if (a.immutable) validations.push({ rule: "self == oldSelf", message: IMMUTABLE_MESSAGE });
  let out: S = schema;
  if (rules.length > 0) {
    out = schema.superRefine((value, ctx) => {
      for (const r of rules) {
        if (!r.holds(value)) {
          ctx.addIssue({ code: "custom", message: r.message, path: [...(r.field ?? [])] });
        }
      }
    }) as S;
  }
  // .meta() replaces metadata: keep validations the schema already carries.
  const existing = (schema.meta() ?? {}) as Record<string, unknown>;
  const inherited = (existing["x-kubernetes-validations"] ?? []) as CelValidation[];
  const meta: Record<string, unknown> = { ...existing, description: a.description };
  const all = [...inherited, ...validations];
  if (all.length > 0) meta["x-kubernetes-validations"] = all;
  return out.meta(meta) as S;
}
