import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { readLoraFineTuneFile } from "@loraforge/crds";
import type { EvalResult } from "../eval/run.ts";
import { resolveLocalPaths } from "../train/resolve.ts";
import { type RunSummary, runTraining } from "../train/run.ts";
import type { Backend } from "../train/runConfig.ts";
import { printEvaluation } from "./eval.ts";
import {
  fmtDuration,
  fmtInt,
  fmtNum,
  intFlag,
  type Out,
  printProblems,
  UsageError,
} from "./output.ts";
import { ProgressView } from "./progress.ts";

export function parseVolumes(values: string[] | undefined): Record<string, string> {
  const volumes: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf("=");
    if (eq <= 0 || eq === v.length - 1)
      throw new UsageError(`--volume wants CLAIM=DIR, got "${v}"`, "train");
    volumes[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return volumes;
}

export async function trainCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      volume: { type: "string", multiple: true },
      backend: { type: "string" },
      threads: { type: "string" },
      fresh: { type: "boolean" },
      quiet: { type: "boolean" },
      verbose: { type: "boolean" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("train takes one spec file", "train");
  const specFile = positionals[0] as string;
  const backend = values.backend ?? "cpu";
  if (backend !== "cpu" && backend !== "cuda")
    throw new UsageError(`--backend must be cpu or cuda, got "${backend}"`, "train");
  const lft = readLoraFineTuneFile(specFile);
  const paths = resolveLocalPaths(lft.spec, {
    specFile,
    volumes: parseVolumes(values.volume),
    ...(values.out ? { outDir: values.out } : {}),
  });

  const view = new ProgressView(process.stdout);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1)
      view.line(`${sig}: stopping after the trainer saves a checkpoint (again to stop at once)`);
    controller.abort();
    if (interrupts > 1) process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let summary: RunSummary;
  try {
    out.info(
      `${lft.metadata.name}: model ${paths.modelDir}, dataset ${paths.datasetFile}, output ${paths.outDir}`,
    );
    summary = await runTraining(lft.spec, {
      paths,
      backend: backend as Backend,
      threads: intFlag(values.threads, "threads") ?? 0,
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
  if (summary.evaluation) {
    const result = JSON.parse(await readFile(summary.evaluation.path, "utf8")) as EvalResult;
    printEvaluation(out, result, 2);
  }
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
