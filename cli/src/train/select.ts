/**
 * checkpointSelection: which saved weights become <out>/adapter. The candidates are the
 * checkpoints still on disk and the final adapter. A candidate's train loss is the mean step loss
 * since the previous candidate (the core's definition for checkpoints); its validation loss is the
 * evaluation made at its step.
 */
import type { History } from "./metrics.ts";

export type SelectionPolicy = "lowestTrainLoss" | "last" | "lowestEvalLoss" | "bestEvalScore";

export interface Candidate {
  step: number;
  /** Directory with adapter_model.safetensors and adapter_config.json. */
  dir: string;
  trainLoss: number | null;
  valLoss: number | null;
  kind: "checkpoint" | "final";
  /** bestEvalScore: the mean of spec.evaluation.scoreMetric over the evaluation's examples. */
  evalScore?: number;
}

export interface Selection {
  policy: SelectionPolicy;
  /** The policy actually applied (differs when the asked one cannot be, with `note` saying why). */
  applied: "lowestTrainLoss" | "last" | "lowestEvalLoss" | "bestEvalScore";
  selected: Candidate;
  candidates: Candidate[];
  note?: string;
}

export function candidatesOf(
  history: History,
  existing: { checkpoints: Map<number, string>; final?: { step: number; dir: string } },
): Candidate[] {
  const meanLoss = (from: number, to: number) => {
    const losses = history.steps.filter((s) => s.step > from && s.step <= to).map((s) => s.loss);
    return losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : null;
  };
  const valAt = (step: number) => history.evals.find((e) => e.step === step)?.val_loss ?? null;
  const points: { step: number; dir: string; kind: Candidate["kind"] }[] = [];
  for (const [step, dir] of existing.checkpoints) points.push({ step, dir, kind: "checkpoint" });
  if (existing.final && !existing.checkpoints.has(existing.final.step)) {
    points.push({ step: existing.final.step, dir: existing.final.dir, kind: "final" });
  }
  points.sort((a, b) => a.step - b.step);
  // The windows are those of the saves as they happened, including checkpoints deleted since.
  const saveSteps = [
    ...new Set([...history.checkpoints.map((c) => c.step), ...points.map((p) => p.step)]),
  ].sort((a, b) => a - b);
  return points.map((p) => {
    const prev = saveSteps.filter((s) => s < p.step).pop() ?? 0;
    const ckpt = history.checkpoints.find((c) => c.step === p.step);
    return {
      step: p.step,
      dir: p.dir,
      kind: p.kind,
      trainLoss: ckpt?.train_loss ?? meanLoss(prev, p.step),
      valLoss:
        valAt(p.step) ??
        (p.kind === "final" ? (history.done?.val_loss ?? null) : (ckpt?.val_loss ?? null)),
    };
  });
}

/**
 * `evalScores` (step -> score, higher is better) is what bestEvalScore picks by; without it,
 * bestEvalScore falls back to the train loss and says so.
 */
export function selectCheckpoint(
  policy: SelectionPolicy,
  candidatesIn: Candidate[],
  evalScores?: Map<number, number>,
): Selection {
  if (candidatesIn.length === 0) throw new Error("no checkpoint or final adapter to select from");
  const candidates = evalScores
    ? candidatesIn.map((c) => {
        const v = evalScores.get(c.step);
        return v === undefined ? c : { ...c, evalScore: v };
      })
    : candidatesIn;
  const last = candidates[candidates.length - 1] as Candidate;
  const lowest = (key: "trainLoss" | "valLoss") => {
    let best: Candidate | undefined;
    for (const c of candidates) {
      const v = c[key];
      if (v === null || !Number.isFinite(v)) continue;
      // ties go to the later candidate: it has seen more data
      if (best === undefined || v <= (best[key] as number)) best = c;
    }
    return best;
  };
  if (policy === "last") return { policy, applied: "last", selected: last, candidates };
  if (policy === "lowestEvalLoss") {
    const best = lowest("valLoss");
    if (best) return { policy, applied: "lowestEvalLoss", selected: best, candidates };
    const t = lowest("trainLoss") ?? last;
    return {
      policy,
      applied: "lowestTrainLoss",
      selected: t,
      candidates,
      note: "no candidate has a validation loss (valSetSize 0?); selected by train loss",
    };
  }
  const best = lowest("trainLoss") ?? last;
  if (policy === "bestEvalScore") {
    let top: Candidate | undefined;
    for (const c of candidates) {
      if (c.evalScore === undefined || !Number.isFinite(c.evalScore)) continue;
      // ties go to the later candidate: it has seen more data
      if (top === undefined || c.evalScore >= (top.evalScore as number)) top = c;
    }
    if (top) return { policy, applied: "bestEvalScore", selected: top, candidates };
    return {
      policy,
      applied: "lowestTrainLoss",
      selected: best,
      candidates,
      note: "no candidate has an evaluation score (no validation split to generate for); selected by train loss",
    };
  }
  return { policy, applied: "lowestTrainLoss", selected: best, candidates };
}
