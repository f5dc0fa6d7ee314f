/**
 * The few samples of eval.json that status.evaluation carries for the pull-request comment (the
 * Action cannot read the run's volume). Bounded by the schema: at most EVAL_EXAMPLES_MAX, each
 * text cut to EVAL_EXAMPLE_TEXT_MAX characters.
 */
import { createHash } from "node:crypto";
import { EVAL_EXAMPLE_TEXT_MAX, EVAL_EXAMPLES_MAX, type EvalExampleStatus } from "@loraforge/crds";
import type { SampleRecord } from "./run.ts";

/** The digest that identifies a prompt across runs: of the uncut instruction and input. */
export function promptSha256(instruction: string, input: string): string {
  return createHash("sha256")
    .update(JSON.stringify([instruction, input]))
    .digest("hex");
}

/** `text` in at most `max` UTF-16 units, "…" marking a cut, never splitting a surrogate pair. */
export function cutText(text: string, max = EVAL_EXAMPLE_TEXT_MAX): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * The samples with the smallest prompt digests rather than the first ones: the base branch's run
 * and a pull request's run evaluate different splits when the dataset changed, and picking by
 * digest (a bottom-k sample) shows the same prompts in both whenever their splits share them.
 */
export function statusExamples(
  samples: readonly SampleRecord[],
  max = EVAL_EXAMPLES_MAX,
): EvalExampleStatus[] {
  return samples
    .map((s) => ({ s, digest: promptSha256(s.instruction, s.input) }))
    .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
    .slice(0, max)
    .map(({ s, digest }) => ({
      promptSha256: digest,
      instruction: cutText(s.instruction),
      input: cutText(s.input),
      reference: cutText(s.reference),
      base: cutText(s.base.text),
      ...(s.tuned ? { tuned: cutText(s.tuned.text) } : {}),
    }));
}
