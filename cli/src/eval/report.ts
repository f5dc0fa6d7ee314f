/**
 * From generations and scores to the numbers of eval.json (docs/CONTRACTS.md §5): per-example
 * metrics, then the per-model means. Pure: no files, no core.
 */
import type { EvalExample } from "./examples.ts";
import { exactMatch, mean, repeatsPrompt, rougeL, tokenF1 } from "./metrics.ts";

export type ModelKey = "base" | "tuned";

/** One model's answer to one example. */
export interface Generation {
  text: string;
  /** Generated tokens (the stop token not counted). */
  tokens: number;
  stop: "stop_token" | "max_new_tokens";
}

export interface Score {
  targetTokens: number;
  lossSum: number;
}

export interface AnswerResult extends Generation {
  exactMatch: number;
  tokenF1: number;
  rougeL: number;
  repeatsPrompt: boolean;
  /** Mean loss of the reference response given the prompt (natural log), null if not scored. */
  loss: number | null;
}

export interface ModelMetrics {
  /** Token-weighted mean loss of the reference responses (the trainer's validation loss). */
  evalLoss: number | null;
  /** exp(evalLoss). */
  perplexity: number | null;
  exactMatch: number;
  tokenF1: number;
  rougeL: number;
  promptRepetition: number;
  /** Share of answers that ended with a stop token (not cut off at the token limit). */
  stopped: number;
  /** Mean generated tokens per answer. */
  meanLength: number;
}

export const METRIC_ROWS: {
  key: keyof ModelMetrics;
  label: string;
  better: "higher" | "lower" | null;
}[] = [
  { key: "evalLoss", label: "eval loss", better: "lower" },
  { key: "perplexity", label: "perplexity", better: "lower" },
  { key: "exactMatch", label: "exact match", better: "higher" },
  { key: "tokenF1", label: "token F1", better: "higher" },
  { key: "rougeL", label: "ROUGE-L", better: "higher" },
  { key: "promptRepetition", label: "prompt repetition", better: "lower" },
  { key: "stopped", label: "stopped", better: "higher" },
  { key: "meanLength", label: "mean length (tokens)", better: null },
];

export function answerResult(
  ex: EvalExample,
  gen: Generation,
  score: Score | undefined,
  markers: readonly string[],
): AnswerResult {
  return {
    ...gen,
    exactMatch: exactMatch(ex.reference, gen.text),
    tokenF1: tokenF1(ex.reference, gen.text),
    rougeL: rougeL(ex.reference, gen.text).fmeasure,
    repeatsPrompt: repeatsPrompt(
      gen.text,
      { instruction: ex.instruction, input: ex.input },
      markers,
    ).repeats,
    loss: score && score.targetTokens > 0 ? score.lossSum / score.targetTokens : null,
  };
}

export function modelMetrics(
  answers: readonly AnswerResult[],
  scores: readonly Score[],
): ModelMetrics {
  let lossSum = 0;
  let tokens = 0;
  for (const s of scores) {
    lossSum += s.lossSum;
    tokens += s.targetTokens;
  }
  const evalLoss = tokens > 0 ? lossSum / tokens : null;
  const m = (f: (a: AnswerResult) => number) => mean(answers.map(f)) ?? 0;
  return {
    evalLoss,
    perplexity: evalLoss === null ? null : Math.exp(evalLoss),
    exactMatch: m((a) => a.exactMatch),
    tokenF1: m((a) => a.tokenF1),
    rougeL: m((a) => a.rougeL),
    promptRepetition: m((a) => (a.repeatsPrompt ? 1 : 0)),
    stopped: m((a) => (a.stop === "stop_token" ? 1 : 0)),
    meanLength: m((a) => a.tokens),
  };
}
