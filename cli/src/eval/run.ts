/**
 * An evaluation, as a function: pick the examples, tokenize them, generate with the base model and
 * with the adapter in one core process, score the references, compute the metrics and write
 * eval.json (docs/CONTRACTS.md §5). `loraforge eval`, `loraforge train` and the trainer Job call
 * runEvaluation; it neither prints nor exits.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { DatasetError } from "../dataset/problems.ts";
import type { CompiledTemplate } from "../prompt/templates.ts";
import { loadModelTokenizer, type ModelTokenizer } from "../tokenizer/tokenizer.ts";
import { findCore } from "../train/core.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { coreVersion, generate, type SamplingSettings, score, type Variant } from "./coreVerbs.ts";
import {
  buildEvalExamples,
  type EvalExample,
  type EvalRecords,
  loadEvalRecords,
  type RecordSource,
} from "./examples.ts";
import { templateMarkers } from "./metrics.ts";
import {
  type AnswerResult,
  answerResult,
  type Generation,
  type ModelKey,
  type ModelMetrics,
  modelMetrics,
  type Score,
} from "./report.ts";

export const EVAL_JSON_VERSION = 1;

export interface GenerationOptions {
  /** Upper bound on new tokens; the actual limit also leaves the longest prompt inside the cutoff. */
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  batchSize: number;
}

export const DEFAULT_GENERATION: GenerationOptions = {
  maxNewTokens: 256,
  temperature: 0,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  seed: 0,
  batchSize: 8,
};

export interface EvaluationOptions {
  modelDir: string;
  /** Without an adapter only the base model is evaluated. */
  adapterDir: string | null;
  template: CompiledTemplate;
  templateName: string;
  records: RecordSource;
  cutoffLen: number;
  addEos: boolean;
  generation: GenerationOptions;
  /** eval.json goes here; the core's inputs and log go to <outDir>/eval/. */
  outDir: string;
  /** The prepared data's digest (data/manifest.json), when the examples come from a training run. */
  dataDigest?: string;
  corePath?: string;
  threads?: number;
  signal?: AbortSignal;
  onMessage?: (message: string) => void;
}

export interface SampleRecord {
  id: string;
  line: number;
  instruction: string;
  input: string;
  reference: string;
  base: AnswerResult;
  tuned?: AnswerResult;
}

/** eval.json, version 1. */
export interface EvalResult {
  version: typeof EVAL_JSON_VERSION;
  created: string;
  core: { version: string };
  model: { dir: string };
  adapter: { dir: string } | null;
  data: {
    file: string;
    sha256: string;
    split: EvalRecords["split"];
    digest: string | null;
    available: number;
    examples: number;
    skipped: number;
  };
  settings: Omit<SamplingSettings, "batchSize"> & {
    batchSize: number;
    template: string;
    cutoffLen: number;
    stopTokensWhy: string;
  };
  metrics: { base: ModelMetrics; tuned?: ModelMetrics };
  samples: SampleRecord[];
  files: { evalJson: string; coreLog: string };
}

const ModelConfig = z
  .object({ max_position_embeddings: z.number().int().positive().optional() })
  .loose();

async function maxPositions(modelDir: string): Promise<number | undefined> {
  const text = await readFile(join(modelDir, "config.json"), "utf8");
  const cfg = ModelConfig.safeParse(JSON.parse(text));
  return cfg.success ? cfg.data.max_position_embeddings : undefined;
}

/** What every generation pass of an evaluation shares: tokenizer, examples, settings. */
export interface PreparedEvaluation {
  tok: ModelTokenizer;
  recs: EvalRecords;
  examples: EvalExample[];
  skipped: number;
  sampling: SamplingSettings;
  stopTokensWhy: string;
  corePath: string;
}

export async function prepareEvaluation(
  opts: Pick<
    EvaluationOptions,
    "modelDir" | "template" | "records" | "cutoffLen" | "addEos" | "generation" | "corePath"
  >,
): Promise<PreparedEvaluation> {
  const tok = await loadModelTokenizer(opts.modelDir);
  const recs = await loadEvalRecords(opts.records);
  const { examples, skipped } = buildEvalExamples(recs.records, opts.template, tok, {
    cutoffLen: opts.cutoffLen,
    addEos: opts.addEos,
  });
  if (examples.length === 0)
    throw new DatasetError([
      {
        file: recs.file,
        message: `none of the ${recs.records.length} evaluation examples has a response inside the cutoff of ${opts.cutoffLen} tokens: the prompts alone fill it`,
        severity: "error",
      },
    ]);
  const corePath = opts.corePath ?? findCore();
  const longestPrompt = Math.max(...examples.map((e) => e.prompt.length));
  const room = Math.min(opts.cutoffLen, (await maxPositions(opts.modelDir)) ?? Infinity);
  const sampling: SamplingSettings = {
    ...opts.generation,
    maxNewTokens: Math.max(1, Math.min(opts.generation.maxNewTokens, room - longestPrompt)),
    // The tokens transformers' generate stops on; training ended every response with one of them.
    stopTokens: tok.stopIds,
  };
  return { tok, recs, examples, skipped, sampling, stopTokensWhy: tok.stopSource, corePath };
}

export async function runEvaluation(opts: EvaluationOptions): Promise<EvalResult> {
  const say = opts.onMessage ?? (() => {});
  const { tok, recs, examples, skipped, sampling, corePath, ...prep } =
    await prepareEvaluation(opts);
  const workDir = join(opts.outDir, "eval");
  await mkdir(workDir, { recursive: true });
  const files = { evalJson: join(opts.outDir, "eval.json"), coreLog: join(workDir, "core.log") };
  await writeFileAtomic(files.coreLog, "");
  const variants: Variant[] = opts.adapterDir ? ["base", "adapter"] : ["base"];
  const run = {
    corePath,
    modelDir: opts.modelDir,
    adapterDir: opts.adapterDir,
    variants,
    threads: opts.threads ?? 0,
    logFile: files.coreLog,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };

  say(
    `evaluating on ${examples.length} ${recs.split === "validation" ? "validation" : "eval-file"} examples (${variants.join(" and ")}; up to ${sampling.maxNewTokens} new tokens, ${sampling.temperature === 0 ? "greedy" : `temperature ${sampling.temperature}`})`,
  );
  const sequences = await generate(
    run,
    join(workDir, "prompts.jsonl"),
    examples.map((e) => ({ id: e.id, tokens: e.prompt })),
    sampling,
  );
  const scores = await score(
    run,
    join(workDir, "examples.jsonl"),
    examples.map((e) => ({ id: e.id, prompt: e.scorePrompt, target: e.scoreTarget })),
    sampling.batchSize,
  );

  const keyOf = (v: string): ModelKey | undefined =>
    v === "base" ? "base" : v === "adapter" ? "tuned" : undefined;
  const gens = { base: new Map<string, Generation>(), tuned: new Map<string, Generation>() };
  for (const s of sequences) {
    const key = keyOf(s.variant);
    if (key)
      gens[key].set(s.id, {
        text: tok.encoder.decode(s.tokens).trim(),
        tokens: s.tokens.length,
        stop: s.stop,
      });
  }
  const scored = { base: new Map<string, Score>(), tuned: new Map<string, Score>() };
  for (const s of scores) {
    const key = keyOf(s.variant);
    if (key) scored[key].set(s.id, { targetTokens: s.target_tokens, lossSum: s.loss_sum });
  }

  const markers = templateMarkers(opts.template.source);
  const answers = (key: ModelKey) =>
    examples.map((ex) => {
      const g = gens[key].get(ex.id);
      if (!g)
        throw new Error(`loraforge-core generate returned no ${key} sequence for example ${ex.id}`);
      return answerResult(ex, g, scored[key].get(ex.id), markers);
    });
  const scoresOf = (key: ModelKey) => [...scored[key].values()];
  const baseAnswers = answers("base");
  const tunedAnswers = opts.adapterDir ? answers("tuned") : undefined;

  const result: EvalResult = {
    version: EVAL_JSON_VERSION,
    created: new Date().toISOString(),
    core: { version: coreVersion(corePath) },
    model: { dir: opts.modelDir },
    adapter: opts.adapterDir ? { dir: opts.adapterDir } : null,
    data: {
      file: recs.file,
      sha256: recs.sha256,
      split: recs.split,
      digest: opts.dataDigest ?? null,
      available: recs.available,
      examples: examples.length,
      skipped,
    },
    settings: {
      ...sampling,
      template: opts.templateName,
      cutoffLen: opts.cutoffLen,
      stopTokensWhy: prep.stopTokensWhy,
    },
    metrics: {
      base: modelMetrics(baseAnswers, scoresOf("base")),
      ...(tunedAnswers ? { tuned: modelMetrics(tunedAnswers, scoresOf("tuned")) } : {}),
    },
    samples: examples.map((ex, i) => ({
      id: ex.id,
      line: ex.line,
      instruction: ex.instruction,
      input: ex.input,
      reference: ex.reference,
      base: baseAnswers[i] as AnswerResult,
      ...(tunedAnswers ? { tuned: tunedAnswers[i] as AnswerResult } : {}),
    })),
    files,
  };
  await writeFileAtomic(files.evalJson, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}
