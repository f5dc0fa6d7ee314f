import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { encodeSafetensors } from "../safetensors/safetensors.ts";
import { convertCheckpoint, hfConfig } from "./checkpoint.ts";
import {
  parseLlama2cTokenizer,
  parseSentencePieceModel,
  type SentencePieceModel,
} from "./sentencepiece.ts";
import { buildTokenizerConfig, buildTokenizerJson } from "./tokenizerJson.ts";

export interface ImportOptions {
  /** llama2.c checkpoint (.bin, version-0 export). */
  checkpoint: string;
  /** sentencepiece model (.model) or llama2.c tokenizer (.bin). */
  tokenizer: string;
  outDir: string;
  /** Replace an existing, different output directory. */
  force?: boolean;
}

export interface ImportResult {
  outDir: string;
  /** False when the directory already held this exact import. */
  written: boolean;
  config: Record<string, unknown>;
  nParams: number;
  files: string[];
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * Generation ends on BOS, not EOS. llama2.c's training data separates stories with BOS (its
 * pretokenizer encodes each story with bos=True, eos=False) and its run.c stops on BOS: the model
 * never saw EOS, and with the classifier tied to the embedding EOS's row is almost the same as the
 * unused byte tokens', so EOS cannot be taught cheaply. transformers' generate stops on this
 * eos_token_id, and loraforge's tokenizer (ModelTokenizer.endId) makes training end responses
 * with it. config.json and the tokenizer keep the sentencepiece ids (bos 1, eos 2).
 */
function generationConfig(sp: SentencePieceModel): Record<string, unknown> {
  return { bos_token_id: sp.bosId, eos_token_id: sp.bosId };
}

/**
 * llama2.c checkpoint + tokenizer -> a Hugging Face model directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json).
 * The directory appears whole or not at all (built beside it, then renamed).
 */
export async function importLlama2c(opts: ImportOptions): Promise<ImportResult> {
  const ckpt = await readFile(opts.checkpoint);
  const tokBytes = await readFile(opts.tokenizer);
  const source = {
    checkpoint: { file: basename(opts.checkpoint), sha256: sha256(ckpt) },
    tokenizer: { file: basename(opts.tokenizer), sha256: sha256(tokBytes) },
  };

  const { config: c, tensors } = convertCheckpoint(ckpt, opts.checkpoint);
  const sp: SentencePieceModel = opts.tokenizer.endsWith(".model")
    ? parseSentencePieceModel(tokBytes, opts.tokenizer)
    : parseLlama2cTokenizer(tokBytes, c.vocabSize, opts.tokenizer);
  if (sp.pieces.length !== c.vocabSize) {
    throw new Error(
      `${opts.tokenizer}: ${sp.pieces.length} pieces but the checkpoint's vocabulary has ${c.vocabSize}: they do not belong together`,
    );
  }
  const tokenizerJson = buildTokenizerJson(sp, opts.tokenizer);
  const config = hfConfig(c, sp.bosId, sp.eosId);
  const nParams = tensors.reduce((s, t) => s + t.data.length, 0);
  const files: Record<string, Uint8Array | string> = {
    "config.json": `${JSON.stringify(config, null, 2)}\n`,
    "generation_config.json": `${JSON.stringify(generationConfig(sp), null, 2)}\n`,
    "model.safetensors": encodeSafetensors(tensors),
    "tokenizer.json": JSON.stringify(tokenizerJson),
    "tokenizer_config.json": `${JSON.stringify(buildTokenizerConfig(sp, c.seqLen), null, 2)}\n`,
  };
  const digests = Object.fromEntries(
    Object.entries(files).map(([name, data]) => [
      name,
      sha256(typeof data === "string" ? Buffer.from(data) : data),
    ]),
  );
  const manifest = {
    importer: "loraforge import llama2c",
    source,
    n_params: nParams,
    files: digests,
  };
  files["import.json"] = `${JSON.stringify(manifest, null, 2)}\n`;

  // Re-running the same import is a no-op, but only if every file would come out the same.
  const existing = await readFile(join(opts.outDir, "import.json"), "utf8").catch(() => undefined);
  if (existing !== undefined && existing === files["import.json"]) {
    return { outDir: opts.outDir, written: false, config, nParams, files: [] };
  }
  const exists = await stat(opts.outDir).then(
    () => true,
    () => false,
  );
  if (exists && !opts.force && existing === undefined) {
    throw new Error(
      `${opts.outDir} already exists and is not an imported model; choose another directory or pass --force`,
    );
  }
  if (exists && !opts.force) {
    const prev = JSON.parse(existing as string) as { source?: unknown };
    if (JSON.stringify(prev.source) !== JSON.stringify(source))
      throw new Error(
        `${opts.outDir} holds an import of other files; choose another directory or pass --force`,
      );
    // Same sources, different output (a newer importer): replace it.
  }

  const tmp = join(dirname(opts.outDir), `.${basename(opts.outDir)}.importing-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    for (const [name, data] of Object.entries(files)) await writeFile(join(tmp, name), data);
    if (exists) await rm(opts.outDir, { recursive: true, force: true });
    await rename(tmp, opts.outDir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return { outDir: opts.outDir, written: true, config, nParams, files: Object.keys(files) };
}
