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
  /** Whether ids are memoized per word (see createTextEncoder). */
  readonly memo: boolean;
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

/** Words (pre-tokenized pieces) whose ids are remembered; past this the memo starts over. */
const MEMO_LIMIT = 1 << 20;

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
  const slow = (text: string) => tok.encode(text, { add_special_tokens: false }).ids;

  // A memo of ids per pre-tokenized word, in front of the library's BPE model: a dataset repeats
  // its words, and the library's own cache (an LRU of 10,000) keeps too few of them. The
  // normalizer, the pre-tokenizer and the BPE are still the library's; only texts that hold an
  // added token's text take the library's whole encode() path, which handles those.
  const added =
    (tokenizerJson.added_tokens as { content?: string; normalized?: boolean }[] | undefined) ?? [];
  const specials = added
    .map((t) => t.content)
    .filter((c): c is string => typeof c === "string" && c.length > 0);
  const model = tokenizerJson.model as {
    byte_fallback?: boolean;
    fuse_unk?: boolean;
    vocab?: Record<string, number>;
  };
  const allBytes =
    model.byte_fallback === true &&
    Array.from(
      { length: 256 },
      (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
    ).every((t) => model.vocab?.[t] !== undefined);
  const normalizer = tok.normalizer;
  const preTokenizer = tok.pre_tokenizer;
  const memoSafe =
    preSplit &&
    normalizer !== null &&
    preTokenizer !== null &&
    added.every((t) => t.normalized !== true) &&
    !tokenizerConfig.remove_space &&
    !tokenizerConfig.do_lowercase_and_remove_accent &&
    // fuse_unk joins unknown tokens across words; with every byte in the vocabulary there are none
    (model.fuse_unk !== true || allBytes);
  const bpe = tok.model;
  const sameIds = added.every(
    (t) =>
      typeof t.content !== "string" ||
      model.vocab?.[t.content] === undefined ||
      model.vocab[t.content] === (t as { id?: number }).id,
  );
  let encode = slow;
  const useMemo = memoSafe && bpe !== null && sameIds;
  if (useMemo && bpe !== null) {
    const unk = bpe.unk_token_id;
    const memo = new Map<string, number[]>();
    // The library's BPE model on one pre-tokenized word, ids looked up as Tokenizer.encode does.
    const remember = (word: string): number[] => {
      const ids = bpe._call([word]).map((t: string) => bpe.tokens_to_ids.get(t) ?? (unk as number));
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(word, ids);
      return ids;
    };
    encode = (text) => {
      for (const s of specials) if (text.includes(s)) return slow(text);
      if (text.length === 0) return [];
      const normalized = normalizer.normalize(text);
      if (normalized.length === 0) return [];
      const out: number[] = [];
      for (const word of preTokenizer.pre_tokenize(normalized)) {
        const ids = memo.get(word) ?? remember(word);
        for (const id of ids) out.push(id);
      }
      return out;
    };
  }
  return {
    encode,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: false }),
    tokenToId: (t) => tok.token_to_id(t),
    idToToken: (id) => tok.id_to_token(id),
    size,
    preSplit,
    memo: useMemo,
  };
}
