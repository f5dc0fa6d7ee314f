/**
 * metrics.jsonl: every core event of every session of a run, appended as it arrives. Reading it
 * back gives the run's history as it stands: when a session resumed from step k, what earlier
 * sessions logged after step k was redone, and the redone values win.
 */
import { appendFile, readFile } from "node:fs/promises";
import {
  type CheckpointEvent,
  type CoreEvent,
  CoreEventSchema,
  type DoneEvent,
  type EvalEvent,
  type StartEvent,
  type StepEvent,
} from "./events.ts";

export class MetricsLog {
  constructor(readonly path: string) {}
  async append(e: CoreEvent): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(e)}\n`);
  }
}

export interface History {
  starts: StartEvent[];
  steps: StepEvent[];
  evals: EvalEvent[];
  checkpoints: CheckpointEvent[];
  done?: DoneEvent;
}

export function historyOf(events: readonly CoreEvent[]): History {
  const steps = new Map<number, StepEvent>();
  const evals = new Map<number, EvalEvent>();
  const checkpoints = new Map<number, CheckpointEvent>();
  const starts: StartEvent[] = [];
  let done: DoneEvent | undefined;
  const dropAfter = <T>(m: Map<number, T>, k: number) => {
    for (const s of [...m.keys()]) if (s > k) m.delete(s);
  };
  for (const e of events) {
    switch (e.event) {
      case "start":
        starts.push(e);
        dropAfter(steps, e.resumed_from_step);
        dropAfter(checkpoints, e.resumed_from_step);
        // the eval at the resume step is run again too
        dropAfter(evals, e.resumed_from_step - 1);
        done = undefined;
        break;
      case "step":
        steps.set(e.step, e);
        break;
      case "eval":
        evals.set(e.step, e);
        break;
      case "checkpoint":
        checkpoints.set(e.step, e);
        break;
      case "done":
        done = e;
        break;
      default:
        break;
    }
  }
  const byStep = <T extends { step: number }>(m: Map<number, T>) =>
    [...m.values()].sort((a, b) => a.step - b.step);
  return {
    starts,
    steps: byStep(steps),
    evals: byStep(evals),
    checkpoints: byStep(checkpoints),
    ...(done ? { done } : {}),
  };
}

/** Reads metrics.jsonl; lines that are not events are skipped (the file is append-only, a crash may cut one). */
export async function readHistory(path: string): Promise<History> {
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch {
    return historyOf([]);
  }
  const events: CoreEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = CoreEventSchema.safeParse(JSON.parse(line));
      if (r.success) events.push(r.data);
    } catch {
      // a torn last line
    }
  }
  return historyOf(events);
}
