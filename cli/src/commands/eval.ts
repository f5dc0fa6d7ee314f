import { isAbsolute, join, resolve } from "node:path";
import type { LoraFineTuneSpec } from "@loraforge/crds";
import { defineCommand, flag, parseCommand, refuseWithout } from "../args/flags.ts";
import {
  parseVolumes,
  requireAdapterDir,
  requireFile,
  requireModelDir,
  requireSpecInputs,
} from "../args/paths.ts";
import { readSpecFile } from "../args/specFile.ts";
import type { DatasetFormat } from "../dataset/parse.ts";
import { METRIC_ROWS, type ModelMetrics } from "../eval/report.ts";
import type { EvalResult, GenerationOptions } from "../eval/run.ts";
import { DEFAULT_GENERATION, runEvaluation } from "../eval/run.ts";
import { loadTemplate, readManifest, type TemplateChoice } from "../prepare/prepare.ts";
import { resolveLocalPaths } from "../train/resolve.ts";
import { fmtNum, type Out, UsageError } from "./output.ts";

function templateChoice(value: string): TemplateChoice {
  return value === "alpaca" || value === "alpaca_short"
    ? { name: value }
    : { name: "custom", file: resolve(value) };
}

const SAMPLING = ["top-k", "top-p", "repetition-penalty", "sampling-seed"] as const;

export const evalCli = defineCommand({
  name: "eval",
  summary: {
    usage: "eval <spec.yaml>",
    text: "base vs fine-tuned: generate, score, metrics, eval.json",
  },
  usage: `loraforge eval <spec.yaml> [options]
       loraforge eval --model DIR [--adapter DIR] --data FILE --out DIR [options]`,
  description: `Evaluates the base model and the fine-tuned one (base + adapter) on held-out examples: the
validation split training used (same seed, same split), or --eval-file. The native core generates
both models' answers in one process (prompt = the template up to "### Response:\n") and scores
the reference answers; the cli computes eval loss, perplexity, exact match, token F1, ROUGE-L,
prompt repetition, share of answers that stopped and mean length (definitions: docs/CONTRACTS.md
§5). Prints the metric table and sample answers side by side; writes <out>/eval.json.
With a spec, the adapter is <out>/adapter and the settings come from spec.evaluation.`,
  flags: {
    out: flag.string("DIR", "output directory (default: the spec's); eval.json goes there", "dir"),
    volume: flag.list("CLAIM=DIR", "as for train (with a spec only)"),
    adapter: flag.string(
      "DIR",
      "the adapter to evaluate (default with a spec: <out>/adapter)",
      "dir",
    ),
    "eval-file": flag.string(
      "FILE",
      "evaluate on this dataset instead of the validation split",
      "file",
    ),
    samples: flag.int("examples to evaluate (default spec.evaluation.samples, or 50)", 1),
    show: flag.int("sample answers to print (default 3)"),
    "max-new-tokens": flag.int(
      "at most N new tokens (default spec.evaluation.maxNewTokens, or 256;\nnever past the cutoff after the longest prompt)",
      1,
    ),
    temperature: flag.number(
      "0 = greedy (default); > 0 samples, with --top-k, --top-p,\n--repetition-penalty, --sampling-seed (default the training seed)",
      0,
      100,
      "T",
    ),
    "top-k": flag.int("sampling: keep the K most likely tokens (0 = all)", 0, "K"),
    "top-p": flag.number("sampling: nucleus share", 0, 1, "P"),
    "repetition-penalty": flag.number("sampling: penalty of tokens already generated", 0.01, 100),
    "sampling-seed": flag.int("sampling: seed"),
    "batch-size": flag.int("prompts decoded together (default 8)", 1),
    threads: flag.int("CPU threads for the core (default: all cores)"),
    json: flag.bool(
      "print eval.json's content as one JSON document on stdout;\nthe table and the samples go to stderr",
    ),
    model: flag.string("DIR", "without a spec: the base model directory", "dir"),
    data: flag.string("FILE", "without a spec: the dataset", "file"),
    template: flag.string(
      "NAME|FILE",
      "without a spec: alpaca (default), alpaca_short, or a template JSON file",
      "file",
    ),
    cutoff: flag.int("cutoff length in tokens (default the spec's, or 512)", 2),
    "val-set-size": flag.int(
      "evaluate on the validation split `prepare` makes with these\n(default: the spec's; without a spec the whole --data file)",
    ),
    seed: flag.int("seed of that split (default the spec's training seed, or 42)"),
    format: flag.choice(
      ["auto", "json", "jsonl"],
      "dataset format (default: from the first character)",
    ),
  },
  positionals: "file",
  epilogue: `Example:
  loraforge eval examples/stories260k-demo.yaml --volume models=.cache/models --out .cache/runs/stories260k-demo`,
});

export async function evalCommand(args: string[], humanOut: Out): Promise<number> {
  const p = parseCommand(evalCli, args);
  const { values, positionals } = p;
  if (positionals.length > 1) throw new UsageError("eval takes at most one spec file", "eval");
  const json = values.json === true;
  const out: Out = json ? { info: humanOut.error, error: humanOut.error } : humanOut;
  const format = values.format;
  const fmt: DatasetFormat | undefined =
    format === undefined || format === "auto" ? undefined : format;
  if (values["eval-file"] !== undefined)
    refuseWithout(p, evalCli, ["val-set-size", "seed"], "with --eval-file (no split is made)");

  let spec: LoraFineTuneSpec | undefined;
  let modelDir: string;
  let adapterDir: string | null;
  let dataFile: string;
  let outDir: string;
  let template: TemplateChoice;
  if (positionals.length === 1) {
    for (const f of ["model", "data", "template"] as const)
      if (values[f] !== undefined)
        throw new UsageError(`--${f} comes from the spec; leave it out with a spec file`, "eval");
    const specFile = positionals[0] as string;
    const lft = readSpecFile(specFile);
    spec = lft.spec;
    const volumes = parseVolumes(values.volume);
    const paths = resolveLocalPaths(spec, {
      specFile,
      volumes,
      ...(values.out ? { outDir: values.out } : {}),
    });
    await requireSpecInputs(spec, paths, volumes);
    modelDir = paths.modelDir;
    dataFile = paths.datasetFile;
    outDir = paths.outDir;
    adapterDir = values.adapter ? resolve(values.adapter) : join(outDir, "adapter");
    if (!values.adapter)
      await requireAdapterDir(
        adapterDir,
        `the run's chosen adapter is not there yet: run loraforge train ${specFile} first, or give --adapter DIR`,
      );
    template = paths.customTemplateFile
      ? { name: "custom", file: paths.customTemplateFile }
      : { name: spec.dataset.promptTemplate as "alpaca" | "alpaca_short" };
  } else {
    if (!values.model || !(values.data || values["eval-file"]) || !values.out)
      throw new UsageError(
        "give a spec file, or --model DIR --data FILE (or --eval-file FILE) --out DIR",
        "eval",
      );
    refuseWithout(
      p,
      evalCli,
      ["volume"],
      "without a spec file (--volume maps the spec's pvc claims)",
    );
    modelDir = resolve(await requireModelDir(values.model));
    adapterDir = values.adapter ? resolve(values.adapter) : null;
    dataFile = resolve(values.data ?? (values["eval-file"] as string));
    outDir = resolve(values.out);
    template = templateChoice(values.template ?? "alpaca");
  }

  if (values.adapter && adapterDir) await requireAdapterDir(adapterDir);
  const evalFile = values["eval-file"];
  if (evalFile !== undefined) await requireFile(evalFile, "--eval-file");
  else if (!spec) await requireFile(dataFile, "dataset");
  const valSetSize = values["val-set-size"] ?? spec?.dataset.valSetSize ?? 2000;
  const splitSeed = values.seed ?? spec?.training.seed ?? 42;
  const generation: GenerationOptions = {
    maxNewTokens:
      values["max-new-tokens"] ?? spec?.evaluation.maxNewTokens ?? DEFAULT_GENERATION.maxNewTokens,
    temperature:
      values.temperature ?? spec?.evaluation.temperature ?? DEFAULT_GENERATION.temperature,
    topK: values["top-k"] ?? DEFAULT_GENERATION.topK,
    topP: values["top-p"] ?? DEFAULT_GENERATION.topP,
    repetitionPenalty: values["repetition-penalty"] ?? DEFAULT_GENERATION.repetitionPenalty,
    seed: values["sampling-seed"] ?? spec?.training.seed ?? DEFAULT_GENERATION.seed,
    batchSize: values["batch-size"] ?? DEFAULT_GENERATION.batchSize,
  };
  if (generation.temperature === 0)
    refuseWithout(p, evalCli, [...SAMPLING], "at temperature 0 (greedy decoding does not sample)");
  const result = await runEvaluation({
    modelDir,
    adapterDir,
    template: await loadTemplate(template),
    templateName: template.name === "custom" ? `custom:${template.file}` : template.name,
    records: {
      datasetFile: evalFile ? (isAbsolute(evalFile) ? evalFile : resolve(evalFile)) : dataFile,
      ...(fmt ? { format: fmt } : {}),
      ...(evalFile || (!spec && values["val-set-size"] === undefined)
        ? {}
        : { split: { valSetSize, seed: splitSeed } }),
      samples: values.samples ?? spec?.evaluation.samples ?? 50,
    },
    cutoffLen: values.cutoff ?? spec?.dataset.cutoffLen ?? 512,
    addEos: spec?.dataset.addEos ?? true,
    generation,
    outDir,
    ...(spec ? { dataDigest: (await readManifest(join(outDir, "data")))?.digest } : {}),
    threads: values.threads ?? 0,
    onMessage: (m) => out.info(m),
  });
  printEvaluation(out, result, values.show ?? 3);
  if (json) humanOut.info(JSON.stringify(result, null, 2));
  return 0;
}

const pct = new Set<keyof ModelMetrics>([
  "exactMatch",
  "tokenF1",
  "rougeL",
  "promptRepetition",
  "stopped",
]);

function fmtMetric(key: keyof ModelMetrics, v: number | null | undefined): string {
  if (v === null || v === undefined) return "-";
  if (pct.has(key)) return `${(v * 100).toFixed(1)}%`;
  if (key === "meanLength") return v.toFixed(1);
  return fmtNum(v);
}

function fmtChange(
  key: keyof ModelMetrics,
  a: number | null,
  b: number | null | undefined,
): string {
  if (a === null || b === null || b === undefined) return "-";
  const d = b - a;
  const s = d > 0 ? "+" : d < 0 ? "-" : "±";
  if (pct.has(key)) return `${s}${Math.abs(d * 100).toFixed(1)} pts`;
  return `${s}${key === "meanLength" ? Math.abs(d).toFixed(1) : fmtNum(Math.abs(d))}`;
}

/** The metric table (metric | base | fine-tuned | change) and `show` sample answers side by side. */
export function printEvaluation(out: Out, r: EvalResult, show: number): void {
  const { base, tuned } = r.metrics;
  const rows = [
    ["metric", "base", "fine-tuned", "change"],
    ...METRIC_ROWS.map(({ key, label, better }) => [
      better ? `${label} (${better} is better)` : label,
      fmtMetric(key, base[key]),
      tuned ? fmtMetric(key, tuned[key]) : "-",
      tuned ? fmtChange(key, base[key], tuned[key]) : "-",
    ]),
  ];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((row) => (row[c] as string).length)));
  const line = (row: string[]) =>
    `  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number))).join("  ")}`;
  out.info("");
  out.info(
    `evaluation on ${r.data.examples} ${r.data.split === "validation" ? "validation" : "eval-file"} examples (${r.settings.temperature === 0 ? "greedy" : `temperature ${r.settings.temperature}`}, up to ${r.settings.maxNewTokens} new tokens, stop on ${r.settings.stopTokens.join(",")})`,
  );
  out.info(line(rows[0] as string[]));
  for (const row of rows.slice(1)) out.info(line(row));
  const oneLine = (s: string, n = 300) => {
    const t = s.replace(/\s*\n\s*/g, " / ");
    return t.length > n ? `${t.slice(0, n)}…` : t;
  };
  for (const s of r.samples.slice(0, show)) {
    out.info("");
    out.info(
      `  example ${s.id} (line ${s.line}): ${oneLine(s.instruction, 200)}${s.input ? ` [input: ${oneLine(s.input, 100)}]` : ""}`,
    );
    out.info(`    reference:  ${oneLine(s.reference)}`);
    out.info(
      `    base:       ${oneLine(s.base.text) || "(empty)"}${s.base.stop === "max_new_tokens" ? " [cut off]" : ""}`,
    );
    if (s.tuned)
      out.info(
        `    fine-tuned: ${oneLine(s.tuned.text) || "(empty)"}${s.tuned.stop === "max_new_tokens" ? " [cut off]" : ""}`,
      );
  }
  out.info("");
  out.info(`  eval.json        ${r.files.evalJson}`);
}
