/** "Did you mean" for commands, flags and spec keys: the nearest known word by edit distance. */

/** Levenshtein distance (insert, delete, substitute), plus a swap of two neighbours as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = best;
    }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The candidate nearest to `word`, when it is near enough to be a typo: at most a third of the
 * word's letters wrong (at least one), or `word` is a prefix of exactly one candidate.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates];
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of list) {
    const dist = editDistance(lower, c.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  if (best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3))) return best;
  const prefixed = list.filter((c) => lower.length >= 2 && c.toLowerCase().startsWith(lower));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** " (did you mean X?)" or "". */
export function didYouMean(word: string, candidates: Iterable<string>, show = (s: string) => s) {
  const c = closest(word, candidates);
  return c === undefined ? "" : `; did you mean ${show(c)}?`;
}
