import { parseArgs } from "node:util";
import type { DatasetFormat } from "../dataset/parse.ts";
import { validateFile } from "../dataset/validate.ts";
import { loadTemplate, type TemplateChoice } from "../prepare/prepare.ts";
import { loadModelTokenizer } from "../tokenizer/tokenizer.ts";
import { fmtInt, intFlag, type Out, printProblems, UsageError } from "./output.ts";

export function templateChoice(value: string | undefined): TemplateChoice {
  if (value === undefined || value === "alpaca") return { name: "alpaca" };
  if (value === "alpaca_short") return { name: "alpaca_short" };
  if (value.endsWith(".json")) return { name: "custom", file: value };
  throw new UsageError(
    `--template must be alpaca, alpaca_short or a template .json file, got "${value}"`,
  );
}

export function formatFlag(value: string | undefined): DatasetFormat | undefined {
  if (value === undefined || value === "auto" || value === "json" || value === "jsonl")
    return value;
  throw new UsageError(`--format must be auto, json or jsonl, got "${value}"`);
}

export async function validateCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      "val-set-size": { type: "string" },
      seed: { type: "string" },
      model: { type: "string" },
      template: { type: "string" },
      cutoff: { type: "string" },
      strict: { type: "boolean" },
      json: { type: "boolean" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("validate takes one dataset file", "validate");
  const file = positionals[0] as string;
  const format = formatFlag(values.format);
  const tokens = values.model
    ? {
        tokenizer: await loadModelTokenizer(values.model),
        template: await loadTemplate(templateChoice(values.template)),
        cutoffLen: intFlag(values.cutoff, "cutoff", 1) ?? 512,
        trainOnInputs: false,
        addEos: true,
      }
    : undefined;
  const report = await validateFile(file, {
    ...(format ? { format } : {}),
    split: {
      valSetSize: intFlag(values["val-set-size"], "val-set-size") ?? 2000,
      seed: intFlag(values.seed, "seed") ?? 42,
    },
    ...(values.strict ? { strict: true } : {}),
    ...(tokens ? { tokens } : {}),
  });
  if (values.json) {
    const { records: _records, ...rest } = report;
    out.info(JSON.stringify(rest, null, 2));
    return report.ok ? 0 : 3;
  }
  printProblems(out, report.problems);
  const s = report.stats;
  out.info(
    `${file}: ${report.format}, ${fmtInt(s.records)} records, ${fmtInt(s.usable)} usable, ${fmtInt(s.rejected)} rejected, ${fmtInt(s.withInput)} with input, ${fmtInt(s.duplicates)} duplicates`,
  );
  if (s.split)
    out.info(
      `split: ${fmtInt(s.split.train)} train / ${fmtInt(s.split.val)} validation, ${s.split.overlap} in both`,
    );
  if (s.tokens) {
    const t = s.tokens;
    out.info(
      `tokens per record: min ${t.perRecord.min}, median ${t.perRecord.p50}, p95 ${t.perRecord.p95}, max ${t.perRecord.max}; ${t.truncated} (${(100 * t.truncatedShare).toFixed(1)}%) over the cutoff of ${t.cutoffLen}`,
    );
  }
  out.info(report.ok ? "ok" : "not usable: fix the errors above");
  return report.ok ? 0 : 3;
}
