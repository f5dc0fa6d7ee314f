// The action's inputs (action.yml), parsed once at the boundary. An invalid input is an error
// that names the input.

import { z } from "zod";
import { DurationSchema } from "./duration.ts";

export const MODES = ["validate", "submit", "report", "all"] as const;
export type Mode = (typeof MODES)[number];

const bool = (name: string) =>
  z.string().transform((v, ctx) => {
    const t = v.trim().toLowerCase();
    if (t === "true") return true;
    if (t === "false") return false;
    ctx.addIssue({ code: "custom", message: `${name} must be true or false, got "${v}"` });
    return z.NEVER;
  });

const list = z.string().transform((v) =>
  v
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith("#")),
);

const optionalPositiveInt = z.string().transform((v, ctx) => {
  const t = v.trim();
  if (t === "") return undefined;
  if (!/^[1-9]\d*$/.test(t)) {
    ctx.addIssue({ code: "custom", message: `must be a pull request number, got "${v}"` });
    return z.NEVER;
  }
  return Number(t);
});

const optional = z.string().transform((v) => (v.trim() === "" ? undefined : v.trim()));

export const InputsSchema = z.object({
  mode: z.enum(MODES, { error: `must be one of ${MODES.join(", ")}` }),
  datasets: list.refine((l) => l.length > 0, "needs at least one glob"),
  spec: z.string().trim().min(1, "needs the path of the base branch's LoraFineTune spec"),
  namespace: optional,
  kubeconfig: z.string().transform((v) => (v.trim() === "" ? undefined : v)),
  "github-token": z.string().trim().min(1, "is empty (pass the github.token expression)"),
  timeout: DurationSchema,
  "poll-interval": DurationSchema.refine((s) => s >= 1, "must be at least 1s"),
  "comment-marker": z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, "use 1-64 letters, digits, '.', '_' or '-'"),
  comment: bool("comment"),
  "loss-chart": bool("loss-chart"),
  "pull-request": optionalPositiveInt,
  "trusted-label": optional,
  "allow-fork-submit": bool("allow-fork-submit"),
  "comment-author": optional,
});

export type Inputs = z.output<typeof InputsSchema>;

/** Defaults, the same as action.yml's (so tests and the bundle agree). */
export const INPUT_DEFAULTS: Record<keyof z.input<typeof InputsSchema>, string> = {
  mode: "all",
  datasets: "datasets/**/*.json\ndatasets/**/*.jsonl",
  spec: ".loraforge/finetune.yaml",
  namespace: "",
  kubeconfig: "",
  "github-token": "",
  timeout: "5h",
  "poll-interval": "30s",
  "comment-marker": "loraforge",
  comment: "true",
  "loss-chart": "true",
  "pull-request": "",
  "trusted-label": "loraforge/train",
  "allow-fork-submit": "false",
  "comment-author": "",
};

export class InputError extends Error {
  override name = "InputError";
}

/** Reads every input through `get` (empty string when unset; then the default applies). */
export function readInputs(get: (name: string) => string): Inputs {
  const raw: Record<string, string> = {};
  for (const [name, fallback] of Object.entries(INPUT_DEFAULTS)) {
    const value = get(name);
    raw[name] = value === "" ? fallback : value;
  }
  const parsed = InputsSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `input "${i.path.join(".")}" ${i.message}`);
    throw new InputError(lines.join("\n"));
  }
  return parsed.data;
}
