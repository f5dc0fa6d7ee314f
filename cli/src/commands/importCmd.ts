import { defineCommand, flag, parseCommand } from "../args/flags.ts";
import { requireFile } from "../args/paths.ts";
import { importLlama2c } from "../llama2c/import.ts";
import { fmtInt, type Out, UsageError } from "./output.ts";

export const importCli = defineCommand({
  name: "import",
  summary: {
    usage: "import llama2c <ckpt> <tok>",
    text: "turn a llama2.c checkpoint + tokenizer into a Hugging Face model dir",
  },
  usage:
    "loraforge import llama2c <checkpoint.bin> <tokenizer.model|tokenizer.bin> --out DIR [--force]",
  description: `Converts a llama2.c checkpoint (version-0 export, as run.c reads it) and its sentencepiece
tokenizer into a Hugging Face LlamaForCausalLM directory: config.json, model.safetensors (q/k
rows permuted from llama2.c's interleaved RoPE to Hugging Face's rotate_half layout),
tokenizer.json (a byte-fallback BPE that encodes exactly as sentencepiece does),
tokenizer_config.json, generation_config.json. The directory appears whole or not at all;
importing the same files again is a no-op.`,
  flags: {
    out: flag.string("DIR", "the model directory to write", "dir"),
    force: flag.bool("replace an existing, different output directory"),
  },
  subcommands: ["llama2c"],
  positionals: "file",
  epilogue: `Example:
  loraforge import llama2c ../shared/assets/stories260K/stories260K.bin ../shared/assets/stories260K/tok512.model --out .cache/models/stories260K`,
});

export async function importCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(importCli, args);
  if (positionals[0] !== "llama2c")
    throw new UsageError(
      `import knows one source format, llama2c (got "${positionals[0] ?? ""}")`,
      "import",
    );
  if (positionals.length !== 3)
    throw new UsageError("import llama2c takes a checkpoint and a tokenizer", "import");
  if (!values.out) throw new UsageError("import llama2c needs --out DIR", "import");
  await requireFile(positionals[1] as string, "checkpoint");
  await requireFile(positionals[2] as string, "tokenizer");
  const r = await importLlama2c({
    checkpoint: positionals[1] as string,
    tokenizer: positionals[2] as string,
    outDir: values.out,
    ...(values.force ? { force: true } : {}),
  });
  const c = r.config;
  out.info(
    `${r.written ? "imported" : "already imported"}: ${values.out} (${fmtInt(r.nParams)} parameters; ${c.num_hidden_layers} layers, dim ${c.hidden_size}, ${c.num_attention_heads} heads / ${c.num_key_value_heads} kv heads, vocab ${c.vocab_size})`,
  );
  return 0;
}
