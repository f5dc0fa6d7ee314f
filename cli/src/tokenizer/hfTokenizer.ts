/**
 * The only module that imports @huggingface/tokenizers. It turns a model's tokenizer.json into
 * something that maps text to ids, and nothing else: special-token policy lives in tokenizer.ts.
 */
import { Tokenizer } from "@huggingface/tokenizers";

export interface TextEncoder {
  /** Token ids of `text`, without any special tokens added around it. */
  encode(text: string): number[];
  decode(ids: number[]): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Size of the id space (the largest id + 1, added tokens included). */
  readonly size: number;
  /** Whether the whitespace pre-split (see below) is in use. */
  readonly preSplit: boolean;
}

const METASPACE = "\u2581";

/**
 * SentencePiece-style BPE tokenizer.json files (Llama 1/2, stories260K) have no pre-tokenizer, so
 * a whole prompt is one BPE "word" and the library's per-word cache never hits. When no token in
 * the vocabulary has a metaspace after a non-metaspace character, no merge can cross such a
 * boundary, so cutting the normalized text there gives exactly the same tokens (the property is
 * checked here on the real vocabulary, and the goldens compare with the Rust library).
 */
function canPreSplit(json: Record<string, unknown>): boolean {
  if (json.pre_tokenizer !== null && json.pre_tokenizer !== undefined) return false;
  const model = json.model as { type?: string; vocab?: Record<string, number> } | undefined;
  if (model?.type !== "BPE" || model.vocab === undefined) return false;
  const crossing = new RegExp(`[^${METASPACE}]${METASPACE}`);
  for (const piece of Object.keys(model.vocab)) if (crossing.test(piece)) return false;
  const added = (json.added_tokens as { content?: string }[] | undefined) ?? [];
  for (const t of added)
    if (typeof t.content === "string" && crossing.test(t.content)) return false;
  return true;
}

export function createTextEncoder(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
): TextEncoder {
  const preSplit = canPreSplit(tokenizerJson);
  const json = preSplit
    ? {
        ...tokenizerJson,
        pre_tokenizer: {
          type: "Split",
          pattern: { Regex: `${METASPACE}*[^${METASPACE}]+` },
          behavior: "Isolated",
          invert: false,
        },
      }
    : tokenizerJson;
  const tok = new Tokenizer(json, tokenizerConfig);
  const vocab = tok.get_vocab(true);
  let size = 0;
  for (const id of vocab.values()) if (id + 1 > size) size = id + 1;
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: false }),
    tokenToId: (t) => tok.token_to_id(t),
    idToToken: (id) => tok.id_to_token(id),
    size,
    preSplit,
  };
}
