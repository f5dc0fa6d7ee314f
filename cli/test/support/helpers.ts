import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle } from "../../../scripts/bundle.mjs";
import { importLlama2c } from "../../src/llama2c/import.ts";

export const CLI_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REPO_ROOT = resolve(CLI_ROOT, "..");
/** The read-only test assets (CI lays shared/ beside the clone). */
export const ASSETS = resolve(REPO_ROOT, "..", "shared", "assets");
export const GOLDEN = join(CLI_ROOT, "test", "golden");
/** The demo's instruction dataset (JSONL, one story request per line). */
export const STORIES = join(REPO_ROOT, "examples", "stories-instruct", "stories.jsonl");

let bundled: Promise<unknown> | undefined;
/** bin/loraforge.mjs, with the bundle it runs rebuilt from the sources once per test process. */
export async function cliBin(): Promise<string> {
  bundled ??= bundle(["cli"]);
  await bundled;
  return join(CLI_ROOT, "bin", "loraforge.mjs");
}

export async function tempDir(
  prefix = "lf-test-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A model directory holding the Llama-2 tokenizer and a config.json (no weights: tokenizer tests only). */
export async function llama2TokenizerDir(dir: string): Promise<string> {
  const src = join(ASSETS, "llama2-tokenizer-json");
  await copyFile(join(src, "tokenizer.json"), join(dir, "tokenizer.json"));
  await copyFile(join(src, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      vocab_size: 32000,
      bos_token_id: 1,
      eos_token_id: 2,
    }),
  );
  return dir;
}

/** The stories260K demo model, imported from llama2.c into `outDir` as `loraforge import llama2c` does. */
export function importStories260K(outDir: string) {
  return importLlama2c({
    checkpoint: join(ASSETS, "stories260K", "stories260K.bin"),
    tokenizer: join(ASSETS, "stories260K", "tok512.model"),
    outDir,
  });
}

/** A run folder as the specs in the tests expect it: `models/stories260K` and the first `n` stories as `data/stories.jsonl`. */
export async function storiesWorkspace(dir: string, n: number): Promise<void> {
  await importStories260K(join(dir, "models", "stories260K"));
  const lines = (await readFile(STORIES, "utf8")).split("\n").slice(0, n);
  await mkdir(join(dir, "data"));
  await writeFile(join(dir, "data", "stories.jsonl"), `${lines.join("\n")}\n`);
}
