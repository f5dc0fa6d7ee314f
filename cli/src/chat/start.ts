/**
 * `loraforge chat`: the models as ONNX files (the base model exported; the tuned one exported
 * with the adapter merged, or an exported file given with --onnx), an inference worker over them,
 * and the page's server.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { exportOnnx } from "../export/exportOnnx.ts";
import { ExportError, type LlamaConfig, parseLlamaConfig } from "../export/hfModel.ts";
import { loadTemplate, type TemplateChoice } from "../prepare/prepare.ts";
import { loadModelTokenizer } from "../tokenizer/tokenizer.ts";
import { InferenceWorker } from "./inference.ts";
import { type ChatServer, startChatServer } from "./server.ts";

export interface ChatOptions {
  modelDir: string;
  adapterDir?: string;
  onnxFile?: string;
  host: string;
  port: number;
  template: TemplateChoice;
  threads: number;
  corePath: string;
  onLog?: (line: string) => void;
}

/** config.json's name of each field that fixes what the token ids and the cache mean */
const SAME_MODEL_FIELDS: [keyof LlamaConfig, string][] = [
  ["vocab", "vocab_size"],
  ["hidden", "hidden_size"],
  ["layers", "num_hidden_layers"],
  ["heads", "num_attention_heads"],
  ["kvHeads", "num_key_value_heads"],
  ["headDim", "head_dim"],
  ["intermediate", "intermediate_size"],
];

/**
 * The page tokenizes with the model directory's tokenizer and shows that model as "base": an
 * --onnx file exported from another model would answer in token ids that tokenizer does not mean.
 */
async function checkSameModel(modelDir: string, onnxFile: string): Promise<void> {
  const read = async (file: string) =>
    parseLlamaConfig(JSON.parse(await readFile(file, "utf8")), file);
  const wantFile = join(modelDir, "config.json");
  const gotFile = join(dirname(onnxFile), "config.json");
  const [want, got] = [await read(wantFile), await read(gotFile)];
  for (const [key, field] of SAME_MODEL_FIELDS)
    if (want[key] !== got[key])
      throw new ExportError(
        `${gotFile}: field '${field}': ${got[key]}, but the model's ${wantFile} has ${want[key]}: --onnx must be an export of ${modelDir} (with or without an adapter)`,
      );
}

export async function startChat(o: ChatOptions): Promise<ChatServer> {
  if (o.onnxFile && !existsSync(join(dirname(o.onnxFile), "config.json")))
    throw new ExportError(
      `${o.onnxFile}: no config.json beside it (use a directory written by loraforge export onnx)`,
    );
  if (o.onnxFile) await checkSameModel(o.modelDir, o.onnxFile);
  const tokenizer = await loadModelTokenizer(o.modelDir);
  const template = await loadTemplate(o.template);
  const work = await mkdtemp(join(tmpdir(), "loraforge-chat-"));
  let worker: InferenceWorker | undefined;
  try {
    const models: Record<string, string> = {};
    const labels: Record<string, string> = {};
    o.onLog?.(`exporting ${o.modelDir} to ONNX`);
    const base = await exportOnnx({
      modelDir: o.modelDir,
      outDir: join(work, "base"),
      dtype: "fp32",
      corePath: o.corePath,
    });
    models.base = join(base.outDir, "model.onnx");
    labels.base = `base (${basename(resolve(o.modelDir))})`;
    if (o.adapterDir) {
      o.onLog?.(`exporting ${o.modelDir} with ${o.adapterDir} merged`);
      const tuned = await exportOnnx({
        modelDir: o.modelDir,
        adapterDir: o.adapterDir,
        outDir: join(work, "tuned"),
        dtype: "fp32",
        corePath: o.corePath,
      });
      models.tuned = join(tuned.outDir, "model.onnx");
      labels.tuned = `tuned (${basename(resolve(o.adapterDir))})`;
    } else if (o.onnxFile) {
      models.tuned = resolve(o.onnxFile);
      labels.tuned = `tuned (${basename(dirname(resolve(o.onnxFile)))})`;
    }
    worker = await InferenceWorker.start({ models, threads: o.threads });
    const server = await startChatServer({
      host: o.host,
      port: o.port,
      tokenizer,
      template,
      worker,
      labels,
    });
    const w = worker;
    return {
      url: server.url,
      close: async () => {
        await server.close();
        await w.close();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await worker?.close();
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}
