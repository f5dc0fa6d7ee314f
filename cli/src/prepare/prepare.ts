/**
 * dataset -> token shards: validate, split (seeded), render the prompt template, tokenize, mask,
 * truncate, and write train.lfs / val.lfs / manifest.json. Nothing is written unless the whole
 * dataset is valid; each file appears whole (written beside, then renamed).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { TRAINER_EXIT_CODES } from "@loraforge/crds";
import type { DatasetFormat } from "../dataset/parse.ts";
import { DatasetError, type Problem } from "../dataset/problems.ts";
import type { DatasetRecord } from "../dataset/record.ts";
import { splitTrainVal } from "../dataset/split.ts";
import {
  type DatasetStats,
  summarize,
  type ValidationReport,
  validateBytes,
} from "../dataset/validate.ts";
import { CliError } from "../errors.ts";
import { BUILTIN_TEMPLATES, CompiledTemplate, parseTemplateFile } from "../prompt/templates.ts";
import { encodeShard } from "../shards/lfs.ts";
import { loadModelTokenizer, type ModelTokenizer } from "../tokenizer/tokenizer.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { buildExample, type Example, type ExampleOptions } from "./example.ts";

/** Bump when the way examples are built changes: prepared shards with another version are redone. */
export const PREPARE_VERSION = 1;

export interface TemplateChoice {
  name: "alpaca" | "alpaca_short" | "custom";
  /** The template file when name is custom. */
  file?: string;
}

export interface PrepareOptions extends ExampleOptions {
  datasetFile: string;
  format?: DatasetFormat;
  modelDir: string;
  template: TemplateChoice;
  valSetSize: number;
  seed: number;
  /** Where train.lfs, val.lfs and manifest.json go. */
  dataDir: string;
  strict?: boolean;
  /**
   * Refuse (before writing anything) when the inputs differ from the ones these shards were
   * prepared from: checkpoints trained on the old shards would no longer match the data.
   */
  expectDigest?: string;
}

/** Exit code 1 as before this was a CliError (runTraining catches it and starts afresh). */
export class DataChangedError extends CliError {
  constructor(readonly dataDir: string) {
    super(
      `${dataDir} was prepared from other inputs (the dataset, the tokenizer or a dataset setting changed) and checkpoints were trained on it`,
      TRAINER_EXIT_CODES.internal,
    );
    this.name = "DataChangedError";
  }
}

export interface SplitStats {
  records: number;
  tokens: number;
  /** Tokens that are training targets (mask 1, first token excluded). */
  trainedTokens: number;
  truncated: number;
  /** Examples left with no training target (the prompt alone fills the cutoff). */
  noTarget: number;
  length: ReturnType<typeof summarize>;
}

export interface DataManifest {
  version: typeof PREPARE_VERSION;
  /** sha256 over every input that changes the shards. */
  digest: string;
  inputs: {
    dataset: { file: string; sha256: string; format: "json" | "jsonl" };
    model: { dir: string; tokenizerSha256: string; configSha256: string };
    template: string;
    templateSha256: string;
    cutoffLen: number;
    trainOnInputs: boolean;
    addEos: boolean;
    /** The token appended when addEos (the tokenizer's endId: EOS, or BOS for a llama2.c import). */
    endId: number;
    valSetSize: number;
    seed: number;
  };
  special: {
    bos: number;
    eos: number;
    /** The token a response ends with (tokenizer.endId). */
    end: number;
    pad: number;
    addBos: boolean;
    vocabSize: number;
  };
  train: SplitStats;
  val: SplitStats;
  dataset: DatasetStats;
  files: { train: string; val: string | null };
}

export interface PrepareResult {
  manifest: DataManifest;
  report: ValidationReport;
  trainShard: string;
  valShard?: string;
  /** True when shards prepared from the same inputs were already there (nothing rewritten). */
  reused: boolean;
  warnings: Problem[];
}

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

export async function loadTemplate(choice: TemplateChoice): Promise<CompiledTemplate> {
  if (choice.name !== "custom")
    return CompiledTemplate.compile(BUILTIN_TEMPLATES[choice.name], choice.name);
  if (!choice.file) throw new Error("the custom template needs a file");
  const text = await readFile(choice.file, "utf8");
  return parseTemplateFile(text, choice.file);
}

export function buildExamples(
  records: readonly DatasetRecord[],
  template: CompiledTemplate,
  tokenizer: ModelTokenizer,
  options: ExampleOptions,
): { examples: Example[]; stats: SplitStats } {
  const examples: Example[] = [];
  let tokens = 0;
  let trained = 0;
  let truncated = 0;
  let noTarget = 0;
  for (const r of records) {
    const ex = buildExample(r, template, tokenizer, options);
    examples.push(ex);
    tokens += ex.ids.length;
    let targets = 0;
    for (let k = 1; k < ex.mask.length; k++) targets += ex.mask[k] as number;
    trained += targets;
    if (targets === 0) noTarget++;
    if (ex.truncated) truncated++;
  }
  return {
    examples,
    stats: {
      records: examples.length,
      tokens,
      trainedTokens: trained,
      truncated,
      noTarget,
      length: summarize(examples.map((e) => e.ids.length)),
    },
  };
}

/** Reads the manifest of already-prepared data, if any. */
export async function readManifest(dataDir: string): Promise<DataManifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, "manifest.json"), "utf8")) as DataManifest;
  } catch {
    return undefined;
  }
}

export async function prepareDataset(opts: PrepareOptions): Promise<PrepareResult> {
  const bytes = await readFile(opts.datasetFile).catch((e: Error) => {
    throw new DatasetError([
      { file: opts.datasetFile, message: `cannot read: ${e.message}`, severity: "error" },
    ]);
  });
  const tokenizer = await loadModelTokenizer(opts.modelDir);
  const template = await loadTemplate(opts.template);
  const report = validateBytes(bytes, opts.datasetFile, {
    ...(opts.format ? { format: opts.format } : {}),
    split: { valSetSize: opts.valSetSize, seed: opts.seed },
    ...(opts.strict ? { strict: true } : {}),
  });
  if (!report.ok) throw new DatasetError(report.problems);

  const [tokJson, cfgJson] = await Promise.all([
    readFile(join(opts.modelDir, "tokenizer.json")),
    readFile(join(opts.modelDir, "config.json")),
  ]);
  const tcJson = await readFile(join(opts.modelDir, "tokenizer_config.json")).catch(() =>
    Buffer.alloc(0),
  );
  const templateJson = JSON.stringify(template.source);
  const inputs: DataManifest["inputs"] = {
    dataset: { file: opts.datasetFile, sha256: sha256(bytes), format: report.format },
    model: {
      dir: opts.modelDir,
      tokenizerSha256: sha256(Buffer.concat([tokJson, tcJson])),
      configSha256: sha256(cfgJson),
    },
    template: opts.template.name === "custom" ? `custom:${opts.template.file}` : opts.template.name,
    templateSha256: sha256(templateJson),
    cutoffLen: opts.cutoffLen,
    trainOnInputs: opts.trainOnInputs,
    addEos: opts.addEos,
    endId: tokenizer.endId,
    valSetSize: opts.valSetSize,
    seed: opts.seed,
  };
  const digest = sha256(
    JSON.stringify({
      version: PREPARE_VERSION,
      ...inputs,
      dataset: { ...inputs.dataset, file: undefined },
      model: { ...inputs.model, dir: undefined },
      template: undefined,
    }),
  );
  const trainShard = join(opts.dataDir, "train.lfs");
  const valShardPath = join(opts.dataDir, "val.lfs");
  const warnings = [
    ...tokenizer.warnings,
    ...report.problems.filter((p) => p.severity === "warning"),
  ];

  if (opts.expectDigest !== undefined && opts.expectDigest !== digest)
    throw new DataChangedError(opts.dataDir);
  const previous = await readManifest(opts.dataDir);
  if (previous?.digest === digest && previous.version === PREPARE_VERSION) {
    return {
      manifest: previous,
      report,
      trainShard,
      ...(previous.files.val ? { valShard: valShardPath } : {}),
      reused: true,
      warnings: [...warnings, ...dataWarnings(previous, opts.datasetFile)],
    };
  }

  const { train, val } = splitTrainVal(report.records, opts.valSetSize, opts.seed);
  const exampleOptions = {
    cutoffLen: opts.cutoffLen,
    trainOnInputs: opts.trainOnInputs,
    addEos: opts.addEos,
  };
  const trainBuilt = buildExamples(train, template, tokenizer, exampleOptions);
  const valBuilt = buildExamples(val, template, tokenizer, exampleOptions);
  const trainBytes = encodeShard(trainBuilt.examples, tokenizer.vocabSize, trainShard);
  const valBytes =
    val.length > 0 ? encodeShard(valBuilt.examples, tokenizer.vocabSize, valShardPath) : undefined;

  const manifest: DataManifest = {
    version: PREPARE_VERSION,
    digest,
    inputs,
    special: {
      bos: tokenizer.bosId,
      eos: tokenizer.eosId,
      end: tokenizer.endId,
      pad: tokenizer.padId,
      addBos: tokenizer.addBos,
      vocabSize: tokenizer.vocabSize,
    },
    train: trainBuilt.stats,
    val: valBuilt.stats,
    dataset: report.stats,
    files: { train: "train.lfs", val: valBytes ? "val.lfs" : null },
  };
  await mkdir(opts.dataDir, { recursive: true });
  // The manifest goes last: a directory whose manifest matches always holds matching shards.
  await rm(join(opts.dataDir, "manifest.json"), { force: true });
  await writeFileAtomic(trainShard, trainBytes);
  if (valBytes) await writeFileAtomic(valShardPath, valBytes);
  else await rm(valShardPath, { force: true });
  await writeFileAtomic(
    join(opts.dataDir, "manifest.json"),
    `${JSON.stringify(manifest, null, 2)}\n`,
  );
  return {
    manifest,
    report,
    trainShard,
    ...(valBytes ? { valShard: valShardPath } : {}),
    reused: false,
    warnings: [...warnings, ...dataWarnings(manifest, opts.datasetFile)],
  };
}

/** What the prepared examples say about the settings: truncation, examples with nothing to learn. */
function dataWarnings(m: DataManifest, file: string): Problem[] {
  const out: Problem[] = [];
  const all = m.train.records + m.val.records;
  const truncated = m.train.truncated + m.val.truncated;
  const noTarget = (m.train.noTarget ?? 0) + (m.val.noTarget ?? 0);
  const cutoff = m.inputs.cutoffLen;
  if (all > 0 && truncated > 0.05 * all) {
    out.push({
      file,
      message: `${truncated} of ${all} examples (${((100 * truncated) / all).toFixed(1)}%) are longer than the cutoff of ${cutoff} tokens and lose their end (and EOS); raise cutoffLen or shorten them`,
      severity: "warning",
    });
  }
  if (noTarget > 0) {
    out.push({
      file,
      message: `${noTarget} examples have nothing to train on: their prompt alone fills the cutoff of ${cutoff} tokens`,
      severity: "warning",
    });
  }
  return out;
}
