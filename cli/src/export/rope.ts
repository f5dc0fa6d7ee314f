/**
 * RoPE tables in float32, computed the way transformers' LlamaRotaryEmbedding does (and the core's
 * rope_tables): inv_freq = 1 / theta^(2i/d) in float32, llama3 rope_scaling applied to inv_freq,
 * angle = float32(position * inv_freq), cos/sin of that angle rounded to float32.
 */
import type { LlamaConfig } from "./hfModel.ts";

const f = Math.fround;

export function invFreq(c: LlamaConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  const base = f(c.ropeTheta);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(base ** f((2 * i) / c.headDim)));
  const s = c.llama3;
  if (s) {
    const lowWavelen = s.originalMax / s.lowFreq;
    const highWavelen = s.originalMax / s.highFreq;
    for (let i = 0; i < half; i++) {
      const fr = inv[i] as number;
      const wavelen = f(f(2 * Math.PI) / fr);
      const low = wavelen > lowWavelen ? f(fr / f(s.factor)) : fr;
      const ratio = f(f(s.originalMax) / wavelen);
      const smooth = f(f(ratio - f(s.lowFreq)) / f(s.highFreq - s.lowFreq));
      const smoothed = f(f(f(f(1 - smooth) * low) / f(s.factor)) + f(smooth * low));
      const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      inv[i] = medium ? smoothed : low;
    }
  }
  return inv;
}

/** cos and sin, each [positions, head_dim / 2] row-major. */
export function ropeTables(
  c: LlamaConfig,
  positions: number,
): { cos: Float32Array; sin: Float32Array } {
  const inv = invFreq(c);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let t = 0; t < positions; t++)
    for (let i = 0; i < half; i++) {
      const angle = f(t * (inv[i] as number));
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  return { cos, sin };
}
