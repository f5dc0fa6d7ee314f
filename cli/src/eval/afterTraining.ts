/**
 * The evaluation that ends a training run (spec.evaluation): the run's adapter against the base
 * model on the run's own validation split, eval.json in the output directory, and the summary
 * that status.evaluation carries (the metrics spec.evaluation.metrics asks for).
 */
import { join } from "node:path";
import type { LoraFineTuneSpec, LoraFineTuneStatus } from "@loraforge/crds";
import { loadTemplate, type PrepareResult } from "../prepare/prepare.ts";
import type { LocalPaths } from "../train/resolve.ts";
import type { ModelMetrics } from "./report.ts";
import { DEFAULT_GENERATION, runEvaluation } from "./run.ts";

type StatusMetrics = NonNullable<NonNullable<LoraFineTuneStatus["evaluation"]>["base"]>;

export interface EvaluationSummary {
  /** eval.json */
  path: string;
  samples: number;
  base: StatusMetrics;
  tuned?: StatusMetrics;
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

/** Runs the evaluation of a finished run; null (with a message) when there is no validation split. */
export async function evaluateRun(
  spec: LoraFineTuneSpec,
  inputs: EvaluateRunInputs,
): Promise<EvaluationSummary | null> {
  const { paths, prepared } = inputs;
  if (prepared.manifest.val.records === 0) {
    inputs.onMessage(
      "evaluation skipped: the run has no validation split (dataset.valSetSize is 0 or the dataset is too small); run loraforge eval with --eval-file",
    );
    return null;
  }
  const e = spec.evaluation;
  const result = await runEvaluation({
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
  });
  return {
    path: result.files.evalJson,
    samples: result.data.examples,
    base: statusMetrics(result.metrics.base, e.metrics),
    ...(result.metrics.tuned ? { tuned: statusMetrics(result.metrics.tuned, e.metrics) } : {}),
  };
}
