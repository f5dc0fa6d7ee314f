/**
 * Which records an evaluation runs on, and their token ids. The validation split is the one
 * training used (same validation, same seeded split: prepare/prepare.ts), so the examples were
 * never trained on; an eval file is taken whole.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { DatasetFormat } from "../dataset/parse.ts";
import { DatasetError } from "../dataset/problems.ts";
import type { DatasetRecord } from "../dataset/record.ts";
import { splitTrainVal } from "../dataset/split.ts";
import { validateBytes } from "../dataset/validate.ts";
import { buildExample } from "../prepare/example.ts";
import type { CompiledTemplate } from "../prompt/templates.ts";
import type { ModelTokenizer } from "../tokenizer/tokenizer.ts";

export interface EvalRecords {
  file: string;
  /** sha256 of the dataset file's bytes. */
  sha256: string;
  split: "validation" | "file";
  /** Records in the split (before `samples` takes the first ones). */
  available: number;
  records: DatasetRecord[];
}

export interface RecordSource {
  datasetFile: string;
  format?: DatasetFormat;
  /** With valSetSize and seed: the validation split of datasetFile; without: the whole file. */
  split?: { valSetSize: number; seed: number };
  /** Take at most this many records (the first ones of the split). */
  samples: number;
}

export async function loadEvalRecords(src: RecordSource): Promise<EvalRecords> {
  const bytes = await readFile(src.datasetFile).catch((e: Error) => {
    throw new DatasetError([
      { file: src.datasetFile, message: `cannot read: ${e.message}`, severity: "error" },
    ]);
  });
  const report = validateBytes(bytes, src.datasetFile, {
    ...(src.format ? { format: src.format } : {}),
    ...(src.split ? { split: src.split } : {}),
  });
  if (!report.ok) throw new DatasetError(report.problems);
  const pool = src.split
    ? splitTrainVal(report.records, src.split.valSetSize, src.split.seed).val
    : report.records;
  if (pool.length === 0)
    throw new DatasetError([
      {
        file: src.datasetFile,
        message: src.split
          ? `the validation split is empty (valSetSize ${src.split.valSetSize} of ${report.records.length} records): nothing to evaluate on; pass an eval file`
          : "no records to evaluate on",
        severity: "error",
      },
    ]);
  return {
    file: src.datasetFile,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    split: src.split ? "validation" : "file",
    available: pool.length,
    records: pool.slice(0, src.samples),
  };
}

export interface EvalExample {
  /** The record's 0-based position in its file, as a string (the core's sequence id). */
  id: string;
  line: number;
  instruction: string;
  input: string;
  reference: string;
  /** Generation prompt: the template up to and including the response marker, BOS first. */
  prompt: number[];
  /** Scoring: the training example's prompt part and its target (response, EOS) after the cutoff. */
  scorePrompt: number[];
  scoreTarget: number[];
}

/**
 * Token ids for generation and scoring. Scoring sees exactly what training saw (buildExample with
 * the prompt masked); an example whose prompt alone fills the cutoff has no target and is left
 * out (counted in `skipped`).
 */
export function buildEvalExamples(
  records: readonly DatasetRecord[],
  template: CompiledTemplate,
  tokenizer: ModelTokenizer,
  options: { cutoffLen: number; addEos: boolean },
): { examples: EvalExample[]; skipped: number } {
  const examples: EvalExample[] = [];
  let skipped = 0;
  for (const r of records) {
    const ex = buildExample(r, template, tokenizer, { ...options, trainOnInputs: false });
    if (ex.promptLength >= ex.ids.length) {
      skipped++;
      continue;
    }
    examples.push({
      id: String(r.index),
      line: r.line,
      instruction: r.instruction,
      input: r.input,
      reference: r.output,
      prompt: tokenizer.encode(template.render(r.instruction, r.input)),
      scorePrompt: ex.ids.slice(0, ex.promptLength),
      scoreTarget: ex.ids.slice(ex.promptLength),
    });
  }
  return { examples, skipped };
}
