import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type LoraFineTuneSpec, readLoraFineTuneFile } from "@loraforge/crds";
import type { DatasetFormat } from "../dataset/parse.ts";
import { METRIC_ROWS, type ModelMetrics } from "../eval/report.ts";
import type { EvalResult, GenerationOptions } from "../eval/run.ts";
import { DEFAULT_GENERATION, runEvaluation } from "../eval/run.ts";
import { loadTemplate, readManifest, type TemplateChoice } from "../prepare/prepare.ts";
import { resolveLocalPaths } from "../train/resolve.ts";
import { fmtNum, intFlag, type Out, UsageError } from "./output.ts";
import { parseVolumes } from "./train.ts";

function numFlag(value: string | undefined, name: string, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(
      `--${name} must be a number from ${min} to ${max}, got "${value}"`,
      "eval",
    );
  return n;
}

function templateChoice(value: string): TemplateChoice {
  return value === "alpaca" || value === "alpaca_short"
    ? { name: value }
    : { name: "custom", file: resolve(value) };
}

export async function evalCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      adapter: { type: "string" },
      data: { type: "string" },
      "eval-file": { type: "string" },
      out: { type: "string" },
      volume: { type: "string", multiple: true },
      template: { type: "string" },
      cutoff: { type: "string" },
      "val-set-size": { type: "string" },
      seed: { type: "string" },
      format: { type: "string" },
      samples: { type: "string" },
      show: { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "repetition-penalty": { type: "string" },
      "sampling-seed": { type: "string" },
      "batch-size": { type: "string" },
      threads: { type: "string" },
    },
  });
  if (positionals.length > 1) throw new UsageError("eval takes at most one spec file", "eval");
  const format = values.format;
  if (format !== undefined && format !== "auto" && format !== "json" && format !== "jsonl")
    throw new UsageError(`--format must be auto, json or jsonl, got "${format}"`, "eval");
  const fmt: DatasetFormat | undefined =
    format === undefined || format === "auto" ? undefined : format;

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
    const lft = readLoraFineTuneFile(specFile);
    spec = lft.spec;
    const paths = resolveLocalPaths(spec, {
      specFile,
      volumes: parseVolumes(values.volume),
      ...(values.out ? { outDir: values.out } : {}),
    });
    modelDir = paths.modelDir;
    dataFile = paths.datasetFile;
    outDir = paths.outDir;
    adapterDir = values.adapter ? resolve(values.adapter) : join(outDir, "adapter");
    template = paths.customTemplateFile
      ? { name: "custom", file: paths.customTemplateFile }
      : { name: spec.dataset.promptTemplate as "alpaca" | "alpaca_short" };
  } else {
    if (!values.model || !(values.data || values["eval-file"]) || !values.out)
      throw new UsageError(
        "give a spec file, or --model DIR --data FILE (or --eval-file FILE) --out DIR",
        "eval",
      );
    modelDir = resolve(values.model);
    adapterDir = values.adapter ? resolve(values.adapter) : null;
    dataFile = resolve(values.data ?? (values["eval-file"] as string));
    outDir = resolve(values.out);
    template = templateChoice(values.template ?? "alpaca");
  }

  const evalFile = values["eval-file"];
  const valSetSize =
    intFlag(values["val-set-size"], "val-set-size") ?? spec?.dataset.valSetSize ?? 2000;
  const splitSeed = intFlag(values.seed, "seed") ?? spec?.training.seed ?? 42;
  const generation: GenerationOptions = {
    maxNewTokens:
      intFlag(values["max-new-tokens"], "max-new-tokens", 1) ??
      spec?.evaluation.maxNewTokens ??
      DEFAULT_GENERATION.maxNewTokens,
    temperature:
      numFlag(values.temperature, "temperature", 0, 100) ??
      spec?.evaluation.temperature ??
      DEFAULT_GENERATION.temperature,
    topK: intFlag(values["top-k"], "top-k") ?? DEFAULT_GENERATION.topK,
    topP: numFlag(values["top-p"], "top-p", 0, 1) ?? DEFAULT_GENERATION.topP,
    repetitionPenalty:
      numFlag(values["repetition-penalty"], "repetition-penalty", 0.01, 100) ??
      DEFAULT_GENERATION.repetitionPenalty,
    seed:
      intFlag(values["sampling-seed"], "sampling-seed") ??
      spec?.training.seed ??
      DEFAULT_GENERATION.seed,
    batchSize: intFlag(values["batch-size"], "batch-size", 1) ?? DEFAULT_GENERATION.batchSize,
  };
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
      samples: intFlag(values.samples, "samples", 1) ?? spec?.evaluation.samples ?? 50,
    },
    cutoffLen: intFlag(values.cutoff, "cutoff", 2) ?? spec?.dataset.cutoffLen ?? 512,
    addEos: spec?.dataset.addEos ?? true,
    generation,
    outDir,
    ...(spec ? { dataDigest: (await readManifest(join(outDir, "data")))?.digest } : {}),
    threads: intFlag(values.threads, "threads") ?? 0,
    onMessage: (m) => out.info(m),
  });
  printEvaluation(out, result, intFlag(values.show, "show") ?? 3);
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
