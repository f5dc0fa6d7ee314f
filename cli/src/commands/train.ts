import { readFile } from "node:fs/promises";
import { defineCommand, flag, parseCommand } from "../args/flags.ts";
import { parseVolumes, requireSpecInputs } from "../args/paths.ts";
import { readSpecFile } from "../args/specFile.ts";
import type { EvalResult } from "../eval/run.ts";
import { chooseBackend, probeBackends } from "../train/backendChoice.ts";
import { findCore, stopReason } from "../train/core.ts";
import { resolveLocalPaths } from "../train/resolve.ts";
import { type RunSummary, runTraining } from "../train/run.ts";
import { printEvaluation } from "./eval.ts";
import { fmtDuration, fmtInt, fmtNum, type Out, printProblems, UsageError } from "./output.ts";
import { ProgressView } from "./progress.ts";

export const trainCli = defineCommand({
  name: "train",
  summary: {
    usage: "train <spec.yaml>",
    text: "run a LoraFineTune spec locally: prepare, train, pick the adapter",
  },
  usage: "loraforge train <spec.yaml> [options]",
  description: `Runs a LoraFineTune manifest (the same spec the operator runs) on this machine: prepares the data
into <out>/data, runs the native trainer (native/build/loraforge-core, or $LORAFORGE_CORE) with a
live progress line, writes <out>/metrics.jsonl and <out>/loss_curve.png, applies the spec's
checkpointSelection (lowestTrainLoss by default; last; lowestEvalLoss; bestEvalScore: each kept
checkpoint generates for the evaluation's examples, the best spec.evaluation.scoreMetric wins) and
copies the chosen adapter to <out>/adapter (PEFT format), then prints a summary. With
spec.evaluation enabled (the default) it ends with \`loraforge eval\`: base vs fine-tuned on the
validation split, the metric table, two sample answers, <out>/eval.json.
Ctrl-C stops after saving a checkpoint; running the same command again resumes from it.

A local run reads files: a pvc source {claimName, path} is looked up in the directory given with
--volume CLAIM=DIR (by default the spec file's own directory).`,
  flags: {
    out: flag.string("DIR", "output directory (default: spec.output.pvc on its volume)", "dir"),
    volume: flag.list(
      "CLAIM=DIR",
      "where a PersistentVolumeClaim's files are on this machine (repeatable)",
    ),
    backend: flag.choice(
      ["auto", "cpu", "cuda"],
      "trainer backend (default auto, the GPU when the core has cuda and one is present, else cpu)",
    ),
    threads: flag.int("CPU threads for the trainer (default: all cores)"),
    fresh: flag.bool("discard this output directory's checkpoints and start over"),
    quiet: flag.bool("no progress line"),
    verbose: flag.bool("also show the trainer's own log"),
    json: flag.bool(
      "print the run's summary (and evaluation) as one JSON document on stdout;\nthe progress and the human summary go to stderr",
    ),
  },
  positionals: "file",
  epilogue: `Example:
  loraforge train examples/stories260k-demo.yaml --volume models=.cache/models --out .cache/runs/demo`,
});

export async function trainCommand(args: string[], humanOut: Out): Promise<number> {
  const p = parseCommand(trainCli, args);
  const { values, positionals } = p;
  if (positionals.length !== 1) throw new UsageError("train takes one spec file", "train");
  const json = values.json === true;
  // with --json, stdout holds only the JSON document; everything for people goes to stderr
  const out: Out = json ? { info: humanOut.error, error: humanOut.error } : humanOut;
  const specFile = positionals[0] as string;
  const request = values.backend ?? "auto";
  const lft = readSpecFile(specFile);
  const volumes = parseVolumes(values.volume);
  const paths = resolveLocalPaths(lft.spec, {
    specFile,
    volumes,
    ...(values.out ? { outDir: values.out } : {}),
  });
  await requireSpecInputs(lft.spec, paths, volumes);

  const view = new ProgressView(json ? process.stderr : process.stdout);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1)
      view.line(`${sig}: stopping after the trainer saves a checkpoint (again to stop at once)`);
    controller.abort(stopReason(sig === "SIGTERM" ? "SIGTERM" : "SIGINT"));
    if (interrupts > 1) process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let summary: RunSummary;
  try {
    out.info(
      `${lft.metadata.name}: model ${paths.modelDir}, dataset ${paths.datasetFile}, output ${paths.outDir}`,
    );
    const corePath = findCore();
    const choice = chooseBackend(request, probeBackends(corePath), `--backend ${request}`);
    out.info(choice.reason);
    summary = await runTraining(lft.spec, {
      paths,
      corePath,
      backend: choice.backend,
      threads: values.threads ?? 0,
      ...(values.fresh ? { fresh: true } : {}),
      signal: controller.signal,
      onMessage: (m) => view.line(m),
      onPrepared: (p) => {
        printProblems(out, p.warnings, 10);
        const m = p.manifest;
        view.line(
          `data ${p.reused ? "(already prepared)" : "prepared"}: ${fmtInt(m.train.records)} train records (${fmtInt(m.train.tokens)} tokens, ${fmtInt(m.train.trainedTokens)} trained on), ${fmtInt(m.val.records)} validation; template ${m.inputs.template}, cutoff ${m.inputs.cutoffLen}, ${m.train.truncated + m.val.truncated} truncated; bos ${m.special.bos} eos ${m.special.eos}`,
        );
      },
      ...(values.quiet ? {} : { onEvent: (e) => view.onEvent(e) }),
      ...(values.verbose ? { onCoreLog: (c: string) => process.stderr.write(c) } : {}),
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  printSummary(out, summary);
  let evaluation: EvalResult | undefined;
  if (summary.evaluation) {
    evaluation = JSON.parse(await readFile(summary.evaluation.path, "utf8")) as EvalResult;
    printEvaluation(out, evaluation, 2);
  }
  if (json) humanOut.info(JSON.stringify({ summary, evaluation: evaluation ?? null }, null, 2));
  return summary.exitCode;
}

export function printSummary(out: Out, s: RunSummary): void {
  const drop = (a: number | null, b: number | null) =>
    a !== null && b !== null && a > 0 ? ` (${(((b - a) / a) * 100).toFixed(1)}%)` : "";
  out.info("");
  if (s.status === "interrupted") {
    out.info(
      `stopped at step ${s.step}/${s.totalSteps}; the last checkpoint is kept. Run the same command again to resume.`,
    );
  } else if (s.status === "failed") {
    out.error(
      `training failed (exit code ${s.exitCode}${s.error ? `, ${s.error.kind}: ${s.error.message}` : ""}); see ${s.files.coreLog}`,
    );
  } else {
    out.info(
      `done: ${s.step} steps in ${fmtDuration(s.elapsedS)}${s.tokensPerS ? `, ${fmtInt(s.tokensPerS)} tokens/s` : ""}`,
    );
  }
  out.info(
    `  validation loss  before ${fmtNum(s.valLoss.before)}  after ${fmtNum(s.valLoss.after)}${drop(s.valLoss.before, s.valLoss.after)}`,
  );
  out.info(
    `  training loss    first step ${fmtNum(s.trainLoss.first)}  last steps ${fmtNum(s.trainLoss.last)}${drop(s.trainLoss.first, s.trainLoss.last)}`,
  );
  if (s.selection) {
    out.info(
      `  adapter          ${s.adapterDir}  (${s.selection.applied}: ${s.selection.kind} at step ${s.selection.step}, train loss ${fmtNum(s.selection.trainLoss)}, validation loss ${fmtNum(s.selection.valLoss)})`,
    );
    if (s.selection.note) out.info(`  note: ${s.selection.note}`);
  }
  out.info(`  metrics          ${s.files.metrics}`);
  out.info(`  loss curve       ${s.files.lossCurve}`);
}
