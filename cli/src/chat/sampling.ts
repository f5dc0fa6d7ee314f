/**
 * Choosing the next token from logits, in the order transformers' generate applies its
 * processors: repetition penalty (every distinct token of prompt and output), temperature, top-k,
 * top-p, then a draw; temperature 0 is greedy (argmax after the penalty).
 */
import { z } from "zod";

export const SamplingSchema = z.object({
  temperature: z.coerce.number().min(0).max(10).default(0),
  topK: z.coerce.number().int().min(0).default(0),
  topP: z.coerce.number().gt(0).max(1).default(1),
  repetitionPenalty: z.coerce.number().positive().max(10).default(1),
  maxNewTokens: z.coerce.number().int().min(1).max(4096).default(128),
  seed: z.coerce.number().int().min(0).default(0),
});
export type Sampling = z.infer<typeof SamplingSchema>;

/** mulberry32: a small seeded generator, so a seed gives the same text again. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The scores transformers' processors leave, as the core's `process_logits` (native/src/sampling.cpp)
 * computes them, in float32 like the torch ops on float32 logits: the repetition penalty on every
 * distinct token seen (logit / p when positive, × p when negative); with temperature > 0, the
 * logits / temperature, then top-k (tokens below the k-th largest removed, ties with it kept) and
 * top-p (from the least likely up, tokens whose cumulative probability is <= 1 - top_p removed;
 * the most likely always kept). Removed tokens are -Infinity. A new array; `logits` is untouched.
 */
export function processLogits(
  logits: Float32Array,
  seen: ReadonlySet<number>,
  s: Sampling,
): Float32Array {
  const l = Float32Array.from(logits);
  const V = l.length;
  if (s.repetitionPenalty !== 1) {
    const p = Math.fround(s.repetitionPenalty);
    for (const id of seen) {
      if (!(id >= 0 && id < V)) continue;
      const v = l[id] as number;
      l[id] = v < 0 ? v * p : v / p; // a Float32Array store rounds to float32
    }
  }
  if (s.temperature <= 0) return l;
  const t = Math.fround(s.temperature);
  for (let i = 0; i < V; i++) l[i] = (l[i] as number) / t;
  if (s.topK > 0 && s.topK < V) {
    const kth = Float32Array.from(l).sort().reverse()[s.topK - 1] as number;
    for (let i = 0; i < V; i++) if ((l[i] as number) < kth) l[i] = Number.NEGATIVE_INFINITY;
  }
  if (s.topP < 1) {
    // ascending by score; a stable sort keeps lower ids first among ties, as the core's
    const idx = Array.from(l.keys()).sort((a, b) => (l[a] as number) - (l[b] as number));
    const mx = l[idx[V - 1] as number] as number;
    const e = (v: number) => (v === Number.NEGATIVE_INFINITY ? 0 : Math.exp(v - mx));
    let sum = 0;
    for (let i = 0; i < V; i++) sum += e(l[i] as number);
    let cum = 0;
    for (let r = 0; r < V - 1; r++) {
      const i = idx[r] as number;
      cum += e(l[i] as number) / sum;
      if (cum <= 1 - s.topP) l[i] = Number.NEGATIVE_INFINITY;
      else break; // cumulative sums only grow
    }
  }
  return l;
}

/**
 * The next token: the first argmax after the penalty at temperature 0, else a draw from the
 * softmax of `processLogits` (inverse CDF in token order with `random()` in [0, 1)).
 */
export function chooseToken(
  logits: Float32Array,
  seen: ReadonlySet<number>,
  s: Sampling,
  random: () => number,
): number {
  const l = processLogits(logits, seen, s);
  let best = 0;
  for (let i = 1; i < l.length; i++) if ((l[i] as number) > (l[best] as number)) best = i;
  if (s.temperature <= 0) return best;
  const mx = l[best] as number;
  const e = Float64Array.from(l, (v) => (v === Number.NEGATIVE_INFINITY ? 0 : Math.exp(v - mx)));
  const u = random() * e.reduce((a, b) => a + b, 0);
  let cum = 0;
  let last = best;
  for (let i = 0; i < e.length; i++) {
    if (e[i] === 0) continue;
    cum += e[i] as number;
    last = i;
    if (u < cum) return i;
  }
  return last; // rounding at the top end
}
