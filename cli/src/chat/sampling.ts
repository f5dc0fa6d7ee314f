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

export function chooseToken(
  logits: Float32Array,
  seen: ReadonlySet<number>,
  s: Sampling,
  random: () => number,
): number {
  const scores = Float64Array.from(logits);
  if (s.repetitionPenalty !== 1)
    for (const id of seen) {
      const v = scores[id] as number;
      scores[id] = v < 0 ? v * s.repetitionPenalty : v / s.repetitionPenalty;
    }
  if (s.temperature === 0) {
    let best = 0;
    for (let i = 1; i < scores.length; i++)
      if ((scores[i] as number) > (scores[best] as number)) best = i;
    return best;
  }
  // candidates by score, highest first (a stable sort keeps lower ids first among ties)
  let order = Array.from(scores.keys()).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number),
  );
  if (s.topK > 0) order = order.slice(0, s.topK);
  const top = scores[order[0] as number] as number;
  let probs = order.map((i) => Math.exp(((scores[i] as number) - top) / s.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  if (s.topP < 1) {
    // keep the smallest prefix whose probability reaches top_p (at least one token)
    let mass = 0;
    let keep = 0;
    while (keep < probs.length && mass < s.topP * sum) mass += probs[keep++] as number;
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, order.length);
    sum = probs.reduce((a, b) => a + b, 0);
  }
  let r = random() * sum;
  for (let k = 0; k < order.length; k++) {
    r -= probs[k] as number;
    if (r <= 0) return order[k] as number;
  }
  return order[order.length - 1] as number;
}
