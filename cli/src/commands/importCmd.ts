import { parseArgs } from "node:util";
import { importLlama2c } from "../llama2c/import.ts";
import { fmtInt, type Out, UsageError } from "./output.ts";

export async function importCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string" }, force: { type: "boolean" } },
  });
  if (positionals[0] !== "llama2c")
    throw new UsageError(
      `import knows one source format, llama2c (got "${positionals[0] ?? ""}")`,
      "import",
    );
  if (positionals.length !== 3)
    throw new UsageError("import llama2c takes a checkpoint and a tokenizer", "import");
  if (!values.out) throw new UsageError("import llama2c needs --out DIR", "import");
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
