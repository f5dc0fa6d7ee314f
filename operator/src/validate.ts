// Is this run possible on the GPU it asks for? Checks the API server cannot make (it
// knows neither the pool's default GPU nor the model's size): precision against compute
// capability, int8 on V100 for large models, and whether the run fits the GPU's memory.

import {
  type Cidr,
  gpuInfo,
  type LoraFineTune,
  productLacksBf16,
  Reason,
  type ReasonName,
  type ValidationFailureReason,
} from "@loraforge/crds";
import { describeEstimate, estimateMemory, GiB, gib } from "./memoryFit.ts";
import { modelSizeOf } from "./modelSize.ts";
import { CPU_TRAINER_TEST_SETTING, GPU_PRODUCT_LABEL, MODEL_PARAMS_ANNOTATION } from "./naming.ts";
import { checkPolicy, type Policy } from "./policy.ts";
import { sourceNetworkProblem } from "./sourceNetworks.ts";

export interface ValidationOutcome {
  ok: boolean;
  reason: ReasonName;
  message: string;
  /** Warnings that do not stop the run (also sent as Warning events). */
  warnings: string[];
  /** The GPU product the run was checked against, when known. */
  gpuProduct: string | undefined;
  /** The memory estimate in bytes, when the model size is known (see memoryFit.ts). */
  memoryEstimate?: number | undefined;
  /**
   * Set when a GPU run trains on the CPU under the test-only setting: the words status shows
   * ("training on CPU: test setting testing.cpuTrainerForGpuRuns").
   */
  trainsOnCpu?: string | undefined;
}

export interface ValidationContext {
  /** The GPU product of the cluster's default pool (operator config), if any. */
  defaultGpuProduct?: string | undefined;
  /** The admin's placement policy; absent: not checked (unit tests of other checks). */
  policy?: Policy | undefined;
  /**
   * Every trainer pod has a memory limit: spec.resources.memory, else `default` (chart
   * trainer.defaultMemory); a run with neither is refused. Absent: not checked.
   */
  memory?: { default: string | undefined } | undefined;
  /** Non-public networks that sources may point into (operator policy). */
  allowedSourceNetworks?: readonly Cidr[];
  /** TEST ONLY (chart testing.cpuTrainerForGpuRuns): GPU runs train on the CPU trainer. */
  cpuTrainerForGpuRuns?: boolean | undefined;
}

/** spec.resources.gpuProduct, else a nvidia.com/gpu.product node selector, else the pool default. */
export function effectiveGpuProduct(lft: LoraFineTune, ctx: ValidationContext): string | undefined {
  const r = lft.spec.resources;
  if (r.gpus === 0) return undefined;
  return r.gpuProduct ?? r.nodeSelector?.[GPU_PRODUCT_LABEL] ?? ctx.defaultGpuProduct;
}

export function validateForCluster(
  lft: LoraFineTune,
  ctx: ValidationContext = {},
): ValidationOutcome {
  const outcome = checkForCluster(lft, ctx);
  if (!outcome.ok || !ctx.cpuTrainerForGpuRuns || lft.spec.resources.gpus === 0) return outcome;
  // Never silent: the Validated condition and the GPU column say the GPUs are not used.
  const trainsOnCpu = `training on CPU: test setting ${CPU_TRAINER_TEST_SETTING}`;
  return {
    ...outcome,
    trainsOnCpu,
    message: `${trainsOnCpu} (the pod requests ${lft.spec.resources.gpus} nvidia.com/gpu but runs the CPU backend; never set on a real GPU pool)${outcome.message ? `; ${outcome.message}` : ""}`,
  };
}

function checkForCluster(lft: LoraFineTune, ctx: ValidationContext): ValidationOutcome {
  const { spec } = lft;
  const product = effectiveGpuProduct(lft, ctx);
  const warnings: string[] = [];
  const notes: string[] = [];
  // Only the reasons the CRD's description lists for a False Validated condition.
  const fail = (reason: ValidationFailureReason, message: string): ValidationOutcome => ({
    ok: false,
    reason,
    message,
    warnings,
    gpuProduct: product,
  });

  const network = sourceNetworkProblem(lft, ctx.allowedSourceNetworks ?? []);
  if (network) return fail(Reason.InvalidSpec, network);

  const size = modelSizeOf(lft);
  if (!size.ok) return fail(Reason.InvalidSpec, size.message);

  if (ctx.policy) {
    const policy = checkPolicy(spec, ctx.policy, ctx.defaultGpuProduct);
    if (!policy.ok) return fail(Reason.PolicyViolation, policy.message);
  }
  if (ctx.memory && ctx.memory.default === undefined && spec.resources.memory === undefined)
    return fail(
      Reason.InvalidSpec,
      "spec.resources.memory is required: every trainer pod gets a memory limit, and this cluster sets no default (chart value trainer.defaultMemory)",
    );

  if (spec.resources.gpus === 0) {
    return {
      ok: true,
      reason: Reason.SpecValid,
      message: "CPU run: no GPU checks apply",
      warnings,
      gpuProduct: undefined,
    };
  }
  if (product === undefined) {
    notes.push("no GPU product named (resources.gpuProduct): precision and memory not checked");
    return {
      ok: true,
      reason: Reason.SpecValid,
      message: notes.join("; "),
      warnings,
      gpuProduct: product,
    };
  }

  if (spec.training.precision === "bf16" && productLacksBf16(product)) {
    return fail(
      Reason.PrecisionUnsupported,
      `training.precision bf16 needs compute capability >= 8.0, and ${product} has none; use fp16 (dynamic loss scaling) or fp32`,
    );
  }

  const info = gpuInfo(product);
  if (!info) {
    notes.push(`GPU product ${product} is not in the GPU table: memory fit not checked`);
    return {
      ok: true,
      reason: Reason.SpecValid,
      message: notes.join("; "),
      warnings,
      gpuProduct: product,
    };
  }

  const precision =
    spec.training.precision === "auto" ? (info.bf16 ? "bf16" : "fp16") : spec.training.precision;
  const params = size.size?.params;

  if (
    spec.training.quantization === "int8" &&
    info.family.token.startsWith("V100") &&
    params !== undefined &&
    params >= 13e9
  ) {
    warnings.push(
      `int8 base weights on ${product} for a ${(params / 1e9).toFixed(0)}B model are known to overflow in the last layers; prefer fp16 with gradientCheckpointing, or nf4`,
    );
  }

  let memoryEstimate: number | undefined;
  if (params === undefined) {
    notes.push(
      `model size unknown (set the annotation ${MODEL_PARAMS_ANNOTATION}, e.g. "7e9"): memory fit not checked`,
    );
  } else {
    const estimate = estimateMemory(params, spec, precision);
    const capacity = info.memoryGiB * GiB;
    const where = `${(params / 1e9).toPrecision(3)}B params from ${size.size?.source}, ${precision}, quantization ${spec.training.quantization}, gradientCheckpointing ${spec.training.gradientCheckpointing}, cutoffLen ${spec.dataset.cutoffLen}, microBatchSize ${spec.training.microBatchSize}`;
    if (estimate.total > capacity) {
      const hints = [
        spec.training.gradientCheckpointing ? undefined : "training.gradientCheckpointing: true",
        spec.training.microBatchSize > 1 ? "a smaller training.microBatchSize" : undefined,
        spec.training.quantization === "none" ? "training.quantization int8 or nf4" : undefined,
        "a smaller dataset.cutoffLen",
        "a GPU with more memory",
      ].filter((h): h is string => h !== undefined);
      return fail(
        Reason.InsufficientGPUMemory,
        `needs about ${gib(estimate.total)} GiB but ${product} has ${info.memoryGiB} GiB: over by ${gib(estimate.total - capacity)} GiB (${describeEstimate(estimate)}; ${where}). Try ${hints.join(", ")}`,
      );
    }
    notes.push(`fits ${product}: about ${gib(estimate.total)} of ${info.memoryGiB} GiB (${where})`);
    memoryEstimate = estimate.total;
  }

  if (warnings.length > 0) {
    return {
      ok: true,
      reason: Reason.QuantizationWarning,
      message: [...warnings, ...notes].join("; "),
      warnings,
      gpuProduct: product,
      memoryEstimate,
    };
  }
  return {
    ok: true,
    reason: Reason.SpecValid,
    message: notes.join("; "),
    warnings,
    gpuProduct: product,
    memoryEstimate,
  };
}
