import { defineCommand, flag, parseCommand, refuseWithout } from "../args/flags.ts";
import { requireFile, requireModelDir } from "../args/paths.ts";
import type { DatasetFormat } from "../dataset/parse.ts";
import { validateFile } from "../dataset/validate.ts";
import { loadTemplate, type TemplateChoice } from "../prepare/prepare.ts";
import { loadModelTokenizer } from "../tokenizer/tokenizer.ts";
import { fmtInt, type Out, printProblems, UsageError } from "./output.ts";

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

const templateHelp = "alpaca (default), alpaca_short, or a template JSON file";

export const validateCli = defineCommand({
  name: "validate",
  summary: {
    usage: "validate <dataset>",
    text: "check an Alpaca JSON/JSONL dataset; errors name record and line",
  },
  usage: "loraforge validate <dataset> [options]",
  description: `Checks an Alpaca dataset (a JSON array of {instruction, input, output} records, or JSON Lines)
and prints every problem with its file, line, record (counted from 0, as array indices) and field.
Records with an empty instruction or output are rejected (left out, reported); unknown fields are
warned about; duplicates and records shared by the training and validation splits are counted.
Nothing is written. Exit code 0 when the dataset is usable, 3 when it is not.`,
  flags: {
    format: flag.choice(
      ["auto", "json", "jsonl"],
      "file format (default: from the first character)",
    ),
    "val-set-size": flag.int("also check the seeded train/validation split (default 2000)"),
    seed: flag.int("seed of that split (default 42)"),
    model: flag.string(
      "DIR",
      "with the model's tokenizer: tokens per record, share truncated",
      "dir",
    ),
    template: flag.string("NAME|FILE", templateHelp, "file"),
    cutoff: flag.int("cutoff length in tokens for the statistics (default 512; needs --model)", 1),
    strict: flag.bool("warnings count as errors"),
    json: flag.bool("print the report as one JSON document on stdout (for scripts)"),
  },
  positionals: "file",
  epilogue: `Example:
  loraforge validate data/alpaca.json --model models/llama-2-7b-hf`,
});

export async function validateCommand(args: string[], out: Out): Promise<number> {
  const p = parseCommand(validateCli, args);
  const { values, positionals } = p;
  if (positionals.length !== 1) throw new UsageError("validate takes one dataset file", "validate");
  if (!values.model)
    refuseWithout(
      p,
      validateCli,
      ["template", "cutoff"],
      "without --model (token statistics need the tokenizer)",
    );
  const file = positionals[0] as string;
  await requireFile(file, "dataset");
  const format = formatFlag(values.format);
  const tokens = values.model
    ? {
        tokenizer: await loadModelTokenizer(await requireModelDir(values.model)),
        template: await loadTemplate(templateChoice(values.template)),
        cutoffLen: values.cutoff ?? 512,
        trainOnInputs: false,
        addEos: true,
      }
    : undefined;
  const report = await validateFile(file, {
    ...(format ? { format } : {}),
    split: {
      valSetSize: values["val-set-size"] ?? 2000,
      seed: values.seed ?? 42,
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
