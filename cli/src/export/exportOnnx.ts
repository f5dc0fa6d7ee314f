/**
 * `loraforge export onnx`: (merge the adapter with the core) → Llama ONNX graph → model.onnx
 * (+ model.onnx.data) in a directory that appears whole or not at all: everything is written to a
 * temporary directory beside the target and renamed into place.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { runCore } from "../train/core.ts";
import { ExportError, HfWeights, type LlamaConfig, parseLlamaConfig } from "./hfModel.ts";
import { buildLlamaGraph, type WeightDtype } from "./llamaGraph.ts";
import { MODEL_FILE, writeModel } from "./writeModel.ts";

export interface ExportOptions {
  modelDir: string;
  adapterDir?: string;
  outDir: string;
  dtype: WeightDtype;
  /** weights above this many bytes go to model.onnx.data (default: just under 2 GiB) */
  externalThreshold?: number;
  /** replace an existing output directory */
  force?: boolean;
  corePath: string;
  onLog?: (line: string) => void;
}

export interface ExportResult {
  outDir: string;
  files: string[];
  externalData: boolean;
  weightBytes: number;
  config: LlamaConfig;
}

/** Files copied next to model.onnx so the directory is a complete model for transformers.js-style loaders. */
const COPIED = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

export async function exportOnnx(o: ExportOptions): Promise<ExportResult> {
  const outDir = resolve(o.outDir);
  const exists = await stat(outDir).then(
    () => true,
    () => false,
  );
  if (exists && !o.force)
    throw new ExportError(`${outDir} already exists (pass --force to replace it)`);
  await mkdir(dirname(outDir), { recursive: true });
  const tmp = join(dirname(outDir), `.${basename(outDir)}.tmp-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp);
  try {
    let weightsDir = o.modelDir;
    if (o.adapterDir) {
      weightsDir = join(tmp, "merged");
      o.onLog?.(`merging ${o.adapterDir} into ${o.modelDir}`);
      await mergeWithCore(o.corePath, o.modelDir, o.adapterDir, weightsDir);
    }
    const configPath = join(weightsDir, "config.json");
    const config = parseLlamaConfig(JSON.parse(await readFile(configPath, "utf8")), configPath);
    const weights = await HfWeights.open(weightsDir);
    const graph = buildLlamaGraph(config, weights, o.dtype);
    const written = await writeModel(
      tmp,
      graph,
      o.dtype,
      {
        irVersion: 8,
        opset: 17,
        producerName: "loraforge",
        producerVersion: "0.1.0",
        metadata: {
          weight_dtype: o.dtype,
          ...(o.adapterDir ? { adapter: basename(resolve(o.adapterDir)) } : {}),
        },
      },
      o.externalThreshold,
    );
    const files = [...written.files];
    for (const f of COPIED) {
      try {
        await copyFile(join(o.modelDir, f), join(tmp, f));
        files.push(f);
      } catch (e) {
        if (!(e instanceof Error && "code" in e && e.code === "ENOENT")) throw e;
      }
    }
    await writeFile(
      join(tmp, "genai_config.json"),
      `${JSON.stringify(genaiConfig(config), null, 2)}\n`,
    );
    files.push("genai_config.json");
    await rm(join(tmp, "merged"), { recursive: true, force: true });
    if (exists) {
      const old = `${tmp}.old`;
      await rename(outDir, old);
      await rename(tmp, outDir);
      await rm(old, { recursive: true, force: true });
    } else await rename(tmp, outDir);
    return {
      outDir,
      files,
      externalData: written.externalData,
      weightBytes: written.weightBytes,
      config,
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function mergeWithCore(core: string, model: string, adapter: string, out: string) {
  const errors: string[] = [];
  let stderr = "";
  const run = runCore({
    corePath: core,
    args: ["merge", "--model", model, "--adapter", adapter, "--out", out],
    onEvent: (e) => {
      if (e.event === "error") errors.push(e.message);
    },
    onStderr: (s) => {
      stderr += s;
    },
  });
  const { code } = await run.exited;
  if (code !== 0)
    throw new ExportError(
      `loraforge-core merge failed (exit ${code}): ${errors[0] ?? (stderr.trim() || "no message")}`,
    );
}

/** onnxruntime-genai's genai_config.json for this decoder (its default input/output names). */
function genaiConfig(c: LlamaConfig) {
  return {
    model: {
      bos_token_id: c.bos ?? 1,
      context_length: c.maxPositions,
      decoder: {
        session_options: { log_id: "onnxruntime-genai", provider_options: [] },
        filename: MODEL_FILE,
        head_size: c.headDim,
        hidden_size: c.hidden,
        inputs: {
          input_ids: "input_ids",
          attention_mask: "attention_mask",
          position_ids: "position_ids",
          past_key_names: "past_key_values.%d.key",
          past_value_names: "past_key_values.%d.value",
        },
        outputs: {
          logits: "logits",
          present_key_names: "present.%d.key",
          present_value_names: "present.%d.value",
        },
        num_attention_heads: c.heads,
        num_hidden_layers: c.layers,
        num_key_value_heads: c.kvHeads,
      },
      eos_token_id: c.eos.length === 1 ? c.eos[0] : c.eos,
      pad_token_id: c.pad ?? c.eos[0] ?? 0,
      type: "llama",
      vocab_size: c.vocab,
    },
    search: {
      do_sample: false,
      max_length: c.maxPositions,
      num_beams: 1,
      past_present_share_buffer: false,
      repetition_penalty: 1.0,
      temperature: 1.0,
      top_k: 1,
      top_p: 1.0,
    },
  };
}
