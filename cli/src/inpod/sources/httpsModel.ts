// A model directory behind an https:// URL. A web server cannot list a folder, so the files a
// Hugging Face model directory has are fetched by name: config.json and tokenizer.json
// (required), the optional tokenizer and generation files, and the weights —
// model.safetensors.index.json and the shards its weight_map names, else model.safetensors.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { SourceFailure } from "./failure.ts";
import { type DownloadOptions, downloadHttps } from "./https.ts";

const REQUIRED = ["config.json", "tokenizer.json"];
const OPTIONAL = [
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
  "tokenizer.model",
];

const IndexSchema = z.object({ weight_map: z.record(z.string(), z.string()) });

export async function fetchHttpsModel(
  base: string,
  dir: string,
  o: Omit<DownloadOptions, "sha256">,
): Promise<string[]> {
  const root = base.endsWith("/") ? base : `${base}/`;
  let budget = o.maxBytes;
  const got: string[] = [];
  const fetchOne = async (name: string, optional: boolean) => {
    try {
      const d = await downloadHttps(new URL(name, root).toString(), join(dir, name), {
        ...o,
        maxBytes: budget,
      });
      budget -= d.bytes;
      got.push(name);
      return true;
    } catch (e) {
      if (optional && e instanceof SourceFailure && / HTTP 404/.test(e.message)) return false;
      throw e;
    }
  };
  for (const name of REQUIRED) await fetchOne(name, false);
  for (const name of OPTIONAL) await fetchOne(name, true);
  if (await fetchOne("model.safetensors.index.json", true)) {
    const file = join(dir, "model.safetensors.index.json");
    const parsed = IndexSchema.safeParse(JSON.parse(await readFile(file, "utf8")));
    if (!parsed.success)
      throw new SourceFailure(`${root}model.safetensors.index.json`, "no weight_map", "permanent");
    const shards = [...new Set(Object.values(parsed.data.weight_map))].sort();
    for (const shard of shards) {
      if (!/^[A-Za-z0-9][-A-Za-z0-9_.]*\.safetensors$/.test(shard))
        throw new SourceFailure(
          `${root}model.safetensors.index.json`,
          `weight_map names "${shard}", not a file beside it`,
          "permanent",
        );
      await fetchOne(shard, false);
    }
  } else {
    await fetchOne("model.safetensors", false);
  }
  return got;
}
