import { defineCommand, flag, parseCommand } from "../args/flags.ts";
import { requireAdapterDir, requireModelDir } from "../args/paths.ts";
import { exportOnnx } from "../export/exportOnnx.ts";
import { findCore } from "../train/core.ts";
import { fmtInt, type Out, UsageError } from "./output.ts";

export const exportCli = defineCommand({
  name: "export",
  summary: {
    usage: "export onnx <model-dir>",
    text: "the model (merged with --adapter) as an ONNX decoder with KV cache",
  },
  usage:
    "loraforge export onnx <model-dir> [--adapter DIR] [--out DIR] [--dtype fp32|fp16] [--force]",
  description: `Writes the model as an ONNX Llama decoder with KV cache, in the input/output names of
transformers.js and onnxruntime-genai (input_ids, attention_mask, position_ids,
past_key_values.N.key|value -> logits, present.N.key|value), built from standard ai.onnx ops
(opset 17), so it runs for any head size. With --adapter, the adapter is first merged into the
weights by loraforge-core merge. fp16 stores the weights as float16 (half the file) and computes
in float32, as ONNX Runtime's CPU provider needs. Weights over 2 GB go to model.onnx.data.
The directory also gets config.json, the tokenizer files and genai_config.json; it appears whole
or not at all.`,
  flags: {
    adapter: flag.string("DIR", "a PEFT LoRA adapter to merge first", "dir"),
    out: flag.string("DIR", "output directory (default: <adapter or model dir>-onnx)", "dir"),
    dtype: flag.choice(["fp32", "fp16"], "weight storage (default fp32)"),
    force: flag.bool("replace an existing output directory"),
    // lets a test put a small model's weights in model.onnx.data
    "external-data-threshold": {
      ...flag.int("bytes above which weights go to model.onnx.data"),
      hidden: true,
    },
  },
  subcommands: ["onnx"],
  positionals: "dir",
  epilogue: `Example:
  loraforge export onnx .cache/models/stories260K --adapter .cache/runs/demo/adapter --out .cache/onnx/demo`,
});

export async function exportCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(exportCli, args);
  if (positionals[0] !== "onnx")
    throw new UsageError(`export knows one format, onnx (got "${positionals[0] ?? ""}")`, "export");
  if (positionals.length !== 2)
    throw new UsageError("export onnx takes one model directory", "export");
  const modelDir = (positionals[1] as string).replace(/\/+$/, "");
  await requireModelDir(modelDir);
  if (values.adapter) await requireAdapterDir(values.adapter);
  const dtype = values.dtype ?? "fp32";
  const externalThreshold = values["external-data-threshold"];
  const outDir = values.out ?? `${(values.adapter ?? modelDir).replace(/\/+$/, "")}-onnx`;
  const r = await exportOnnx({
    modelDir,
    ...(values.adapter ? { adapterDir: values.adapter } : {}),
    outDir,
    dtype,
    ...(externalThreshold !== undefined ? { externalThreshold } : {}),
    ...(values.force ? { force: true } : {}),
    corePath: values.adapter ? findCore() : "",
    onLog: (line) => out.info(line),
  });
  const c = r.config;
  out.info(
    `exported ${r.outDir}: ${r.files.join(", ")} (${dtype} weights, ${fmtInt(r.weightBytes)} bytes${r.externalData ? " in model.onnx.data" : ""}; ${c.layers} layers, ${c.heads} heads / ${c.kvHeads} kv heads of ${c.headDim}, vocab ${c.vocab}, context ${c.maxPositions})`,
  );
  return 0;
}
