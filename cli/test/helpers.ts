import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const CLI_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = resolve(CLI_ROOT, "..");
/** The read-only test assets (CI lays shared/ beside the clone). */
export const ASSETS = resolve(REPO_ROOT, "..", "shared", "assets");
export const GOLDEN = join(CLI_ROOT, "test", "golden");

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
