/**
 * The evaluation that ends a training run (spec.evaluation): the run's adapter against the base
 * model on the run's own validation split, eval.json in the output directory, and the summary
 * that status.evaluation carries (the metrics spec.evaluation.metrics asks for).
 */

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { EvalExampleStatus, LoraFineTuneSpec, LoraFineTuneStatus } from "@loraforge/crds";
import { loadTemplate, type PrepareResult } from "../prepare/prepare.ts";
import type { LocalPaths } from "../train/resolve.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { generate } from "./coreVerbs.ts";
import { mean, templateMarkers } from "./metrics.ts";
import type { ModelMetrics } from "./report.ts";
import { answerResult } from "./report.ts";
import {
  DEFAULT_GENERATION,
  type EvaluationOptions,
  prepareEvaluation,
  runEvaluation,
} from "./run.ts";
import { statusExamples } from "./statusExamples.ts";

type StatusMetrics = NonNullable<NonNullable<LoraFineTuneStatus["evaluation"]>["base"]>;

export interface EvaluationSummary {
  /** eval.json */
  path: string;
  samples: number;
  base: StatusMetrics;
  tuned?: StatusMetrics;
  /** A few samples, cut to the status's bounds (statusExamples.ts); absent in an older summary.json. */
  examples?: EvalExampleStatus[];
}

export interface EvaluateRunInputs {
  paths: LocalPaths;
  prepared: PrepareResult;
  corePath: string;
  threads: number;
  onMessage: (message: string) => void;
  signal?: AbortSignal;
}

/** The status's metrics (spec.evaluation.metrics) out of eval.json's. */
export function statusMetrics(
  m: ModelMetrics,
  wanted: LoraFineTuneSpec["evaluation"]["metrics"],
): StatusMetrics {
  const out: StatusMetrics = {};
  for (const k of wanted) {
    const v = m[k];
    if (v !== null && Number.isFinite(v)) out[k] = v;
  }
  return out;
}

/** spec.evaluation as runEvaluation's options, on the run's own validation split. */
async function optionsFor(
  spec: LoraFineTuneSpec,
  inputs: EvaluateRunInputs,
): Promise<EvaluationOptions> {
  const { paths, prepared } = inputs;
  const e = spec.evaluation;
  return {
    modelDir: paths.modelDir,
    adapterDir: join(paths.outDir, "adapter"),
    template: await loadTemplate({
      name: spec.dataset.promptTemplate,
      ...(paths.customTemplateFile ? { file: paths.customTemplateFile } : {}),
    }),
    templateName: prepared.manifest.inputs.template,
    records: {
      datasetFile: paths.datasetFile,
      ...(spec.dataset.format && spec.dataset.format !== "auto"
        ? { format: spec.dataset.format }
        : {}),
      split: { valSetSize: spec.dataset.valSetSize, seed: spec.training.seed },
      samples: e.samples,
    },
    cutoffLen: spec.dataset.cutoffLen,
    addEos: spec.dataset.addEos,
    generation: {
      ...DEFAULT_GENERATION,
      maxNewTokens: e.maxNewTokens,
      temperature: e.temperature,
      seed: spec.training.seed,
    },
    outDir: paths.outDir,
    dataDigest: prepared.manifest.digest,
    corePath: inputs.corePath,
    threads: inputs.threads,
    onMessage: inputs.onMessage,
    ...(inputs.signal ? { signal: inputs.signal } : {}),
  };
}

const noValidation =
  "the run has no validation split (dataset.valSetSize is 0 or the dataset is too small)";

/** Runs the evaluation of a finished run; null (with a message) when there is no validation split. */
export async function evaluateRun(
  spec: LoraFineTuneSpec,
  inputs: EvaluateRunInputs,
): Promise<EvaluationSummary | null> {
  if (inputs.prepared.manifest.val.records === 0) {
    inputs.onMessage(`evaluation skipped: ${noValidation}; run loraforge eval with --eval-file`);
    return null;
  }
  const e = spec.evaluation;
  const result = await runEvaluation(await optionsFor(spec, inputs));
  return {
    path: result.files.evalJson,
    samples: result.data.examples,
    base: statusMetrics(result.metrics.base, e.metrics),
    ...(result.metrics.tuned ? { tuned: statusMetrics(result.metrics.tuned, e.metrics) } : {}),
    examples: statusExamples(result.samples),
  };
}

/**
 * checkpointSelection bestEvalScore: each candidate adapter generates for the evaluation's
 * examples; its score is the mean of spec.evaluation.scoreMetric. Throws when the run has no
 * validation split (nothing to score on).
 */
export async function scoreCheckpoints(
  spec: LoraFineTuneSpec,
  inputs: EvaluateRunInputs,
  candidates: readonly { step: number; dir: string }[],
): Promise<Map<number, number>> {
  if (inputs.prepared.manifest.val.records === 0)
    throw new Error(`bestEvalScore cannot score checkpoints: ${noValidation}`);
  const opts = await optionsFor(spec, inputs);
  const prep = await prepareEvaluation(opts);
  const workDir = join(inputs.paths.outDir, "eval");
  await mkdir(workDir, { recursive: true });
  const logFile = join(workDir, "select.log");
  await writeFileAtomic(logFile, "");
  const markers = templateMarkers(opts.template.source);
  const metric = spec.evaluation.scoreMetric;
  const scores = new Map<number, number>();
  for (const c of candidates) {
    inputs.onMessage(
      `bestEvalScore: scoring step ${c.step} on ${prep.examples.length} validation examples (${metric})`,
    );
    const sequences = await generate(
      {
        corePath: prep.corePath,
        modelDir: opts.modelDir,
        adapterDir: c.dir,
        variants: ["adapter"],
        threads: inputs.threads,
        logFile,
        ...(inputs.signal ? { signal: inputs.signal } : {}),
      },
      join(workDir, "select-prompts.jsonl"),
      prep.examples.map((e) => ({ id: e.id, tokens: e.prompt })),
      prep.sampling,
    );
    const byId = new Map(sequences.map((s) => [s.id, s]));
    const values = prep.examples.map((ex) => {
      const s = byId.get(ex.id);
      if (!s) throw new Error(`loraforge-core generate returned no sequence for example ${ex.id}`);
      const text = prep.tok.encoder.decode(s.tokens).trim();
      return answerResult(ex, { text, tokens: s.tokens.length, stop: s.stop }, undefined, markers)[
        metric
      ];
    });
    scores.set(c.step, mean(values) ?? 0);
  }
  return scores;
}
