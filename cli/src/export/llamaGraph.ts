/**
 * A Llama decoder with KV cache as an ONNX graph of standard ai.onnx ops (opset 17), so it runs
 * for every head size on every execution provider (ORT's contrib GroupQueryAttention needs
 * head_size % 16 == 0; stories260K has head_dim 8). Names follow transformers.js and
 * onnxruntime-genai:
 *
 *   inputs   input_ids            int64 [batch_size, sequence_length]
 *            attention_mask       int64 [batch_size, total_sequence_length]   (past + new)
 *            position_ids         int64 [batch_size, sequence_length]
 *            past_key_values.{i}.key|value  float [batch_size, kv_heads, past_sequence_length, head_dim]
 *   outputs  logits               float [batch_size, sequence_length, vocab]
 *            present.{i}.key|value float [batch_size, kv_heads, total_sequence_length, head_dim]
 *
 * The cache holds keys after RoPE, as transformers' DynamicCache does. Compute is float32; with
 * fp16 weights each weight is stored as float16 and Cast to float32 once (ORT folds the Cast at
 * load), since ORT's CPU provider has no float16 MatMul/Softmax.
 */
import type { HfWeights, LlamaConfig } from "./hfModel.ts";
import { DataType, type Graph, GraphBuilder, type ValueInfo } from "./onnx.ts";
import { ropeTables } from "./rope.ts";

export type WeightDtype = "fp32" | "fp16";

/** A weight initializer whose bytes are produced only when the file is written. */
export interface LazyWeight {
  name: string;
  dims: number[];
  load: () => Promise<Float32Array>;
}

export interface LlamaGraph {
  graph: Omit<Graph, "initializers">;
  /** small tensors whose data is already known (shapes, RoPE tables, constants) */
  constants: Graph["initializers"];
  weights: LazyWeight[];
}

const FLOAT_MIN = -3.4028234663852886e38;

export function buildLlamaGraph(c: LlamaConfig, src: HfWeights, dtype: WeightDtype): LlamaGraph {
  const g = new GraphBuilder();
  const weights: LazyWeight[] = [];
  const { heads: NH, kvHeads: NKV, headDim: HD, hidden: H, vocab: V } = c;
  const rep = NH / NKV;

  /** A weight as the graph sees it (float32), stored as-is or transposed to [in, out] for MatMul. */
  const weight = (hfName: string, shape: number[], transpose: boolean): string => {
    const [rows, cols] = shape as [number, number];
    const name = transpose ? `${hfName}.T` : hfName;
    weights.push({
      name,
      dims: transpose ? [cols, rows] : shape,
      load: async () => {
        const w = await src.read(hfName, shape);
        return transpose ? transposed(w, rows, cols) : w;
      },
    });
    return dtype === "fp16" ? g.op1("Cast", [name], { to: { int: DataType.FLOAT } }) : name;
  };

  const inputs: ValueInfo[] = [
    { name: "input_ids", elemType: DataType.INT64, shape: ["batch_size", "sequence_length"] },
    {
      name: "attention_mask",
      elemType: DataType.INT64,
      shape: ["batch_size", "total_sequence_length"],
    },
    { name: "position_ids", elemType: DataType.INT64, shape: ["batch_size", "sequence_length"] },
  ];
  const outputs: ValueInfo[] = [
    { name: "logits", elemType: DataType.FLOAT, shape: ["batch_size", "sequence_length", V] },
  ];
  for (let i = 0; i < c.layers; i++)
    for (const kind of ["key", "value"]) {
      inputs.push({
        name: `past_key_values.${i}.${kind}`,
        elemType: DataType.FLOAT,
        shape: ["batch_size", NKV, "past_sequence_length", HD],
      });
      outputs.push({
        name: `present.${i}.${kind}`,
        elemType: DataType.FLOAT,
        shape: ["batch_size", NKV, "total_sequence_length", HD],
      });
    }

  // constants
  const axis0 = g.int64("const.axes_0", [0]);
  const axis1 = g.int64("const.axes_1", [1]);
  const axis2 = g.int64("const.axes_2", [2]);
  const axes123 = g.int64("const.axes_1_2_3", [1, 2, 3]);
  const zero = g.int64("const.zero", [0], []);
  const one = g.int64("const.one", [1], []);
  const halves = g.int64("const.rope_halves", [HD / 2, HD / 2]);
  const eps = g.float("const.rms_norm_eps", [c.eps], []);
  const scale = g.float("const.attention_scale", [1 / Math.sqrt(HD)], []);
  const maskedOut = g.float("const.masked_out", [FLOAT_MIN], []);
  const notMasked = g.float("const.not_masked", [0], []);
  const shapeQ = g.int64("const.shape_q_heads", [0, 0, NH, HD]);
  const shapeKv = g.int64("const.shape_kv_heads", [0, 0, NKV, HD]);
  const shapeGroups = g.int64("const.shape_kv_groups", [0, NKV, rep, -1, HD]);
  const shapeHeads = g.int64("const.shape_heads", [0, NH, -1, HD]);
  const shapeMerged = g.int64("const.shape_merged_heads", [0, 0, NH * HD]);

  // attention bias [batch, 1, 1, seq, total]: a query at cache slot past+s sees keys 0..past+s
  // that the attention mask keeps; others get the float32 minimum (as transformers does)
  const seqLen = g.op1("Shape", ["input_ids"], { start: { int: 1 }, end: { int: 2 } });
  const totalLen = g.op1("Shape", ["attention_mask"], { start: { int: 1 }, end: { int: 2 } });
  const pastLen = g.op1("Sub", [totalLen, seqLen]);
  const total = g.op1("Squeeze", [totalLen, axis0]);
  const past = g.op1("Squeeze", [pastLen, axis0]);
  const keySlot = g.op1("Unsqueeze", [g.op1("Range", [zero, total, one]), axis0]); // [1, total]
  const querySlot = g.op1("Unsqueeze", [g.op1("Range", [past, total, one]), axis1]); // [seq, 1]
  let causal = g.op1("LessOrEqual", [keySlot, querySlot]); // [seq, total]
  if (c.slidingWindow) {
    // Mistral: keys more than window - 1 slots back are out of sight
    const window = g.int64("const.sliding_window", [c.slidingWindow], []);
    const inWindow = g.op1("Greater", [keySlot, g.op1("Sub", [querySlot, window])]);
    causal = g.op1("And", [causal, inWindow]);
  }
  const keep = g.op1("Unsqueeze", [
    g.op1("Cast", ["attention_mask"], { to: { int: DataType.BOOL } }),
    axes123,
  ]); // [batch, 1, 1, 1, total]
  const bias = g.op1("Where", [g.op1("And", [causal, keep]), notMasked, maskedOut]);

  // RoPE: cos/sin [batch, 1, seq, head_dim] for the given positions (rotate_half layout)
  const tables = ropeTables(c, c.maxPositions);
  const cosTable = g.float("rope.cos", tables.cos, [c.maxPositions, HD / 2]);
  const sinTable = g.float("rope.sin", tables.sin, [c.maxPositions, HD / 2]);
  const ropeFor = (table: string) => {
    const half = g.op1("Gather", [table, "position_ids"]); // [batch, seq, hd/2]
    return g.op1("Unsqueeze", [g.op1("Concat", [half, half], { axis: { int: -1 } }), axis1]);
  };
  const cos = ropeFor(cosTable);
  const sin = ropeFor(sinTable);
  const rope = (x: string) => {
    const [x1, x2] = g.op("Split", [x, halves], { axis: { int: -1 } }, 2) as [string, string];
    const rotated = g.op1("Concat", [g.op1("Neg", [x2]), x1], { axis: { int: -1 } });
    return g.op1("Add", [g.op1("Mul", [x, cos]), g.op1("Mul", [rotated, sin])]);
  };

  const rmsNorm = (x: string, w: string) => {
    const variance = g.op1("ReduceMean", [g.op1("Mul", [x, x])], {
      axes: { ints: [-1] },
      keepdims: { int: 1 },
    });
    const inv = g.op1("Reciprocal", [g.op1("Sqrt", [g.op1("Add", [variance, eps])])]);
    return g.op1("Mul", [w, g.op1("Mul", [x, inv])]);
  };
  /** [batch, seq, n*hd] → [batch, n, seq, hd] */
  const splitHeads = (x: string, shape: string) =>
    g.op1("Transpose", [g.op1("Reshape", [x, shape])], { perm: { ints: [0, 2, 1, 3] } });

  const embed = weight("model.embed_tokens.weight", [V, H], false);
  let h = g.op1("Gather", [embed, "input_ids"]); // [batch, seq, hidden]
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}`;
    const proj = (name: string, out: number, inp: number) =>
      weight(`${p}.${name}.weight`, [out, inp], true);
    // attention
    const x = rmsNorm(h, weight(`${p}.input_layernorm.weight`, [H], false));
    const q = rope(splitHeads(g.op1("MatMul", [x, proj("self_attn.q_proj", NH * HD, H)]), shapeQ));
    const k = rope(
      splitHeads(g.op1("MatMul", [x, proj("self_attn.k_proj", NKV * HD, H)]), shapeKv),
    );
    const v = splitHeads(g.op1("MatMul", [x, proj("self_attn.v_proj", NKV * HD, H)]), shapeKv);
    const [presentK] = g.op("Concat", [`past_key_values.${i}.key`, k], { axis: { int: 2 } }, [
      `present.${i}.key`,
    ]) as [string];
    const [presentV] = g.op("Concat", [`past_key_values.${i}.value`, v], { axis: { int: 2 } }, [
      `present.${i}.value`,
    ]) as [string];
    // grouped-query attention without copying K/V: queries [b, kv, rep, seq, hd] against
    // keys [b, kv, 1, total, hd]; MatMul broadcasts the group axis (head = kv * rep + r)
    const qg = g.op1("Reshape", [q, shapeGroups]);
    const kT = g.op1("Transpose", [g.op1("Unsqueeze", [presentK, axis2])], {
      perm: { ints: [0, 1, 2, 4, 3] },
    });
    const scores = g.op1("Add", [g.op1("Mul", [g.op1("MatMul", [qg, kT]), scale]), bias]);
    const probs = g.op1("Softmax", [scores], { axis: { int: -1 } });
    const ctx = g.op1("MatMul", [probs, g.op1("Unsqueeze", [presentV, axis2])]);
    const merged = g.op1("Reshape", [
      g.op1("Transpose", [g.op1("Reshape", [ctx, shapeHeads])], { perm: { ints: [0, 2, 1, 3] } }),
      shapeMerged,
    ]);
    h = g.op1("Add", [h, g.op1("MatMul", [merged, proj("self_attn.o_proj", H, NH * HD)])]);
    // SwiGLU MLP
    const y = rmsNorm(h, weight(`${p}.post_attention_layernorm.weight`, [H], false));
    const gate = g.op1("MatMul", [y, proj("mlp.gate_proj", c.intermediate, H)]);
    const up = g.op1("MatMul", [y, proj("mlp.up_proj", c.intermediate, H)]);
    const act = g.op1("Mul", [g.op1("Mul", [gate, g.op1("Sigmoid", [gate])]), up]);
    h = g.op1("Add", [h, g.op1("MatMul", [act, proj("mlp.down_proj", H, c.intermediate)])]);
  }
  const last = rmsNorm(h, weight("model.norm.weight", [H], false));
  if (c.tied) {
    // one copy of the tied matrix: Gemm with transB on the [vocab, hidden] embedding
    const flat = g.op1("Reshape", [last, g.int64("const.shape_rows", [-1, H])]);
    const rows = g.op1("Gemm", [flat, embed], { transB: { int: 1 } });
    const outShape = g.op1("Concat", [g.op1("Shape", ["input_ids"]), g.int64("const.vocab", [V])], {
      axis: { int: 0 },
    });
    g.op("Reshape", [rows, outShape], {}, ["logits"]);
  } else {
    g.op("MatMul", [last, weight("lm_head.weight", [V, H], true)], {}, ["logits"]);
  }
  return {
    graph: { name: "llama", nodes: g.nodes, inputs, outputs },
    constants: g.constants,
    weights,
  };
}

function transposed(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < cols; k++) out[k * rows + r] = w[r * cols + k] as number;
  return out;
}
