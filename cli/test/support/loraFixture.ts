import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseLlamaConfig } from "../../src/export/hfModel.ts";
import { encodeSafetensors } from "../../src/safetensors/safetensors.ts";

/** A PEFT adapter with random A and B on all seven modules (B nonzero, so it changes the model). */
export async function randomAdapter(model: string, dir: string, scale = 0.5): Promise<string> {
  const cfg = parseLlamaConfig(
    JSON.parse(await readFile(join(model, "config.json"), "utf8")),
    model,
  );
  const r = 4;
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  };
  const modules: [string, number, number][] = [
    ["self_attn.q_proj", cfg.heads * cfg.headDim, cfg.hidden],
    ["self_attn.k_proj", cfg.kvHeads * cfg.headDim, cfg.hidden],
    ["self_attn.v_proj", cfg.kvHeads * cfg.headDim, cfg.hidden],
    ["self_attn.o_proj", cfg.hidden, cfg.heads * cfg.headDim],
    ["mlp.gate_proj", cfg.intermediate, cfg.hidden],
    ["mlp.up_proj", cfg.intermediate, cfg.hidden],
    ["mlp.down_proj", cfg.hidden, cfg.intermediate],
  ];
  const tensors = [];
  for (let i = 0; i < cfg.layers; i++)
    for (const [m, out, inp] of modules) {
      const p = `base_model.model.model.layers.${i}.${m}`;
      tensors.push({
        name: `${p}.lora_A.weight`,
        shape: [r, inp],
        data: Float32Array.from({ length: r * inp }, () => rand() * scale),
      });
      tensors.push({
        name: `${p}.lora_B.weight`,
        shape: [out, r],
        data: Float32Array.from({ length: out * r }, () => rand() * scale),
      });
    }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "adapter_model.safetensors"), encodeSafetensors(tensors));
  await writeFile(
    join(dir, "adapter_config.json"),
    JSON.stringify({
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      r,
      lora_alpha: 8,
      lora_dropout: 0,
      use_rslora: true,
      bias: "none",
      target_modules: modules.map(([m]) => m.split(".")[1]),
      base_model_name_or_path: model,
    }),
  );
  return dir;
}
