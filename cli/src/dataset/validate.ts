import { readFile } from "node:fs/promises";
import { buildExample, type ExampleOptions } from "../prepare/example.ts";
import type { CompiledTemplate } from "../prompt/templates.ts";
import type { ModelTokenizer } from "../tokenizer/tokenizer.ts";
import { type ParseOptions, parseDataset } from "./parse.ts";
import { hasErrors, type Problem } from "./problems.ts";
import type { DatasetRecord } from "./record.ts";
import { splitTrainVal } from "./split.ts";

export interface Summary {
  min: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

export interface DatasetStats {
  /** Records in the file. */
  records: number;
  /** Records left out (empty instruction or output). */
  rejected: number;
  /** Records that would be trained on or validated against. */
  usable: number;
  withInput: number;
  /** Records identical (instruction, input, output) to an earlier record. */
  duplicates: number;
  split?: {
    train: number;
    val: number;
    /** Validation records that also appear, identically, in the training split. */
    overlap: number;
  };
  chars: { instruction: Summary; input: Summary; output: Summary };
  tokens?: {
    perRecord: Summary;
    cutoffLen: number;
    truncated: number;
    truncatedShare: number;
    /** Tokens with mask 1 (what the loss is computed on), over all usable records. */
    trainedTokens: number;
    totalTokens: number;
  };
}

export interface ValidationReport {
  file: string;
  format: "json" | "jsonl";
  ok: boolean;
  problems: Problem[];
  stats: DatasetStats;
  /** The usable records, for callers that go on to prepare them. */
  records: DatasetRecord[];
}

export interface ValidateOptions extends ParseOptions {
  /** Also compute the seeded split and the train/validation overlap. */
  split?: { valSetSize: number; seed: number };
  /** Treat warnings (rejected records, unknown fields, duplicates) as errors. */
  strict?: boolean;
  /** With a tokenizer: tokens per record and the share truncated at the cutoff. */
  tokens?: { tokenizer: ModelTokenizer; template: CompiledTemplate } & ExampleOptions;
  /** How many duplicate records to list one by one (the rest are counted). Default 20. */
  listDuplicates?: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { min: 0, mean: 0, p50: 0, p95: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    min: sorted[0] as number,
    mean: sum / sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    max: sorted[sorted.length - 1] as number,
  };
}

const recordKey = (r: DatasetRecord) => `${r.instruction}\u0000${r.input}\u0000${r.output}`;

/**
 * Validates a dataset held in memory. Pure: no printing, no exit, nothing written. The report's
 * `ok` is false when any problem is an error (or, with `strict`, a warning).
 */
export function validateBytes(
  bytes: Uint8Array,
  file: string,
  options: ValidateOptions = {},
): ValidationReport {
  const parsed = parseDataset(bytes, file, options);
  const problems = [...parsed.problems];
  const records = parsed.records;

  if (!hasErrors(problems) && parsed.total > 0 && records.length === 0) {
    problems.push({
      file,
      message: "no usable records: every record was rejected",
      severity: "error",
    });
  }

  const seen = new Map<string, DatasetRecord>();
  let duplicates = 0;
  const listDuplicates = options.listDuplicates ?? 20;
  for (const r of records) {
    const key = recordKey(r);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, r);
      continue;
    }
    duplicates++;
    if (duplicates <= listDuplicates) {
      problems.push({
        file,
        line: r.line,
        record: r.index,
        message: `duplicate of record ${first.index} (line ${first.line})`,
        severity: "warning",
      });
    }
  }
  if (duplicates > listDuplicates) {
    problems.push({
      file,
      message: `${duplicates - listDuplicates} more duplicate records not listed (${duplicates} in all)`,
      severity: "warning",
    });
  }

  if (options.tokens) {
    const specials = options.tokens.tokenizer.specialStrings.filter((s) => s.length > 0);
    let listed = 0;
    for (const r of records) {
      for (const field of ["instruction", "input", "output"] as const) {
        const hit = specials.find((s) => r[field].includes(s));
        if (hit !== undefined && listed++ < 20) {
          problems.push({
            file,
            line: r.line,
            record: r.index,
            field,
            message: `contains "${hit}", which the tokenizer reads as a special token, not as text`,
            severity: "warning",
          });
        }
      }
    }
  }

  const stats: DatasetStats = {
    records: parsed.total,
    rejected: parsed.rejected,
    usable: records.length,
    withInput: records.filter((r) => r.input !== "").length,
    duplicates,
    chars: {
      instruction: summarize(records.map((r) => r.instruction.length)),
      input: summarize(records.map((r) => r.input.length)),
      output: summarize(records.map((r) => r.output.length)),
    },
  };

  if (options.split && records.length > 0) {
    const { train, val } = splitTrainVal(records, options.split.valSetSize, options.split.seed);
    const trainKeys = new Set(train.map(recordKey));
    const overlap = val.filter((r) => trainKeys.has(recordKey(r))).length;
    stats.split = { train: train.length, val: val.length, overlap };
    if (overlap > 0) {
      problems.push({
        file,
        message: `${overlap} of the ${val.length} validation records also appear in the training split; the validation loss will look better than it is (deduplicate the file)`,
        severity: "warning",
      });
    }
  }

  if (options.tokens && records.length > 0) {
    const { tokenizer, template, ...exampleOptions } = options.tokens;
    const lengths: number[] = [];
    let truncated = 0;
    let trained = 0;
    let total = 0;
    for (const r of records) {
      const ex = buildExample(r, template, tokenizer, exampleOptions);
      lengths.push(ex.fullLength);
      if (ex.truncated) truncated++;
      total += ex.ids.length;
      for (let k = 1; k < ex.mask.length; k++) trained += ex.mask[k] as number;
      if (ex.promptLength >= ex.ids.length && !exampleOptions.trainOnInputs) {
        problems.push({
          file,
          line: r.line,
          record: r.index,
          message: `the prompt alone reaches the cutoff (${exampleOptions.cutoffLen} tokens): nothing of the output is left to train on`,
          severity: "warning",
        });
      }
    }
    stats.tokens = {
      perRecord: summarize(lengths),
      cutoffLen: exampleOptions.cutoffLen,
      truncated,
      truncatedShare: truncated / records.length,
      trainedTokens: trained,
      totalTokens: total,
    };
  }

  const ok = !problems.some(
    (p) => p.severity === "error" || (options.strict === true && p.severity === "warning"),
  );
  return { file, format: parsed.format, ok, problems, stats, records };
}

/** Reads and validates a dataset file. A file that cannot be read is reported, not thrown. */
export async function validateFile(
  path: string,
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const empty = summarize([]);
    return {
      file: path,
      format: options.format === "jsonl" ? "jsonl" : "json",
      ok: false,
      problems: [
        { file: path, message: `cannot read: ${(e as Error).message}`, severity: "error" },
      ],
      stats: {
        records: 0,
        rejected: 0,
        usable: 0,
        withInput: 0,
        duplicates: 0,
        chars: { instruction: empty, input: empty, output: empty },
      },
      records: [],
    };
  }
  return validateBytes(bytes, path, options);
}
