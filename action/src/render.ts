// The comment (and job summary) for one dataset of a pull request: queued/running first,
// then the evaluation of the run against the base branch's latest successful run.

import type { EvalMetrics, LoraFineTuneStatus } from "@loraforge/crds";
import { formatDuration } from "./duration.ts";
import type { RunView } from "./k8s.ts";
import { datasetKey } from "./labels.ts";
import { codeHtml, preHtml } from "./markdown.ts";
import { describeProgress } from "./runs.ts";
import { fitSections, type Section, shrinkFenced } from "./truncate.ts";

/** The hidden first line that makes the comment findable: one per marker and dataset. */
export function markerLine(marker: string, datasetPath: string): string {
  return `<!-- loraforge:${marker}:${datasetKey(datasetPath)} -->`;
}

export interface CommentContext {
  marker: string;
  datasetPath: string;
  namespace: string;
  /** Short head SHA. */
  sha: string;
  baseBranch: string;
}

type Direction = "lower" | "higher";

interface MetricRow {
  label: string;
  key: keyof EvalMetrics;
  better: Direction;
  percent: boolean;
}

const EVAL_ROWS: readonly MetricRow[] = [
  { label: "eval loss", key: "evalLoss", better: "lower", percent: false },
  { label: "exact match", key: "exactMatch", better: "higher", percent: true },
  { label: "ROUGE-L", key: "rougeL", better: "higher", percent: false },
  { label: "prompt repetition", key: "promptRepetition", better: "lower", percent: true },
];

function num(v: number | undefined, percent: boolean): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  return percent ? `${(v * 100).toFixed(1)}%` : v.toFixed(4);
}

function delta(
  base: number | undefined,
  pr: number | undefined,
  better: Direction,
  percent: boolean,
): string {
  if (base === undefined || pr === undefined || !Number.isFinite(base) || !Number.isFinite(pr))
    return "—";
  const d = pr - base;
  const shown = percent ? `${(d * 100).toFixed(1)} pp` : d.toFixed(4);
  if (Math.abs(d) < 1e-9) return `±0 ${percent ? "pp" : ""}`.trim();
  const improved = better === "lower" ? d < 0 : d > 0;
  return `${d > 0 ? "+" : ""}${shown} ${improved ? "🟢" : "🔴"}`;
}

/** Train and validation loss of the selected checkpoint (else the latest reported). */
function finalLosses(s: LoraFineTuneStatus | undefined): { train?: number; val?: number } {
  const step = s?.selectedCheckpoint?.step;
  const ckpt = s?.checkpoints?.find((c) => c.step === step);
  const train = ckpt?.trainLoss ?? s?.progress?.loss;
  const val = ckpt?.valLoss ?? s?.progress?.valLoss;
  return { ...(train !== undefined ? { train } : {}), ...(val !== undefined ? { val } : {}) };
}

function runSeconds(s: LoraFineTuneStatus | undefined): number | undefined {
  if (!s?.startTime || !s.completionTime) return undefined;
  const ms = Date.parse(s.completionTime) - Date.parse(s.startTime);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

function checkpointText(s: LoraFineTuneStatus | undefined): string {
  const c = s?.selectedCheckpoint;
  return c ? `step ${c.step} (${c.policy})` : "—";
}

function adapterText(s: LoraFineTuneStatus | undefined): string {
  const a = s?.adapter;
  if (!a) return "—";
  const mib = (a.sizeBytes / (1024 * 1024)).toFixed(1);
  return `${codeHtml(a.path)} (${mib} MiB, ${a.digest.slice(0, 19)}…${a.verified ? ", verified" : ", NOT verified"})`;
}

export function resultTable(run: RunView, baseline: RunView | undefined): string {
  const pr = run.status;
  const base = baseline?.status;
  const lines = [
    `| metric | base branch${baseline ? ` (\`${baseline.name}\`)` : ""} | this PR | Δ |`,
    "| --- | ---: | ---: | ---: |",
  ];
  for (const row of EVAL_ROWS) {
    const b = base?.evaluation?.tuned?.[row.key];
    const p = pr?.evaluation?.tuned?.[row.key];
    lines.push(
      `| ${row.label} | ${num(b, row.percent)} | ${num(p, row.percent)} | ${delta(b, p, row.better, row.percent)} |`,
    );
  }
  const bl = finalLosses(base);
  const pl = finalLosses(pr);
  lines.push(
    `| training loss | ${num(bl.train, false)} | ${num(pl.train, false)} | ${delta(bl.train, pl.train, "lower", false)} |`,
  );
  lines.push(
    `| validation loss | ${num(bl.val, false)} | ${num(pl.val, false)} | ${delta(bl.val, pl.val, "lower", false)} |`,
  );
  lines.push(`| selected checkpoint | ${checkpointText(base)} | ${checkpointText(pr)} | |`);
  const bt = runSeconds(base);
  const pt = runSeconds(pr);
  lines.push(
    `| run time | ${bt === undefined ? "—" : formatDuration(bt)} | ${pt === undefined ? "—" : formatDuration(pt)} | ${bt !== undefined && pt !== undefined ? `${pt >= bt ? "+" : "−"}${formatDuration(Math.abs(pt - bt))}` : ""} |`,
  );
  lines.push(`| adapter | ${adapterText(base)} | ${adapterText(pr)} | |`);
  return lines.join("\n");
}

/** The untuned base model's metrics, from the PR run's own evaluation. */
function untunedLine(run: RunView): string {
  const m = run.status?.evaluation?.base;
  if (!m) return "";
  const parts = EVAL_ROWS.filter((r) => m[r.key] !== undefined).map(
    (r) => `${r.label} ${num(m[r.key], r.percent)}`,
  );
  const samples = run.status?.evaluation?.samples;
  return parts.length === 0
    ? ""
    : `Base model without the adapter: ${parts.join(", ")}${samples !== undefined ? ` (${samples} prompts)` : ""}.`;
}

/**
 * The samples status.evaluation carries, each prompt with the base model's and the fine-tuned
 * model's answer, and the base branch's fine-tuned answer when its run has the same prompt (same
 * promptSha256). Everything from the run is inert text (`preHtml`): a sample may hold anything.
 */
export function samplesSection(
  run: RunView,
  baseline: RunView | undefined,
  baseBranch: string,
): string {
  const examples = run.status?.evaluation?.examples ?? [];
  if (examples.length === 0) return "";
  const onBase = new Map(
    (baseline?.status?.evaluation?.examples ?? []).map((e) => [e.promptSha256, e.tuned]),
  );
  const total = run.status?.evaluation?.samples;
  const lines = [
    `<details><summary>Sample generations: base model vs fine-tuned (${examples.length}${total !== undefined ? ` of ${total}` : ""} evaluation prompts)</summary>`,
  ];
  examples.forEach((e, i) => {
    lines.push("", `**Prompt ${i + 1}** — instruction:`, preHtml(e.instruction));
    if (e.input !== "") lines.push("input:", preHtml(e.input));
    lines.push("reference answer:", preHtml(e.reference));
    lines.push("base model:", preHtml(e.base));
    if (e.tuned !== undefined) lines.push("fine-tuned, this PR:", preHtml(e.tuned));
    const before = onBase.get(e.promptSha256);
    if (before !== undefined) lines.push(`fine-tuned, ${codeHtml(baseBranch)}:`, preHtml(before));
  });
  lines.push("", "</details>");
  return lines.join("\n");
}

function fmt(v: number): string {
  return Number(v.toPrecision(4)).toString();
}

/** A Mermaid xychart of the checkpoints' training and validation loss (two points at least). */
export function lossChart(run: RunView): string {
  const points = (run.status?.checkpoints ?? []).filter(
    (c) => c.trainLoss !== undefined || c.valLoss !== undefined,
  );
  if (points.length < 2) return "";
  const train = points.map((c) => c.trainLoss);
  const val = points.map((c) => c.valLoss);
  const series: string[] = [];
  const legend: string[] = [];
  if (train.every((v) => v !== undefined && Number.isFinite(v))) {
    series.push(`    line [${train.map((v) => fmt(v as number)).join(", ")}]`);
    legend.push("training loss");
  }
  if (val.every((v) => v !== undefined && Number.isFinite(v))) {
    series.push(`    line [${val.map((v) => fmt(v as number)).join(", ")}]`);
    legend.push("validation loss");
  }
  if (series.length === 0) return "";
  const all = [...train, ...val].filter((v): v is number => v !== undefined && Number.isFinite(v));
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const pad = (hi - lo) * 0.1 || 0.1;
  return [
    `<details><summary>Loss by checkpoint (${legend.map((l, i) => `line ${i + 1}: ${l}`).join(", ")})</summary>`,
    "",
    "```mermaid",
    "xychart-beta",
    '    title "Loss by checkpoint"',
    `    x-axis "step" [${points.map((c) => c.step).join(", ")}]`,
    `    y-axis "loss" ${fmt(Math.max(0, lo - pad))} --> ${fmt(hi + pad)}`,
    ...series,
    "```",
    "",
    "</details>",
  ].join("\n");
}

function header(ctx: CommentContext): string {
  return `${markerLine(ctx.marker, ctx.datasetPath)}\n### LoraForge · ${codeHtml(ctx.datasetPath)} @ ${ctx.sha}`;
}

function footer(run: RunView | undefined, ctx: CommentContext): string {
  return run
    ? `<sub>LoraFineTune \`${ctx.namespace}/${run.name}\` · \`kubectl -n ${ctx.namespace} get lft ${run.name}\`</sub>`
    : "";
}

/** The first comment, and the one refreshed while the run is in progress. */
export function renderInProgress(
  ctx: CommentContext,
  run: RunView,
  cancelled: readonly string[] = [],
  note = "",
): string {
  const phase = run.status?.phase ?? "Pending";
  const running = phase === "Running" || phase === "Evaluating";
  const state = running
    ? "🏃 **Running**"
    : phase === "Suspended"
      ? "⏸️ **Suspended**"
      : "⏳ **Queued**";
  const sections: Section[] = [
    { text: header(ctx) },
    { text: `${state} — ${describeProgress(run)}.` },
  ];
  if (cancelled.length > 0) {
    sections.push({
      text: `Superseded runs of earlier commits were cancelled (deleted): ${cancelled.map((c) => `\`${c}\``).join(", ")}.`,
    });
  }
  if (note) sections.push({ text: note });
  sections.push({ text: footer(run, ctx) });
  return fitSections(sections).text;
}

export interface ResultOptions {
  chart: boolean;
}

/** The final comment: the evaluation table against the base branch. */
export function renderResult(
  ctx: CommentContext,
  run: RunView,
  baseline: RunView | undefined,
  options: ResultOptions,
): { text: string; truncated: boolean } {
  const s = run.status;
  const phase = s?.phase ?? "Pending";
  const sections: Section[] = [{ text: header(ctx) }];
  if (phase === "Succeeded") {
    sections.push({
      text: `✅ **Succeeded** — evaluation of the fine-tuned model, this PR against \`${ctx.baseBranch}\`.`,
    });
  } else if (phase === "Failed") {
    const f = s?.failure;
    sections.push({
      text: `❌ **Failed**${f ? ` — \`${f.reason}\`${f.exitCode !== undefined ? ` (exit code ${f.exitCode})` : ""}` : ""}.`,
    });
    if (f?.message) {
      const body = f.message;
      sections.push({
        text: shrinkFenced(body, Number.MAX_SAFE_INTEGER),
        shrink: (max) => shrinkFenced(body, max),
      });
    }
  } else {
    sections.push({ text: `⏳ **${phase}** — ${describeProgress(run)}.` });
  }
  sections.push({ text: resultTable(run, baseline) });
  if (!baseline) {
    sections.push({
      text: `No successful run labelled with the base branch \`${ctx.baseBranch}\` was found in \`${ctx.namespace}\`, so there is nothing to compare with (run the action on pushes to \`${ctx.baseBranch}\` to record one).`,
    });
  }
  const untuned = untunedLine(run);
  if (untuned) sections.push({ text: untuned });
  const samples = samplesSection(run, baseline, ctx.baseBranch);
  if (samples) sections.push({ text: samples, optional: true });
  if (options.chart) {
    const chart = lossChart(run);
    if (chart) sections.push({ text: chart, optional: true });
  }
  sections.push({ text: footer(run, ctx) });
  return fitSections(sections);
}

/** The comment when the dataset is invalid: nothing was submitted. */
export function renderInvalid(ctx: CommentContext, validation: string): string {
  return fitSections([
    { text: header(ctx) },
    {
      text: "❌ **Invalid dataset** — nothing was submitted. Fix the problems below (they are also annotated on the files).",
    },
    { text: validation, shrink: (max) => shrinkLines(validation, max) },
  ]).text;
}

/** Keeps whole lines, and closes a <details> left open by the cut. */
function shrinkLines(text: string, max: number): string {
  const note = "\n- … (cut)\n\n</details>";
  if (text.length <= max) return text;
  const room = max - note.length;
  if (room <= 0) return "";
  const cut = text.slice(0, room);
  const nl = cut.lastIndexOf("\n");
  const kept = nl > 0 ? cut.slice(0, nl) : "";
  const opened = (kept.match(/<details/g) ?? []).length - (kept.match(/<\/details>/g) ?? []).length;
  return opened > 0 ? `${kept}${note}` : `${kept}\n- … (cut)`;
}
