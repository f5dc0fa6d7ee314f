/**
 * Reads the parts of a sentencepiece ModelProto (tok512.model) that a tokenizer.json needs, with a
 * minimal protobuf wire-format reader. Field numbers from sentencepiece_model.proto:
 *   ModelProto { 1: repeated SentencePiece pieces; 2: TrainerSpec; 3: NormalizerSpec }
 *   SentencePiece { 1: piece; 2: float score; 3: Type type (1 NORMAL, 2 UNKNOWN, 3 CONTROL,
 *                   4 USER_DEFINED, 5 UNUSED, 6 BYTE) }
 *   TrainerSpec { 3: model_type (1 UNIGRAM, 2 BPE); 35: byte_fallback;
 *                 40: unk_id; 41: bos_id; 42: eos_id; 43: pad_id }
 *   NormalizerSpec { 1: name; 2: precompiled_charsmap; 3: add_dummy_prefix;
 *                    4: remove_extra_whitespaces; 5: escape_whitespaces }
 */

import { CliError } from "../errors.ts";
export type PieceType = "normal" | "unknown" | "control" | "user_defined" | "unused" | "byte";

export interface Piece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  pieces: Piece[];
  modelType: "unigram" | "bpe" | "word" | "char";
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  normalizer: {
    name: string;
    hasCharsmap: boolean;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

export class SentencePieceError extends CliError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "SentencePieceError";
  }
}

type Field = { no: number; wire: number; varint?: bigint; bytes?: Uint8Array; fixed32?: number };

class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly file: string,
  ) {}
  private fail(what: string): never {
    throw new SentencePieceError(this.file, `malformed protobuf at byte ${this.pos}: ${what}`);
  }
  private varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) this.fail("varint runs past the end");
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) this.fail("varint too long");
    }
  }
  *fields(): Generator<Field> {
    while (this.pos < this.buf.length) {
      const key = this.varint();
      const no = Number(key >> 3n);
      const wire = Number(key & 7n);
      if (wire === 0) yield { no, wire, varint: this.varint() };
      else if (wire === 1) {
        this.pos += 8;
        if (this.pos > this.buf.length) this.fail("fixed64 runs past the end");
      } else if (wire === 2) {
        const len = Number(this.varint());
        if (this.pos + len > this.buf.length)
          this.fail(`field ${no}: length ${len} runs past the end`);
        yield { no, wire, bytes: this.buf.subarray(this.pos, this.pos + len) };
        this.pos += len;
      } else if (wire === 5) {
        if (this.pos + 4 > this.buf.length) this.fail("fixed32 runs past the end");
        const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4);
        yield { no, wire, fixed32: dv.getFloat32(0, true) };
        this.pos += 4;
      } else this.fail(`unsupported wire type ${wire}`);
    }
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const PIECE_TYPES: Record<number, PieceType> = {
  1: "normal",
  2: "unknown",
  3: "control",
  4: "user_defined",
  5: "unused",
  6: "byte",
};
const MODEL_TYPES = { 1: "unigram", 2: "bpe", 3: "word", 4: "char" } as const;

const int32 = (v: bigint) => Number(BigInt.asIntN(32, v));

export function parseSentencePieceModel(buf: Uint8Array, file: string): SentencePieceModel {
  const model: SentencePieceModel = {
    pieces: [],
    modelType: "unigram",
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    normalizer: {
      name: "nmt_nfkc",
      hasCharsmap: false,
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
    },
  };
  for (const f of new Reader(buf, file).fields()) {
    if (f.no === 1 && f.bytes) {
      const p: Piece = { piece: "", score: 0, type: "normal" };
      for (const g of new Reader(f.bytes, file).fields()) {
        if (g.no === 1 && g.bytes) {
          try {
            p.piece = utf8.decode(g.bytes);
          } catch {
            throw new SentencePieceError(file, `piece ${model.pieces.length} is not valid UTF-8`);
          }
        } else if (g.no === 2 && g.fixed32 !== undefined) p.score = g.fixed32;
        else if (g.no === 3 && g.varint !== undefined) {
          const t = PIECE_TYPES[Number(g.varint)];
          if (!t)
            throw new SentencePieceError(
              file,
              `piece ${model.pieces.length} has unknown type ${g.varint}`,
            );
          p.type = t;
        }
      }
      model.pieces.push(p);
    } else if (f.no === 2 && f.bytes) {
      for (const g of new Reader(f.bytes, file).fields()) {
        if (g.varint === undefined) continue;
        if (g.no === 3) {
          const t = MODEL_TYPES[Number(g.varint) as keyof typeof MODEL_TYPES];
          if (!t) throw new SentencePieceError(file, `unknown model_type ${g.varint}`);
          model.modelType = t;
        } else if (g.no === 35) model.byteFallback = g.varint !== 0n;
        else if (g.no === 40) model.unkId = int32(g.varint);
        else if (g.no === 41) model.bosId = int32(g.varint);
        else if (g.no === 42) model.eosId = int32(g.varint);
        else if (g.no === 43) model.padId = int32(g.varint);
      }
    } else if (f.no === 3 && f.bytes) {
      for (const g of new Reader(f.bytes, file).fields()) {
        if (g.no === 1 && g.bytes) model.normalizer.name = utf8.decode(g.bytes);
        else if (g.no === 2 && g.bytes) model.normalizer.hasCharsmap = g.bytes.length > 0;
        else if (g.no === 3 && g.varint !== undefined)
          model.normalizer.addDummyPrefix = g.varint !== 0n;
        else if (g.no === 4 && g.varint !== undefined)
          model.normalizer.removeExtraWhitespaces = g.varint !== 0n;
        else if (g.no === 5 && g.varint !== undefined)
          model.normalizer.escapeWhitespaces = g.varint !== 0n;
      }
    }
  }
  if (model.pieces.length === 0)
    throw new SentencePieceError(file, "no pieces: not a sentencepiece model");
  return model;
}

/**
 * llama2.c's tokenizer .bin (tokenizer.py export): int32 max_token_length, then per token a float32
 * score, an int32 length and the bytes. The export replaced '\u2581' by ' ' and stored BOS/EOS as
 * "\n<s>\n" / "\n</s>\n"; this undoes it. The .bin keeps no normalizer flags, so it is read with
 * sentencepiece's trainer defaults (what llama2.c's train_vocab produced: BPE, byte fallback,
 * dummy prefix, extra whitespace removed).
 */
export function parseLlama2cTokenizer(
  buf: Buffer,
  vocabSize: number,
  file: string,
): SentencePieceModel {
  const pieces: Piece[] = [];
  let at = 4;
  for (let i = 0; i < vocabSize; i++) {
    if (at + 8 > buf.length)
      throw new SentencePieceError(file, `ends after ${i} of ${vocabSize} tokens`);
    const score = buf.readFloatLE(at);
    const len = buf.readInt32LE(at + 4);
    at += 8;
    if (len < 0 || at + len > buf.length)
      throw new SentencePieceError(file, `token ${i}: bad length ${len}`);
    let text: string;
    try {
      text = utf8.decode(buf.subarray(at, at + len));
    } catch {
      throw new SentencePieceError(file, `token ${i} is not valid UTF-8`);
    }
    at += len;
    let type: PieceType = "normal";
    if (text === "\n<s>\n") {
      text = "<s>";
      type = "control";
    } else if (text === "\n</s>\n") {
      text = "</s>";
      type = "control";
    } else if (text === "<unk>") type = "unknown";
    else if (/^<0x[0-9A-F]{2}>$/.test(text)) type = "byte";
    else text = text.replaceAll(" ", "\u2581");
    pieces.push({ piece: text, score, type });
  }
  if (at !== buf.length)
    throw new SentencePieceError(
      file,
      `${buf.length - at} bytes left after ${vocabSize} tokens: wrong vocabulary size?`,
    );
  const id = (p: string) => pieces.findIndex((x) => x.piece === p);
  return {
    pieces,
    modelType: "bpe",
    byteFallback: pieces.some((p) => p.type === "byte"),
    unkId: Math.max(0, id("<unk>")),
    bosId: id("<s>"),
    eosId: id("</s>"),
    padId: -1,
    normalizer: {
      name: "identity",
      hasCharsmap: false,
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
    },
  };
}
