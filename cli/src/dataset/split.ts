/**
 * Seeded shuffles and the train/validation split. The generator is SplitMix32-seeded
 * Mulberry32: tiny, fast, and the same sequence on every platform for a given seed.
 */
export function seededRandom(seed: number): () => number {
  let s = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffledIndices(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = idx[i] as number;
    idx[i] = idx[j] as number;
    idx[j] = t;
  }
  return idx;
}

/** The validation size actually used: valSetSize, capped at a fifth of the records. */
export function effectiveValSize(nRecords: number, valSetSize: number): number {
  return Math.max(0, Math.min(valSetSize, Math.floor(nRecords / 5)));
}

/**
 * Splits items into train and validation with a seeded shuffle. Both parts keep the order of the
 * shuffle, so the same seed and data always give the same split.
 */
export function splitTrainVal<T>(
  items: readonly T[],
  valSetSize: number,
  seed: number,
): { train: T[]; val: T[] } {
  const nVal = effectiveValSize(items.length, valSetSize);
  const order = shuffledIndices(items.length, seed);
  const val = order.slice(0, nVal).map((i) => items[i] as T);
  const train = order.slice(nVal).map((i) => items[i] as T);
  return { train, val };
}
