// A memory estimate for LoRA training of a Llama-family model on one GPU, made before a
// Job exists, so that a run that cannot fit is refused with numbers instead of dying with
// CUDA OOM an hour later. It is an estimate (±15 %), deliberately on the generous side of
// what the native trainer allocates:
//
//   weights      P × bytes per weight (fp32 4, fp16/bf16 2, int8 1, nf4 0.5 + block scales)
//   LoRA         trainable params × 16 B (fp32 weight + gradient + AdamW m and v)
//   activations  per layer per token, 16-bit: h·(34 + 5·a·s/h) bytes (Korthikanti et al.
//                2022, no flash attention); with gradient checkpointing only each layer's
//                input (2·h bytes) is kept, plus one layer recomputed in full
//   logits       micro-batch × seq × vocab × 4 B, twice (logits and their gradient)
//   runtime      1 GiB for the CUDA context, cuBLAS workspace and fragmentation
//
// The shape (hidden size h, layers L, heads a) is derived from the parameter count with
// Llama's proportions (L = h/128, head dim 128, P ≈ 12·L·h²): 7e9 → h 4224, L 33.

import { gpuInfo, type LoraFineTuneSpec } from "@loraforge/crds";

export const GiB = 1024 ** 3;
const VOCAB = 32000;
const RUNTIME_OVERHEAD = 1 * GiB;

export interface ModelShape {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
}

export function llamaShape(params: number): ModelShape {
  const hidden = Math.max(64, Math.round((params * 128) / 12) ** (1 / 3));
  const layers = Math.max(1, Math.round(hidden / 128));
  const heads = Math.max(1, Math.round(hidden / 128));
  // SwiGLU MLP: 2/3 of 4h, rounded up to a multiple of 256 as Llama does.
  const intermediate = Math.ceil((8 * hidden) / 3 / 256) * 256;
  return { hidden, layers, heads, intermediate };
}

export interface MemoryEstimate {
  weights: number;
  lora: number;
  activations: number;
  logits: number;
  runtime: number;
  total: number;
  trainableParams: number;
}

/** Bytes of activation memory per element for the compute precision. */
function activationBytes(precision: string): number {
  return precision === "fp32" ? 4 : 2;
}

function weightBytes(precision: string, quantization: string): number {
  if (quantization === "int8") return 1;
  if (quantization === "nf4") return 0.5 + 0.0625; // 4 bits + an fp16 scale per 64 weights (~)
  return precision === "fp32" ? 4 : 2;
}

/**
 * `precision` is the effective one ("auto" resolved by the caller against the GPU).
 */
export function estimateMemory(
  params: number,
  spec: LoraFineTuneSpec,
  precision: "fp32" | "fp16" | "bf16",
): MemoryEstimate {
  const shape = llamaShape(params);
  const { hidden: h, layers: L, heads: a, intermediate: I } = shape;
  const r = spec.lora.r;
  const perModule: Record<string, number> = {
    q_proj: r * (h + h),
    k_proj: r * (h + h),
    v_proj: r * (h + h),
    o_proj: r * (h + h),
    gate_proj: r * (h + I),
    up_proj: r * (h + I),
    down_proj: r * (I + h),
  };
  const trainableParams =
    L * spec.lora.targetModules.reduce((sum, m) => sum + (perModule[m] ?? 0), 0);

  const s = spec.dataset.cutoffLen;
  const b = spec.training.microBatchSize;
  const scale = activationBytes(precision) / 2;
  const fullLayer = s * b * h * (34 + (5 * a * s) / h) * scale;
  const activations = spec.training.gradientCheckpointing
    ? L * (2 * s * b * h * scale) + fullLayer
    : L * fullLayer;

  const weights = params * weightBytes(precision, spec.training.quantization);
  const lora = trainableParams * 16;
  const logits = 2 * b * s * VOCAB * 4;
  const total = weights + lora + activations + logits + RUNTIME_OVERHEAD;
  return { weights, lora, activations, logits, runtime: RUNTIME_OVERHEAD, total, trainableParams };
}

export const gib = (bytes: number) => (bytes / GiB).toFixed(1);

export function describeEstimate(e: MemoryEstimate): string {
  return `weights ${gib(e.weights)} GiB + LoRA/optimizer ${gib(e.lora)} GiB + activations ${gib(e.activations)} GiB + logits ${gib(e.logits)} GiB + runtime ${gib(e.runtime)} GiB`;
}

/**
 * The estimate against the ResourceFlavor Kueue admitted the run to, whose GPU product (its
 * nvidia.com/gpu.product node label, which Kueue writes into the Job's nodeSelector) may differ
 * from the one validation assumed when several flavors serve a queue.
 */
export function flavorFit(
  flavor: string,
  product: string | undefined,
  totalBytes: number | undefined,
): string {
  if (!product) return `flavor ${flavor} names no GPU product: memory fit not checked against it`;
  const info = gpuInfo(product);
  if (!info) return `flavor ${flavor} (${product}): not in the GPU table, memory fit not checked`;
  if (totalBytes === undefined)
    return `flavor ${flavor} (${product}, ${info.memoryGiB} GiB): model size unknown, memory fit not checked`;
  const fits = totalBytes <= info.memoryGiB * GiB;
  return `flavor ${flavor} (${product}): ${fits ? "fits" : "does NOT fit"}, about ${gib(totalBytes)} of ${info.memoryGiB} GiB`;
}
