/**
 * A Hugging Face LlamaForCausalLM directory as the exporter reads it: config.json (checked with
 * zod; errors name the field) and the weights, one tensor at a time, from model.safetensors or the
 * shards of model.safetensors.index.json, widened to float32 from F32, F16 or BF16.
 */
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { CliError } from "../errors.ts";
import {
  readSafetensorsHeader,
  type SafetensorsEntry,
  toFloat32,
} from "../safetensors/safetensors.ts";

export class ExportError extends CliError {
  override name = "ExportError";
}

const RopeScaling = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    factor: z.number().positive().default(8),
    low_freq_factor: z.number().positive().default(1),
    high_freq_factor: z.number().positive().default(4),
    original_max_position_embeddings: z.number().int().positive().default(8192),
  })
  .loose();

const ConfigSchema = z
  .object({
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().optional(),
    head_dim: z.number().int().positive().optional(),
    vocab_size: z.number().int().positive(),
    max_position_embeddings: z.number().int().positive().default(2048),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: RopeScaling.nullable().optional(),
    tie_word_embeddings: z.boolean().default(false),
    attention_bias: z.literal(false).optional(),
    mlp_bias: z.literal(false).optional(),
    hidden_act: z.literal("silu").optional(),
    model_type: z.enum(["llama", "mistral"]).optional(),
    sliding_window: z.number().int().positive().nullable().optional(),
    bos_token_id: z.number().int().nullable().optional(),
    eos_token_id: z
      .union([z.number().int(), z.array(z.number().int())])
      .nullable()
      .optional(),
    pad_token_id: z.number().int().nullable().optional(),
  })
  .loose();

export interface LlamaConfig {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  maxPositions: number;
  eps: number;
  ropeTheta: number;
  /** llama3 rope_scaling, when the model has it */
  llama3?: { factor: number; lowFreq: number; highFreq: number; originalMax: number };
  tied: boolean;
  /** Mistral's sliding window: a query sees at most this many keys, itself included */
  slidingWindow?: number;
  bos?: number;
  eos: number[];
  pad?: number;
}

export function parseLlamaConfig(json: unknown, file: string): LlamaConfig {
  const r = ConfigSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ExportError(
      `${file}: ${issue ? `${issue.path.join(".") || "(top)"}: ${issue.message}` : r.error.message} (a LlamaForCausalLM or MistralForCausalLM config is expected)`,
    );
  }
  const c = r.data;
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kvHeads !== 0)
    throw new ExportError(
      `${file}: num_key_value_heads: ${kvHeads} does not divide num_attention_heads ${c.num_attention_heads}`,
    );
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0)
    throw new ExportError(
      `${file}: hidden_size: ${c.hidden_size} is not a multiple of num_attention_heads and head_dim is not given`,
    );
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new ExportError(`${file}: head_dim: must be even for RoPE`);
  let llama3: LlamaConfig["llama3"];
  if (c.rope_scaling) {
    const kind = c.rope_scaling.rope_type ?? c.rope_scaling.type;
    if (kind === "llama3") {
      const s = c.rope_scaling;
      if (s.high_freq_factor <= s.low_freq_factor)
        throw new ExportError(
          `${file}: rope_scaling.high_freq_factor: must be larger than low_freq_factor`,
        );
      llama3 = {
        factor: s.factor,
        lowFreq: s.low_freq_factor,
        highFreq: s.high_freq_factor,
        originalMax: s.original_max_position_embeddings,
      };
    } else if (kind !== "default")
      throw new ExportError(
        `${file}: rope_scaling.rope_type: "${kind}" is not supported (supported: default, llama3)`,
      );
  }
  const eos = c.eos_token_id;
  return {
    hidden: c.hidden_size,
    intermediate: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    kvHeads,
    headDim,
    vocab: c.vocab_size,
    maxPositions: c.max_position_embeddings,
    eps: c.rms_norm_eps,
    ropeTheta: c.rope_theta,
    ...(llama3 ? { llama3 } : {}),
    tied: c.tie_word_embeddings,
    ...(c.sliding_window ? { slidingWindow: c.sliding_window } : {}),
    ...(c.bos_token_id != null ? { bos: c.bos_token_id } : {}),
    eos: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
    ...(c.pad_token_id != null ? { pad: c.pad_token_id } : {}),
  };
}

/** The weights of a model directory, read on demand. */
export class HfWeights {
  private constructor(
    private readonly entries: Map<string, SafetensorsEntry & { file: string }>,
    private readonly dir: string,
  ) {}

  static async open(dir: string): Promise<HfWeights> {
    const entries = new Map<string, SafetensorsEntry & { file: string }>();
    const indexPath = join(dir, "model.safetensors.index.json");
    let files: string[];
    let indexText: string | undefined;
    try {
      indexText = await readFile(indexPath, "utf8");
    } catch (e) {
      if (!(e instanceof Error && "code" in e && e.code === "ENOENT")) throw e;
    }
    if (indexText !== undefined) {
      const parsed = z
        .object({ weight_map: z.record(z.string(), z.string()) })
        .safeParse(JSON.parse(indexText));
      if (!parsed.success)
        throw new ExportError(`${indexPath}: weight_map: ${parsed.error.issues[0]?.message}`);
      files = [...new Set(Object.values(parsed.data.weight_map))];
    } else files = ["model.safetensors"];
    for (const f of files) {
      if (f.includes("/") || f.includes(".."))
        throw new ExportError(
          `${indexPath}: shard name "${f}" must be a file in the model directory`,
        );
      const path = join(dir, f);
      for (const [name, e] of await readSafetensorsHeader(path)) {
        if (entries.has(name))
          throw new ExportError(`${path}: tensor ${name} is also in ${entries.get(name)?.file}`);
        entries.set(name, { ...e, file: path });
      }
    }
    return new HfWeights(entries, dir);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The tensor as float32, checked to have `shape`. */
  async read(name: string, shape: number[]): Promise<Float32Array> {
    const e = this.entries.get(name);
    if (!e) throw new ExportError(`${this.dir}: the weights have no tensor ${name}`);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))
      throw new ExportError(
        `${e.file}: tensor ${name} has shape [${e.shape}], config.json implies [${shape}]`,
      );
    const bytes = Buffer.alloc(e.end - e.begin);
    const fh = await open(e.file, "r");
    try {
      await fh.read(bytes, 0, bytes.length, e.begin);
    } finally {
      await fh.close();
    }
    const out = toFloat32(bytes, e.dtype, `${e.file}: tensor ${name}`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (out.length !== count)
      throw new ExportError(`${e.file}: tensor ${name} holds ${out.length} values, not ${count}`);
    return out;
  }
}
