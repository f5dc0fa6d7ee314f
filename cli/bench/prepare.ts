/**
 * Data preparation speed: the 5,000-record Alpaca file, templated, tokenized with the Llama-2
 * tokenizer.json, masked and truncated, by `loraforge prepare`'s pipeline and by alpaca-lora's
 * (datasets.load_dataset + .map(generate_and_tokenize_prompt), Rust tokenizers), side by side in
 * one run, with a check that both produced the same examples.
 *
 *   npx tsx cli/bench/prepare.ts [--runs 3] [--python .venv/bin/python]
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { validateBytes } from "../src/dataset/validate.ts";
import { buildExamples } from "../src/prepare/prepare.ts";
import { ALPACA, CompiledTemplate } from "../src/prompt/templates.ts";
import { encodeShard } from "../src/shards/lfs.ts";
import { loadModelTokenizer } from "../src/tokenizer/tokenizer.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const assets = resolve(root, "..", "shared", "assets");
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    python: { type: "string", default: join(root, ".venv", "bin", "python") },
    cutoff: { type: "string", default: "512" },
  },
});
const runs = Number(values.runs);
const cutoff = Number(values.cutoff);
const dataset = join(assets, "alpaca-stanford-5000", "alpaca_5000.json");
const tokenizerJson = join(assets, "llama2-tokenizer-json", "tokenizer.json");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function ours() {
  const dir = await mkdtemp(join(tmpdir(), "lf-bench-"));
  try {
    await copyFile(tokenizerJson, join(dir, "tokenizer.json"));
    await copyFile(
      join(assets, "llama2-tokenizer-json", "tokenizer_config.json"),
      join(dir, "tokenizer_config.json"),
    );
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ vocab_size: 32000, bos_token_id: 1, eos_token_id: 2 }),
    );
    let t = performance.now();
    const tokenizer = await loadModelTokenizer(dir);
    const tokenizerS = (performance.now() - t) / 1000;
    t = performance.now();
    const report = validateBytes(await readFile(dataset), dataset);
    const loadS = (performance.now() - t) / 1000;
    t = performance.now();
    const cpu = process.cpuUsage();
    const { examples, stats } = buildExamples(
      report.records,
      CompiledTemplate.compile(ALPACA),
      tokenizer,
      {
        cutoffLen: cutoff,
        trainOnInputs: false,
        addEos: true,
      },
    );
    const mapS = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    const mapCpuS = (used.user + used.system) / 1e6;
    t = performance.now();
    encodeShard(examples, tokenizer.vocabSize);
    const shardS = (performance.now() - t) / 1000;
    const h = createHash("sha256");
    for (const e of examples) h.update(JSON.stringify([e.ids, Array.from(e.mask)]));
    return {
      tokenizerS,
      loadS,
      mapS,
      mapCpuS,
      shardS,
      records: examples.length,
      tokens: stats.tokens,
      sha256: h.digest("hex"),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function reference() {
  const r = spawnSync(
    values.python as string,
    [join(here, "prepare_reference.py"), dataset, tokenizerJson, String(cutoff)],
    {
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`reference failed: ${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop() as string;
  return JSON.parse(line) as {
    import_s: number;
    tokenizer_s: number;
    load_s: number;
    map_s: number;
    map_cpu_s: number;
    records: number;
    tokens: number;
    sha256: string;
  };
}

const o: Awaited<ReturnType<typeof ours>>[] = [];
const p: ReturnType<typeof reference>[] = [];
for (let i = 0; i < runs; i++) {
  // ours in a fresh process each time would include tsx start-up; the library's caches are
  // per tokenizer instance, and each run loads a new one, so runs are independent.
  o.push(await ours());
  p.push(reference());
}
const O = {
  tok: median(o.map((x) => x.tokenizerS)),
  load: median(o.map((x) => x.loadS)),
  map: median(o.map((x) => x.mapS)),
  shard: median(o.map((x) => x.shardS)),
};
const P = {
  tok: median(p.map((x) => x.tokenizer_s)),
  load: median(p.map((x) => x.load_s)),
  map: median(p.map((x) => x.map_s)),
};
const row = (name: string, a: number, b: number) =>
  `| ${name.padEnd(34)} | ${a.toFixed(2).padStart(8)} | ${b.toFixed(2).padStart(8)} | ${(b / a).toFixed(2).padStart(6)}x |`;
console.log(
  `alpaca_5000.json: ${o[0]?.records} records, cutoff ${cutoff}, prompt masked; median of ${runs} runs (seconds)`,
);
console.log(
  `| ${"phase".padEnd(34)} | ${"loraforge".padStart(8)} | ${"python".padStart(8)} | speed-up |`,
);
console.log(`|${"-".repeat(36)}|${"-".repeat(10)}|${"-".repeat(10)}|${"-".repeat(10)}|`);
console.log(row("load tokenizer.json", O.tok, P.tok));
console.log(row("read + validate dataset", O.load, P.load));
console.log(row("template + tokenize + mask (map)", O.map, P.map));
console.log(
  row("  the same, CPU time", median(o.map((x) => x.mapCpuS)), median(p.map((x) => x.map_cpu_s))),
);
console.log(
  row("total (+ shard for loraforge)", O.tok + O.load + O.map + O.shard, P.tok + P.load + P.map),
);
console.log(
  `tokens: ${o[0]?.tokens} vs ${p[0]?.tokens}; same ids and masks: ${o[0]?.sha256 === p[0]?.sha256 ? "yes" : "NO"}`,
);
console.log(
  `python imports (datasets, transformers), not counted above: ${median(p.map((x) => x.import_s)).toFixed(2)} s`,
);
