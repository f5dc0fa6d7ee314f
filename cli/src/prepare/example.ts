import type { CompiledTemplate } from "../prompt/templates.ts";
import type { ModelTokenizer } from "../tokenizer/tokenizer.ts";

export interface ExampleOptions {
  cutoffLen: number;
  trainOnInputs: boolean;
  addEos: boolean;
}

/** One training example: token ids and the per-token loss mask (1 = a training target). */
export interface Example {
  ids: number[];
  mask: Uint8Array;
  /** Tokens before truncation (prompt + response + end token when asked). */
  fullLength: number;
  truncated: boolean;
  /** Tokens of the prompt part (masked when trainOnInputs is false), after truncation. */
  promptLength: number;
}

/**
 * alpaca-lora's generate_and_tokenize_prompt, with the same ids and the same labels:
 *  - the full text (prompt + response) is tokenized, truncated on the right at cutoffLen,
 *    and EOS appended when it is not already last and there is room;
 *  - without trainOnInputs, the first len(tokenize(prompt)) tokens are not trained on
 *    (their labels are -100 in alpaca-lora; mask 0 here).
 * EOS is appended only when addEos (alpaca-lora always appends it to the full text). "EOS" is the
 * model's end token (tokenizer.endId): the tokenizer's EOS, except for a model whose generation
 * stops on other tokens only (a llama2.c import ends with BOS), where teaching EOS would teach
 * nothing the generator stops on.
 */
export function buildExample(
  record: { instruction: string; input: string; output: string },
  template: CompiledTemplate,
  tokenizer: ModelTokenizer,
  options: ExampleOptions,
): Example {
  const { cutoffLen } = options;
  const fullIds = tokenizer.encode(
    template.render(record.instruction, record.input, record.output),
  );
  const wantsEos = options.addEos && fullIds[fullIds.length - 1] !== tokenizer.endId;
  const fullLength = fullIds.length + (wantsEos ? 1 : 0);
  const ids = fullIds.length > cutoffLen ? fullIds.slice(0, cutoffLen) : fullIds;
  if (wantsEos && ids.length < cutoffLen) ids.push(tokenizer.endId);
  const mask = new Uint8Array(ids.length).fill(1);
  let promptLength = 0;
  if (!options.trainOnInputs) {
    const promptIds = tokenizer.encode(template.render(record.instruction, record.input));
    promptLength = Math.min(promptIds.length, cutoffLen, ids.length);
    mask.fill(0, 0, promptLength);
  }
  return { ids, mask, fullLength, truncated: fullLength > cutoffLen, promptLength };
}
