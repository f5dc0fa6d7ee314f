/**
 * A whole training run, as a function: prepare the data, write run.json, run the core, record
 * metrics, draw the loss curve, select the checkpoint, summarize. `loraforge train` (local) and
 * `loraforge job` (in the cluster) both call runTraining; neither printing nor exiting happens here.
 */
import { createHash } from "node:crypto";
import { appendFile, copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoraFineTuneSpec } from "@loraforge/crds";
import { CliError } from "../errors.ts";
import {
  type EvaluateRunInputs,
  type EvaluationSummary,
  evaluateRun,
  scoreCheckpoints,
} from "../eval/afterTraining.ts";
import {
  DataChangedError,
  type DataManifest,
  type PrepareResult,
  prepareDataset,
} from "../prepare/prepare.ts";
import { removeDir, replaceDirAtomic, writeFileAtomic } from "../util/atomic.ts";
import { findCore, runCore, stopSignalOf } from "./core.ts";
import { type CoreEvent, type ErrorEvent, EXIT } from "./events.ts";
import { type History, MetricsLog, readHistory } from "./metrics.ts";
import { renderLossCurve } from "./plot.ts";
import type { LocalPaths } from "./resolve.ts";
import { type Backend, buildRunJson } from "./runConfig.ts";
import { candidatesOf, type Selection, selectCheckpoint } from "./select.ts";

export interface RunTrainingOptions {
  paths: LocalPaths;
  backend?: Backend;
  /** Core threads; 0 = all cores. */
  threads?: number;
  /** Every core event, as it arrives (after it is written to metrics.jsonl). */
  onEvent?: (e: CoreEvent) => void;
  /** Stage messages for people ("preparing data", "resuming from step 40"). */
  onMessage?: (message: string) => void;
  /** The core's human-readable log (also appended to <out>/core.log). */
  onCoreLog?: (chunk: string) => void;
  onPrepared?: (p: PrepareResult) => void;
  /** Aborting asks the core to stop after saving a checkpoint. */
  signal?: AbortSignal;
  /** Start over: remove the checkpoints, metrics and adapter of an earlier run in the same directory. */
  fresh?: boolean;
  corePath?: string;
  checkNumerics?: boolean;
}

export interface RunSummary {
  status: "done" | "interrupted" | "failed";
  exitCode: number;
  outDir: string;
  runDigest: string;
  dataDigest: string;
  step: number;
  totalSteps: number;
  elapsedS: number;
  tokensPerS: number | null;
  trainLoss: { first: number | null; last: number | null };
  valLoss: { before: number | null; after: number | null };
  adapterDir: string | null;
  selection:
    | (Pick<Selection, "policy" | "applied" | "note"> & {
        step: number;
        kind: string;
        dir: string;
        trainLoss: number | null;
        valLoss: number | null;
      })
    | null;
  error: ErrorEvent | null;
  /** spec.evaluation's summary of eval.json (null when disabled, skipped or not reached). */
  evaluation?: EvaluationSummary | null;
  files: { metrics: string; lossCurve: string; runJson: string; coreLog: string };
}

export class RunSetupError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = "RunSetupError";
  }
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function listCheckpoints(outDir: string): Promise<Map<number, string>> {
  const dir = join(outDir, "checkpoints");
  const found = new Map<number, string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (m?.[1] && (await exists(join(dir, name, "adapter_model.safetensors"))))
      found.set(Number(m[1]), join(dir, name));
  }
  return found;
}

export async function runTraining(
  spec: LoraFineTuneSpec,
  opts: RunTrainingOptions,
): Promise<RunSummary> {
  const { paths } = opts;
  const backend = opts.backend ?? "cpu";
  const say = opts.onMessage ?? (() => {});
  const out = paths.outDir;
  const files = {
    metrics: join(out, "metrics.jsonl"),
    lossCurve: join(out, "loss_curve.png"),
    runJson: join(out, "run.json"),
    coreLog: join(out, "core.log"),
  };
  const corePath = opts.corePath ?? findCore();
  await mkdir(out, { recursive: true });
  const evalInputs = (prepared: PrepareResult) => ({
    paths,
    prepared,
    corePath,
    threads: opts.threads ?? 0,
    onMessage: say,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });

  if (opts.fresh) {
    for (const name of [
      "checkpoints",
      "final",
      "adapter",
      "metrics.jsonl",
      "loss_curve.png",
      "summary.json",
      "selection.json",
      "core.log",
      "eval.json",
      "eval",
    ])
      await removeDir(join(out, name));
  }
  const hadCheckpoints = (await listCheckpoints(out)).size > 0;
  const previousManifest = await readFile(join(out, "data", "manifest.json"), "utf8")
    .then((t) => JSON.parse(t) as DataManifest)
    .catch(() => undefined);

  say(`preparing ${paths.datasetFile}`);
  const dataDir = join(out, "data");
  const prepared = await prepareDataset({
    datasetFile: paths.datasetFile,
    format: spec.dataset.format,
    modelDir: paths.modelDir,
    template: {
      name: spec.dataset.promptTemplate,
      ...(paths.customTemplateFile ? { file: paths.customTemplateFile } : {}),
    },
    cutoffLen: spec.dataset.cutoffLen,
    trainOnInputs: spec.dataset.trainOnInputs,
    addEos: spec.dataset.addEos,
    valSetSize: spec.dataset.valSetSize,
    seed: spec.training.seed,
    dataDir,
    ...(hadCheckpoints && previousManifest ? { expectDigest: previousManifest.digest } : {}),
  }).catch((e: unknown) => {
    if (e instanceof DataChangedError)
      throw new RunSetupError(
        `${out} holds checkpoints trained on other data (the dataset, tokenizer or dataset settings changed); run with --fresh to start over, or use another output directory`,
      );
    throw e;
  });
  opts.onPrepared?.(prepared);

  const runJson = buildRunJson({
    spec,
    modelDir: paths.modelDir,
    trainShard: prepared.trainShard,
    ...(prepared.valShard ? { valShard: prepared.valShard } : {}),
    outDir: out,
    backend,
    threads: opts.threads ?? 0,
    baseModelName: paths.baseModelName,
    ...(opts.checkNumerics ? { checkNumerics: true } : {}),
  });
  const runText = `${JSON.stringify(runJson, null, 2)}\n`;
  const runDigest = sha256(runText);
  const previousRun = await readFile(files.runJson, "utf8").catch(() => undefined);
  if (hadCheckpoints && previousRun !== undefined && previousRun !== runText) {
    throw new RunSetupError(
      `${out} holds checkpoints of a run with other settings (run.json differs); run with --fresh to start over, or use another output directory`,
    );
  }
  const previousSummary = await readFile(join(out, "summary.json"), "utf8")
    .then((t) => JSON.parse(t) as RunSummary)
    .catch(() => undefined);
  if (
    previousSummary?.status === "done" &&
    previousSummary.runDigest === runDigest &&
    previousSummary.dataDigest === prepared.manifest.digest &&
    previousSummary.adapterDir !== null &&
    (await exists(join(previousSummary.adapterDir, "adapter_model.safetensors")))
  ) {
    say("this run is already complete (run with --fresh to train again)");
    if (spec.evaluation.enabled && previousSummary.evaluation === undefined) {
      const done = {
        ...previousSummary,
        evaluation: await evaluateRun(spec, evalInputs(prepared)),
      };
      await writeFileAtomic(join(out, "summary.json"), `${JSON.stringify(done, null, 2)}\n`);
      return done;
    }
    return previousSummary;
  }
  await writeFileAtomic(files.runJson, runText);

  const metrics = new MetricsLog(files.metrics);
  let writes = Promise.resolve();
  let lastError: ErrorEvent | null = null;
  const core = runCore({
    corePath,
    args: ["train", "--config", files.runJson],
    onEvent: (e) => {
      if (e.event === "error") lastError = e;
      writes = writes.then(() => metrics.append(e));
      opts.onEvent?.(e);
    },
    onBadLine: (line, message) => {
      writes = writes.then(() =>
        appendFile(files.coreLog, `[loraforge] unparsed core output (${message}): ${line}\n`),
      );
    },
    onStderr: (chunk) => {
      writes = writes.then(() => appendFile(files.coreLog, chunk));
      opts.onCoreLog?.(chunk);
    },
  });
  const stopWith = () => core.stop(stopSignalOf(opts.signal?.reason));
  opts.signal?.addEventListener("abort", stopWith);
  if (opts.signal?.aborted) stopWith();
  let exit: { code: number };
  try {
    exit = await core.exited;
  } finally {
    opts.signal?.removeEventListener("abort", stopWith);
    await writes;
  }

  const history = await readHistory(files.metrics);
  await writeFileAtomic(files.lossCurve, lossCurvePng(history));

  const base = summaryBase(history, out, runDigest, prepared.manifest.digest, files);
  if (exit.code === EXIT.ok && history.done) {
    const selection = await selectAdapter(spec, history, out, evalInputs(prepared));
    const summary: RunSummary = {
      ...base,
      status: "done",
      exitCode: 0,
      adapterDir: join(out, "adapter"),
      selection: {
        policy: selection.policy,
        applied: selection.applied,
        ...(selection.note ? { note: selection.note } : {}),
        step: selection.selected.step,
        kind: selection.selected.kind,
        dir: selection.selected.dir,
        trainLoss: selection.selected.trainLoss,
        valLoss: selection.selected.valLoss,
      },
      error: null,
    };
    await writeFileAtomic(join(out, "selection.json"), `${JSON.stringify(selection, null, 2)}\n`);
    await writeFileAtomic(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    // The summary is written first: if evaluation fails, running again evaluates without training.
    if (spec.evaluation.enabled) {
      summary.evaluation = await evaluateRun(spec, evalInputs(prepared));
      await writeFileAtomic(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    }
    return summary;
  }
  const summary: RunSummary = {
    ...base,
    status: exit.code === EXIT.interrupted ? "interrupted" : "failed",
    exitCode: exit.code === 0 ? EXIT.internal : exit.code,
    adapterDir: null,
    selection: null,
    error: lastError,
  };
  await writeFileAtomic(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

function summaryBase(
  h: History,
  outDir: string,
  runDigest: string,
  dataDigest: string,
  files: RunSummary["files"],
): Omit<RunSummary, "status" | "exitCode" | "adapterDir" | "selection" | "error"> {
  const lastStep = h.steps[h.steps.length - 1];
  const tail = h.steps.slice(-Math.min(5, h.steps.length));
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const before = h.evals.find((e) => e.step === 0) ?? h.evals[0];
  const after = h.evals[h.evals.length - 1];
  const tokens = h.steps.reduce((s, e) => s + e.tokens, 0);
  // elapsed_s restarts with each session; add the sessions up.
  let elapsed = 0;
  let sessionMax = 0;
  for (let i = 0; i < h.steps.length; i++) {
    const e = h.steps[i] as (typeof h.steps)[number];
    const prev = h.steps[i - 1];
    if (prev && e.elapsed_s < prev.elapsed_s) {
      elapsed += sessionMax;
      sessionMax = 0;
    }
    sessionMax = Math.max(sessionMax, e.elapsed_s);
  }
  elapsed += sessionMax;
  if (h.done) elapsed = Math.max(elapsed, h.done.elapsed_s);
  return {
    outDir,
    runDigest,
    dataDigest,
    step: lastStep?.step ?? 0,
    totalSteps: lastStep?.total_steps ?? h.starts[h.starts.length - 1]?.total_steps ?? 0,
    elapsedS: elapsed,
    tokensPerS: elapsed > 0 ? tokens / elapsed : null,
    trainLoss: { first: h.steps[0]?.loss ?? null, last: mean(tail.map((s) => s.loss)) },
    valLoss: {
      before: before?.val_loss ?? null,
      after: after && after !== before ? after.val_loss : null,
    },
    files,
  };
}

export function lossCurvePng(h: History): Buffer {
  return renderLossCurve([
    {
      label: "train",
      color: [31, 119, 180],
      points: h.steps.map((s) => ({ x: s.step, y: s.loss })),
    },
    {
      label: "val",
      color: [255, 127, 14],
      points: h.evals.map((e) => ({ x: e.step, y: e.val_loss })),
      markers: true,
    },
  ]);
}

async function selectAdapter(
  spec: LoraFineTuneSpec,
  history: History,
  out: string,
  evalInputs: EvaluateRunInputs,
): Promise<Selection> {
  const checkpoints = await listCheckpoints(out);
  const finalDir = join(out, "final");
  const hasFinal = await exists(join(finalDir, "adapter_model.safetensors"));
  const finalStep = history.done?.step ?? history.steps[history.steps.length - 1]?.step ?? 0;
  const candidates = candidatesOf(history, {
    checkpoints,
    ...(hasFinal ? { final: { step: finalStep, dir: finalDir } } : {}),
  });
  const scores =
    spec.checkpointSelection === "bestEvalScore" && evalInputs.prepared.manifest.val.records > 0
      ? await scoreCheckpoints(spec, evalInputs, candidates)
      : undefined;
  const selection = selectCheckpoint(spec.checkpointSelection, candidates, scores);
  // <out>/adapter is the old adapter or the new one, whole, at every moment (atomic.ts).
  await replaceDirAtomic(join(out, "adapter"), async (dir) => {
    for (const f of ["adapter_model.safetensors", "adapter_config.json"])
      await copyFile(join(selection.selected.dir, f), join(dir, f));
    await writeFile(
      join(dir, "selection.json"),
      `${JSON.stringify({ policy: selection.policy, applied: selection.applied, step: selection.selected.step, source: selection.selected.dir, train_loss: selection.selected.trainLoss, val_loss: selection.selected.valLoss, ...(selection.selected.evalScore !== undefined ? { eval_score: selection.selected.evalScore, score_metric: spec.evaluation.scoreMetric } : {}) }, null, 2)}\n`,
    );
  });
  return selection;
}
