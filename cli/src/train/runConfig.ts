import type { LoraFineTuneSpec } from "@loraforge/crds";
import { CliError } from "../errors.ts";

export type Backend = "cpu" | "cuda";

/** run.json version 1 (docs/CONTRACTS.md §2): what the core is told to do. */
export interface RunJson {
  version: 1;
  model_dir: string;
  train_shards: string[];
  val_shards: string[];
  output_dir: string;
  backend: Backend;
  threads: number;
  base_model_name_or_path: string;
  lora: {
    r: number;
    alpha: number;
    dropout: number;
    target_modules: string[];
    use_rslora: boolean;
  };
  training: {
    epochs: number;
    max_steps: number;
    learning_rate: number;
    batch_size: number;
    micro_batch_size: number;
    warmup_steps: number;
    scheduler: string;
    weight_decay: number;
    adam_beta1: number;
    adam_beta2: number;
    adam_epsilon: number;
    max_grad_norm: number;
    seed: number;
    shuffle: boolean;
    group_by_length: boolean;
    precision: "fp32" | "fp16" | "bf16";
    gradient_checkpointing: boolean;
  };
  intervals: {
    log_steps: number;
    eval_steps: number;
    save_steps: number;
    save_total_limit: number;
  };
  check_numerics: boolean;
}

export class RunConfigError extends CliError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`spec.${field}: ${message}`);
    this.name = "RunConfigError";
  }
}

export interface RunConfigInput {
  spec: LoraFineTuneSpec;
  modelDir: string;
  trainShard: string;
  valShard?: string;
  outDir: string;
  backend: Backend;
  threads: number;
  baseModelName: string;
  checkNumerics?: boolean;
}

/** Maps the spec onto run.json; AdamW betas/epsilon are alpaca-lora's (the spec does not vary them). */
export function buildRunJson(input: RunConfigInput): RunJson {
  const { spec, backend } = input;
  const t = spec.training;
  let precision: RunJson["training"]["precision"];
  if (t.precision === "auto") precision = backend === "cpu" ? "fp32" : "fp16";
  else precision = t.precision;
  if (backend === "cpu" && precision !== "fp32")
    throw new RunConfigError(
      "training.precision",
      `${precision} needs the cuda backend; the cpu backend trains in fp32`,
    );
  if (backend === "cpu" && t.quantization !== "none")
    throw new RunConfigError("training.quantization", `${t.quantization} needs the cuda backend`);
  return {
    version: 1,
    model_dir: input.modelDir,
    train_shards: [input.trainShard],
    val_shards: input.valShard ? [input.valShard] : [],
    output_dir: input.outDir,
    backend,
    threads: input.threads,
    base_model_name_or_path: input.baseModelName,
    lora: {
      r: spec.lora.r,
      alpha: spec.lora.alpha,
      dropout: spec.lora.dropout,
      target_modules: [...spec.lora.targetModules],
      use_rslora: spec.lora.useRslora,
    },
    training: {
      epochs: t.epochs,
      max_steps: t.maxSteps,
      learning_rate: t.learningRate,
      batch_size: t.batchSize,
      micro_batch_size: t.microBatchSize,
      warmup_steps: t.warmupSteps,
      scheduler: t.scheduler,
      weight_decay: t.weightDecay,
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      max_grad_norm: t.maxGradNorm,
      seed: t.seed,
      shuffle: true,
      group_by_length: spec.dataset.groupByLength,
      precision,
      gradient_checkpointing: t.gradientCheckpointing,
    },
    intervals: {
      log_steps: t.logSteps,
      eval_steps: t.evalSteps,
      save_steps: t.saveSteps,
      save_total_limit: t.saveTotalLimit,
    },
    check_numerics: input.checkNumerics ?? false,
  };
}
