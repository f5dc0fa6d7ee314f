import { parseArgs } from "node:util";
import { prepareDataset } from "../prepare/prepare.ts";
import { fmtInt, intFlag, type Out, printProblems, UsageError } from "./output.ts";
import { formatFlag, templateChoice } from "./validate.ts";

export async function prepareCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      out: { type: "string" },
      template: { type: "string" },
      cutoff: { type: "string" },
      "val-set-size": { type: "string" },
      seed: { type: "string" },
      "train-on-inputs": { type: "boolean" },
      "no-eos": { type: "boolean" },
      format: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("prepare takes one dataset file", "prepare");
  if (!values.model)
    throw new UsageError("prepare needs --model DIR (the model whose tokenizer to use)", "prepare");
  if (!values.out) throw new UsageError("prepare needs --out DIR", "prepare");
  const format = formatFlag(values.format);
  const t0 = performance.now();
  const r = await prepareDataset({
    datasetFile: positionals[0] as string,
    ...(format ? { format } : {}),
    modelDir: values.model,
    template: templateChoice(values.template),
    cutoffLen: intFlag(values.cutoff, "cutoff", 1) ?? 512,
    trainOnInputs: values["train-on-inputs"] ?? false,
    addEos: !values["no-eos"],
    valSetSize: intFlag(values["val-set-size"], "val-set-size") ?? 2000,
    seed: intFlag(values.seed, "seed") ?? 42,
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
