import { z } from "zod";
import type { Problem } from "../dataset/problems.ts";
import { ProblemsError } from "../errors.ts";

/**
 * A prompt template in alpaca-lora's JSON form. `prompt_input` is used when the record has a
 * non-empty input, `prompt_no_input` otherwise; the response is appended right after the prompt;
 * `response_split` is the marker that separates the response when reading a generation back.
 */
export const PromptTemplateSchema = z
  .object({
    description: z.string().optional(),
    prompt_input: z.string().min(1),
    prompt_no_input: z.string().min(1),
    response_split: z.string().min(1),
  })
  .strict();

export type PromptTemplate = z.infer<typeof PromptTemplateSchema>;

/** alpaca-lora templates/alpaca.json, character for character. */
export const ALPACA: PromptTemplate = {
  description: "Template used by Alpaca-LoRA.",
  prompt_input:
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
  prompt_no_input:
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n",
  response_split: "### Response:",
};

/** alpaca-lora templates/alpaca_short.json. */
export const ALPACA_SHORT: PromptTemplate = {
  description: "A shorter template to experiment with.",
  prompt_input: "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
  prompt_no_input: "### Instruction:\n{instruction}\n\n### Response:\n",
  response_split: "### Response:",
};

export const BUILTIN_TEMPLATES: Record<"alpaca" | "alpaca_short", PromptTemplate> = {
  alpaca: ALPACA,
  alpaca_short: ALPACA_SHORT,
};

type Piece = { text: string } | { field: "instruction" | "input" };

/**
 * A template compiled to pieces, filled in one pass the way Python's str.format does it:
 * `{instruction}` and `{input}` are replaced, `{{` and `}}` are literal braces, and text that
 * comes from the record is never scanned for placeholders again.
 */
export class CompiledTemplate {
  private constructor(
    readonly source: PromptTemplate,
    private readonly withInput: Piece[],
    private readonly noInput: Piece[],
  ) {}

  static compile(t: PromptTemplate, file = "<template>"): CompiledTemplate {
    const problems: Problem[] = [];
    const withInput = parsePieces(t.prompt_input, "prompt_input", file, problems);
    const noInput = parsePieces(t.prompt_no_input, "prompt_no_input", file, problems);
    if (!problems.length) {
      if (!withInput.some((p) => "field" in p && p.field === "instruction"))
        problems.push({
          file,
          field: "prompt_input",
          message: "has no {instruction}",
          severity: "error",
        });
      if (!withInput.some((p) => "field" in p && p.field === "input"))
        problems.push({
          file,
          field: "prompt_input",
          message: "has no {input}",
          severity: "error",
        });
      if (!noInput.some((p) => "field" in p && p.field === "instruction"))
        problems.push({
          file,
          field: "prompt_no_input",
          message: "has no {instruction}",
          severity: "error",
        });
      if (noInput.some((p) => "field" in p && p.field === "input"))
        problems.push({
          file,
          field: "prompt_no_input",
          message: "uses {input}, but it is only used for records without input",
          severity: "error",
        });
    }
    if (problems.length) throw new TemplateError(problems);
    return new CompiledTemplate(t, withInput, noInput);
  }

  /** alpaca-lora Prompter.generate_prompt: the prompt, plus the response when given. */
  render(instruction: string, input: string, output?: string): string {
    const pieces = input ? this.withInput : this.noInput;
    let s = "";
    for (const p of pieces) {
      if ("text" in p) s += p.text;
      else s += p.field === "instruction" ? instruction : input;
    }
    return output ? s + output : s;
  }
}

export class TemplateError extends ProblemsError {
  constructor(problems: Problem[]) {
    super(problems.map((p) => `${p.file}: ${p.field ?? ""}: ${p.message}`).join("; "), problems);
    this.name = "TemplateError";
  }
}

function parsePieces(template: string, field: string, file: string, problems: Problem[]): Piece[] {
  const pieces: Piece[] = [];
  let literal = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === "{" && template[i + 1] === "{") {
      literal += "{";
      i++;
    } else if (c === "}" && template[i + 1] === "}") {
      literal += "}";
      i++;
    } else if (c === "{") {
      const close = template.indexOf("}", i);
      const name = close === -1 ? "" : template.slice(i + 1, close);
      if (name !== "instruction" && name !== "input") {
        problems.push({
          file,
          field,
          message:
            close === -1
              ? `unclosed '{' at character ${i} (write '{{' for a literal brace)`
              : `unknown placeholder {${name}} (only {instruction} and {input}; write '{{' for a literal brace)`,
          severity: "error",
        });
        return pieces;
      }
      if (literal) pieces.push({ text: literal });
      literal = "";
      pieces.push({ field: name });
      i = close;
    } else if (c === "}") {
      problems.push({
        file,
        field,
        message: `single '}' at character ${i} (write '}}' for a literal brace)`,
        severity: "error",
      });
      return pieces;
    } else literal += c;
  }
  if (literal) pieces.push({ text: literal });
  return pieces;
}

/** Reads a custom template file (alpaca-lora's JSON template format). */
export function parseTemplateFile(text: string, file: string): CompiledTemplate {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TemplateError([
      {
        file,
        message: `invalid JSON: ${e instanceof Error ? e.message : String(e)}`,
        severity: "error",
      },
    ]);
  }
  const parsed = PromptTemplateSchema.safeParse(json);
  if (!parsed.success) {
    throw new TemplateError(
      parsed.error.issues.map((i) => ({
        file,
        field: i.path.map(String).join(".") || undefined,
        message: i.message,
        severity: "error" as const,
      })) as Problem[],
    );
  }
  return CompiledTemplate.compile(parsed.data, file);
}
