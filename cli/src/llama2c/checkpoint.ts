/**
 * llama2.c checkpoints (the "legacy" version-0 export read by run.c): a 7 x int32 header then fp32
 * arrays back to back. Layout and the RoPE permutation: ../shared/assets/stories260K/FORMAT.md.
 */

import { CliError } from "../errors.ts";
import type { F32Tensor } from "../safetensors/safetensors.ts";

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

export class Llama2cError extends CliError {
  constructor(
    readonly file: string,
    message: string,
    readonly tensor?: string,
  ) {
    super(`${file}: ${tensor ? `tensor ${tensor}: ` : ""}${message}`);
    this.name = "Llama2cError";
  }
}

const HEADER_BYTES = 28;

export function readConfig(buf: Buffer, file: string): Llama2cConfig {
  if (buf.length < HEADER_BYTES)
    throw new Llama2cError(file, `only ${buf.length} bytes: not a llama2.c checkpoint`);
  const f = (i: number) => buf.readInt32LE(4 * i);
  const rawVocab = f(5);
  const c: Llama2cConfig = {
    dim: f(0),
    hiddenDim: f(1),
    nLayers: f(2),
    nHeads: f(3),
    nKvHeads: f(4),
    vocabSize: Math.abs(rawVocab),
    seqLen: f(6),
    sharedClassifier: rawVocab > 0,
  };
  const bad = (what: string) =>
    new Llama2cError(file, `implausible header (${what}); is this a llama2.c .bin (version 0)?`);
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === "number" && (v <= 0 || v > 1 << 20)) throw bad(`${k} = ${v}`);
  }
  if (c.dim % c.nHeads !== 0) throw bad(`dim ${c.dim} is not a multiple of n_heads ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0)
    throw bad(`n_heads ${c.nHeads} is not a multiple of n_kv_heads ${c.nKvHeads}`);
  if ((c.dim / c.nHeads) % 2 !== 0)
    throw bad(`head size ${c.dim / c.nHeads} is odd (RoPE needs pairs)`);
  return c;
}

interface Plan {
  name: string;
  shape: number[];
}

/** The arrays in file order, with the shapes they are stored in. */
function filePlan(c: Llama2cConfig): Plan[] {
  const headSize = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headSize;
  const L = c.nLayers;
  const plan: Plan[] = [
    { name: "token_embedding_table", shape: [c.vocabSize, c.dim] },
    { name: "rms_att_weight", shape: [L, c.dim] },
    { name: "wq", shape: [L, c.dim, c.dim] },
    { name: "wk", shape: [L, kvDim, c.dim] },
    { name: "wv", shape: [L, kvDim, c.dim] },
    { name: "wo", shape: [L, c.dim, c.dim] },
    { name: "rms_ffn_weight", shape: [L, c.dim] },
    { name: "w1", shape: [L, c.hiddenDim, c.dim] },
    { name: "w2", shape: [L, c.dim, c.hiddenDim] },
    { name: "w3", shape: [L, c.hiddenDim, c.dim] },
    { name: "rms_final_weight", shape: [c.dim] },
    { name: "freq_cis", shape: [2, (c.seqLen * headSize) / 2] },
  ];
  if (!c.sharedClassifier) plan.push({ name: "wcls", shape: [c.vocabSize, c.dim] });
  return plan;
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function expectedSize(c: Llama2cConfig): number {
  return HEADER_BYTES + 4 * filePlan(c).reduce((s, p) => s + count(p.shape), 0);
}

/**
 * Llama2.c (like Meta's code) rotates interleaved pairs; Hugging Face's rotate_half pairs i with
 * i + head_size/2. Permuting the rows of wq/wk per head, [n, hs/2, 2, in] -> [n, 2, hs/2, in],
 * makes the HF model compute the same thing (FORMAT.md, checked there to 2e-14).
 */
export function permuteRope(
  w: Float32Array,
  nHeads: number,
  rowsPerHead: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(w.length);
  const half = rowsPerHead / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * rowsPerHead + 2 * i + j) * cols;
        const dst = (h * rowsPerHead + j * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** Converts a checkpoint to Hugging Face LlamaForCausalLM tensors (names and RoPE layout). */
export function convertCheckpoint(
  buf: Buffer,
  file: string,
): { config: Llama2cConfig; tensors: F32Tensor[] } {
  const c = readConfig(buf, file);
  const expected = expectedSize(c);
  if (buf.length !== expected) {
    throw new Llama2cError(
      file,
      `size ${buf.length} bytes does not match its header (dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize}${c.sharedClassifier ? "" : ", unshared classifier"}: expected ${expected}); truncated or not a version-0 export`,
    );
  }
  const arrays = new Map<string, Float32Array>();
  let at = HEADER_BYTES;
  for (const p of filePlan(c)) {
    const n = count(p.shape);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = buf.readFloatLE(at + 4 * i);
    at += 4 * n;
    if (p.name !== "freq_cis") {
      const bad = a.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Llama2cError(file, `value ${bad} is ${a[bad]} (not finite)`, p.name);
    }
    arrays.set(p.name, a);
  }
  const get = (name: string) => arrays.get(name) as Float32Array;
  const headSize = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headSize;
  const layer = (name: string, l: number, size: number) =>
    get(name).subarray(l * size, (l + 1) * size);
  const tensors: F32Tensor[] = [
    {
      name: "model.embed_tokens.weight",
      shape: [c.vocabSize, c.dim],
      data: get("token_embedding_table"),
    },
  ];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}`;
    tensors.push(
      {
        name: `${p}.input_layernorm.weight`,
        shape: [c.dim],
        data: layer("rms_att_weight", l, c.dim),
      },
      {
        name: `${p}.self_attn.q_proj.weight`,
        shape: [c.dim, c.dim],
        data: permuteRope(layer("wq", l, c.dim * c.dim), c.nHeads, headSize, c.dim),
      },
      {
        name: `${p}.self_attn.k_proj.weight`,
        shape: [kvDim, c.dim],
        data: permuteRope(layer("wk", l, kvDim * c.dim), c.nKvHeads, headSize, c.dim),
      },
      {
        name: `${p}.self_attn.v_proj.weight`,
        shape: [kvDim, c.dim],
        data: layer("wv", l, kvDim * c.dim),
      },
      {
        name: `${p}.self_attn.o_proj.weight`,
        shape: [c.dim, c.dim],
        data: layer("wo", l, c.dim * c.dim),
      },
      {
        name: `${p}.post_attention_layernorm.weight`,
        shape: [c.dim],
        data: layer("rms_ffn_weight", l, c.dim),
      },
      {
        name: `${p}.mlp.gate_proj.weight`,
        shape: [c.hiddenDim, c.dim],
        data: layer("w1", l, c.hiddenDim * c.dim),
      },
      {
        name: `${p}.mlp.down_proj.weight`,
        shape: [c.dim, c.hiddenDim],
        data: layer("w2", l, c.dim * c.hiddenDim),
      },
      {
        name: `${p}.mlp.up_proj.weight`,
        shape: [c.hiddenDim, c.dim],
        data: layer("w3", l, c.hiddenDim * c.dim),
      },
    );
  }
  tensors.push({ name: "model.norm.weight", shape: [c.dim], data: get("rms_final_weight") });
  if (!c.sharedClassifier)
    tensors.push({ name: "lm_head.weight", shape: [c.vocabSize, c.dim], data: get("wcls") });
  return { config: c, tensors };
}

/** config.json of the equivalent Hugging Face LlamaForCausalLM. */
export function hfConfig(c: Llama2cConfig, bosId: number, eosId: number): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.dim / c.nHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    tie_word_embeddings: c.sharedClassifier,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    initializer_range: 0.02,
    bos_token_id: bosId,
    eos_token_id: eosId,
    torch_dtype: "float32",
    use_cache: true,
  };
}
