/**
 * Evaluation metrics over generated answers, as pure functions. Each one reproduces a reference
 * implementation exactly (same float64 value), checked on the golden pairs in
 * cli/test/golden/eval_metrics.json (written by cli/test/reference/eval_metrics.py):
 *
 * - exact match and token F1: the official SQuAD v2.0 evaluation script (`normalize_answer`,
 *   `compute_exact`, `compute_f1`);
 * - ROUGE-L: Google's `rouge-score` package, `RougeScorer(["rougeL"])` (default tokenizer, no
 *   stemmer), the F-measure.
 *
 * Python's `str.lower`, `\b`, `str.split()` and `string.punctuation` are spelled out below where
 * JavaScript's defaults differ (JS `\b` and `\s` are not Python's).
 */

// ---------------------------------------------------------------------------
// SQuAD: normalization, exact match, token F1
// ---------------------------------------------------------------------------

/** Python's `string.punctuation` (ASCII only). */
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

/**
 * Python's `str.isspace()` characters: what `str.split()` with no argument splits on. Unlike JS
 * `\s` it includes U+001C..U+001F and U+0085, and excludes U+FEFF.
 */
const PY_SPACE =
  "\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`, "u");

/** Python's `re` word character for str patterns: alphanumerics (letters, numbers) and `_`. */
const PY_WORD = "[\\p{L}\\p{N}_]";
/** `re.sub(r"\b(a|an|the)\b", " ", text)` with Python's Unicode `\b`. */
const ARTICLES = new RegExp(`(?<!${PY_WORD})(?:a|an|the)(?!${PY_WORD})`, "gu");

/** Python `s.split()`: split on runs of whitespace, no empty strings. */
export function pySplit(s: string): string[] {
  return s.split(PY_SPLIT).filter((t) => t.length > 0);
}

/** SQuAD `normalize_answer`: lower-case, drop punctuation, drop articles, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  const lower = s.toLowerCase();
  let noPunct = "";
  for (const ch of lower) if (!PUNCTUATION.has(ch)) noPunct += ch;
  return pySplit(noPunct.replace(ARTICLES, " ")).join(" ");
}

/** SQuAD v2.0 `compute_exact`: 1 when the normalized strings are equal, else 0. */
export function exactMatch(reference: string, prediction: string): number {
  return normalizeAnswer(reference) === normalizeAnswer(prediction) ? 1 : 0;
}

/**
 * SQuAD v2.0 `compute_f1`: F1 of the bags of normalized words. When either side has no words,
 * 1 if both have none, else 0.
 */
export function tokenF1(reference: string, prediction: string): number {
  const gold = pySplit(normalizeAnswer(reference));
  const pred = pySplit(normalizeAnswer(prediction));
  if (gold.length === 0 || pred.length === 0) return gold.length === pred.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of gold) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of pred) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = (1.0 * same) / pred.length;
  const recall = (1.0 * same) / gold.length;
  return (2 * precision * recall) / (precision + recall);
}

// ---------------------------------------------------------------------------
// ROUGE-L (rouge-score's rougeL, default tokenizer, no stemmer)
// ---------------------------------------------------------------------------

/**
 * rouge-score `tokenize.tokenize(text, stemmer=None)`: lower-case, every run of characters other
 * than a-z and 0-9 becomes a space, split, drop empty tokens.
 */
export function rougeTokens(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((t) => t.length > 0);
}

/** Length of the longest common subsequence of two token lists (O(n·m) time, O(m) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    row[0] = 0;
    for (let j = 1; j <= b.length; j++) {
      row[j] =
        a[i - 1] === b[j - 1]
          ? (prev[j - 1] as number) + 1
          : Math.max(prev[j] as number, row[j - 1] as number);
    }
    [prev, row] = [row, prev];
  }
  return prev[b.length] as number;
}

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** rouge-score `_score_lcs(target, prediction)` on the default tokens. */
export function rougeL(reference: string, prediction: string): RougeScore {
  const target = rougeTokens(reference);
  const pred = rougeTokens(prediction);
  if (target.length === 0 || pred.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsLength(target, pred);
  const precision = lcs / pred.length;
  const recall = lcs / target.length;
  const fmeasure = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0.0;
  return { precision, recall, fmeasure };
}

// ---------------------------------------------------------------------------
// Prompt repetition (the "prompt-repeater" failure of alpaca-lora)
// ---------------------------------------------------------------------------

/** Copied spans of at least this many words count as repeating the prompt. */
export const REPEAT_SPAN_WORDS = 8;
/** Instructions or inputs shorter than this many words are never matched as a span. */
export const REPEAT_MIN_SOURCE_WORDS = 4;

export interface RepetitionCheck {
  repeats: boolean;
  /** "template" (restarted the prompt template), "span" (copied words), or null. */
  reason: "template" | "span" | null;
}

/**
 * Whether a generated answer repeats its prompt. It does when either
 * 1. it contains one of `markers` (the template's own lines, e.g. "### Instruction:",
 *    "### Response:" or the preamble — see templateMarkers), i.e. it restarts the template; or
 * 2. for the instruction or the input (each a "source", as words by rougeTokens) with at least
 *    REPEAT_MIN_SOURCE_WORDS words: the answer contains k consecutive words that also appear
 *    consecutively in the source, where k = min(REPEAT_SPAN_WORDS, words in the source).
 */
export function repeatsPrompt(
  answer: string,
  prompt: { instruction: string; input?: string },
  markers: readonly string[],
): RepetitionCheck {
  if (markers.some((m) => m.length > 0 && answer.includes(m)))
    return { repeats: true, reason: "template" };
  const words = rougeTokens(answer);
  for (const source of [prompt.instruction, prompt.input ?? ""]) {
    const src = rougeTokens(source);
    if (src.length < REPEAT_MIN_SOURCE_WORDS) continue;
    const k = Math.min(REPEAT_SPAN_WORDS, src.length);
    if (words.length < k) continue;
    const spans = new Set<string>();
    for (let i = 0; i + k <= src.length; i++) spans.add(src.slice(i, i + k).join(" "));
    for (let i = 0; i + k <= words.length; i++)
      if (spans.has(words.slice(i, i + k).join(" "))) return { repeats: true, reason: "span" };
  }
  return { repeats: false, reason: null };
}

/**
 * The lines an answer must not contain: every non-empty line (trimmed) of the template's literal
 * text in both of its prompts, plus its response marker. For alpaca_short: "### Instruction:",
 * "### Input:", "### Response:".
 */
export function templateMarkers(template: {
  prompt_input: string;
  prompt_no_input: string;
  response_split: string;
}): string[] {
  const markers = new Set<string>([template.response_split.trim()]);
  for (const text of [template.prompt_input, template.prompt_no_input]) {
    const literal = text.replace(/\{instruction\}|\{input\}/g, "\n");
    for (const line of literal.split("\n")) {
      const t = line.replaceAll("{{", "{").replaceAll("}}", "}").trim();
      if (t) markers.add(t);
    }
  }
  markers.delete("");
  return [...markers];
}

// ---------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------

/** Mean of the values (left to right sum, as Python's sum()); null for none. */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}
