import { defineCommand, flag, parseCommand } from "../args/flags.ts";
import { requireFile, requireModelDir } from "../args/paths.ts";
import { prepareDataset } from "../prepare/prepare.ts";
import { fmtInt, type Out, printProblems, UsageError } from "./output.ts";
import { formatFlag, templateChoice } from "./validate.ts";

export const prepareCli = defineCommand({
  name: "prepare",
  summary: {
    usage: "prepare <dataset> ...",
    text: "dataset -> token shards for the trainer (template, tokenize, mask)",
  },
  usage: "loraforge prepare <dataset> --model DIR --out DIR [options]",
  description: `Turns a dataset into token shards (docs/CONTRACTS.md §3) for the trainer: validates it, splits off
a seeded validation set, renders each record with the prompt template, tokenizes it with the
model's own tokenizer.json (bos/eos checked), masks the prompt tokens out of the loss (unless
--train-on-inputs), appends EOS, truncates at the cutoff. Writes DIR/train.lfs, DIR/val.lfs and
DIR/manifest.json, or nothing at all when the dataset has an error.`,
  flags: {
    model: flag.string("DIR", "Hugging Face model directory (tokenizer.json, config.json)", "dir"),
    out: flag.string("DIR", "where the shards go", "dir"),
    template: flag.string(
      "NAME|FILE",
      "alpaca (default), alpaca_short, or an alpaca-lora template JSON file",
      "file",
    ),
    cutoff: flag.int("maximum tokens per example (default 512)", 1),
    "val-set-size": flag.int("validation records (default 2000, at most a fifth of the data)"),
    seed: flag.int("seed of the split (default 42)"),
    "train-on-inputs": flag.bool(
      "also train on the prompt tokens (off: the prompt-repeater failure)",
    ),
    "no-eos": flag.bool("do not append EOS (the model will not learn to stop)"),
    format: flag.choice(
      ["auto", "json", "jsonl"],
      "file format (default: from the first character)",
    ),
  },
  positionals: "file",
  epilogue: `Example:
  loraforge prepare examples/stories-instruct/stories.jsonl --model .cache/models/stories260K --out /tmp/shards`,
});

export async function prepareCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(prepareCli, args);
  if (positionals.length !== 1) throw new UsageError("prepare takes one dataset file", "prepare");
  if (!values.model)
    throw new UsageError("prepare needs --model DIR (the model whose tokenizer to use)", "prepare");
  if (!values.out) throw new UsageError("prepare needs --out DIR", "prepare");
  await requireFile(positionals[0] as string, "dataset");
  await requireModelDir(values.model);
  const format = formatFlag(values.format);
  const t0 = performance.now();
  const r = await prepareDataset({
    datasetFile: positionals[0] as string,
    ...(format ? { format } : {}),
    modelDir: values.model,
    template: templateChoice(values.template),
    cutoffLen: values.cutoff ?? 512,
    trainOnInputs: values["train-on-inputs"] ?? false,
    addEos: !values["no-eos"],
    valSetSize: values["val-set-size"] ?? 2000,
    seed: values.seed ?? 42,
    dataDir: values.out,
  });
  printProblems(out, r.warnings, 20);
  const m = r.manifest;
  out.info(
    `${r.reused ? "already prepared" : "prepared"} in ${((performance.now() - t0) / 1000).toFixed(2)} s: train ${fmtInt(m.train.records)} records / ${fmtInt(m.train.tokens)} tokens (${fmtInt(m.train.trainedTokens)} trained on), validation ${fmtInt(m.val.records)} / ${fmtInt(m.val.tokens)}; ${m.train.truncated + m.val.truncated} truncated at ${m.inputs.cutoffLen}`,
  );
  out.info(
    `bos ${m.special.bos}, eos ${m.special.eos}, pad ${m.special.pad}; shards in ${values.out}`,
  );
  return 0;
}
