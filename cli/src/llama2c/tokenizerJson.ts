/**
 * Builds a Hugging Face tokenizer.json (a Llama-style BPE with byte fallback) from a sentencepiece
 * BPE model, so that the library encodes exactly as sentencepiece does:
 *  - normalizer: sentencepiece's remove_extra_whitespaces, the dummy prefix, ' ' -> '\u2581';
 *  - model: BPE over the same pieces; a merge (l, r) for every split of a piece into two pieces,
 *    ranked by the merged piece's score (sentencepiece merges the highest-scoring pair first);
 *  - post-processor: BOS in front, as `tokenizer(text)` does for Llama.
 */
import { SentencePieceError, type SentencePieceModel } from "./sentencepiece.ts";

export function buildTokenizerJson(sp: SentencePieceModel, file: string): Record<string, unknown> {
  if (sp.modelType !== "bpe")
    throw new SentencePieceError(
      file,
      `model_type is ${sp.modelType}; only BPE sentencepiece models are converted`,
    );
  if (sp.normalizer.hasCharsmap || !["identity", ""].includes(sp.normalizer.name))
    throw new SentencePieceError(
      file,
      `normalization rule "${sp.normalizer.name}" is not supported (only "identity", as llama2.c and Llama use)`,
    );
  if (!sp.normalizer.escapeWhitespaces)
    throw new SentencePieceError(
      file,
      "escape_whitespaces is off; only '\u2581'-escaped models are supported",
    );
  const piece = (id: number, what: string) => {
    const p = sp.pieces[id];
    if (!p) throw new SentencePieceError(file, `${what} id ${id} is not a piece`);
    return p.piece;
  };
  const unk = piece(sp.unkId, "unk");
  const bos = piece(sp.bosId, "bos");
  piece(sp.eosId, "eos");

  const vocab: Record<string, number> = {};
  sp.pieces.forEach((p, id) => {
    if (Object.hasOwn(vocab, p.piece))
      throw new SentencePieceError(file, `piece "${p.piece}" appears twice`);
    vocab[p.piece] = id;
  });

  // Merges: every way to cut a mergeable piece into two pieces of the vocabulary. Control,
  // unknown and byte pieces never come out of a merge in sentencepiece, so they are skipped.
  const mergeable = (type: string) => type === "normal" || type === "user_defined";
  const candidates: { left: string; right: string; score: number; l: number; r: number }[] = [];
  sp.pieces.forEach((p) => {
    if (!mergeable(p.type)) return;
    const chars = Array.from(p.piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join("");
      const right = chars.slice(k).join("");
      const l = vocab[left];
      const r = vocab[right];
      if (l !== undefined && r !== undefined)
        candidates.push({ left, right, score: p.score, l, r });
    }
  });
  candidates.sort((a, b) => b.score - a.score || a.l - b.l || a.r - b.r);
  const merges = candidates.map((c) => [c.left, c.right]);

  const normalizers: Record<string, unknown>[] = [];
  // sentencepiece's remove_extra_whitespaces, as its normalizer does it: runs of ' ' collapse to
  // one and a leading ' ' goes before the dummy prefix is added; after escaping, every trailing
  // '\u2581' goes (a literal '\u2581' in the text included).
  if (sp.normalizer.removeExtraWhitespaces) {
    normalizers.push(
      { type: "Replace", pattern: { Regex: " {2,}" }, content: " " },
      { type: "Replace", pattern: { Regex: "\\A " }, content: "" },
    );
  }
  if (sp.normalizer.addDummyPrefix) normalizers.push({ type: "Prepend", prepend: "\u2581" });
  normalizers.push({ type: "Replace", pattern: { String: " " }, content: "\u2581" });
  if (sp.normalizer.removeExtraWhitespaces)
    normalizers.push({ type: "Replace", pattern: { Regex: "\u2581+\\z" }, content: "" });

  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const addedTokens = sp.pieces
    .map((p, id) => ({ p, id }))
    .filter(({ p }) => p.type === "control" || p.type === "unknown")
    .map(({ p, id }) => special(id, p.piece));

  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: { type: "Sequence", normalizers },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [sp.bosId], tokens: [bos] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: sp.byteFallback,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** tokenizer_config.json for the same tokenizer. */
export function buildTokenizerConfig(
  sp: SentencePieceModel,
  maxLength: number,
): Record<string, unknown> {
  const p = (id: number) => sp.pieces[id]?.piece;
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    add_bos_token: true,
    add_eos_token: false,
    bos_token: p(sp.bosId),
    eos_token: p(sp.eosId),
    unk_token: p(sp.unkId),
    pad_token: sp.padId >= 0 ? p(sp.padId) : null,
    model_max_length: maxLength,
    clean_up_tokenization_spaces: false,
    legacy: true,
  };
}
