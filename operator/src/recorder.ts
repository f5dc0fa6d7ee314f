// Kubernetes Events about a LoraFineTune (core/v1, visible in `kubectl describe lft`).
// Best effort: a failed Event is logged, never fails a reconcile.
//
// Each Event says what happened to the run (JobCreated, TrainingStarted, CheckpointSaved,
// Evaluating, Succeeded, Failed, ...). `runEvents` decides them from the operator's status
// before and after a write (pure); `RunRecorder` sends them, tells the metrics, and watches
// the trainer's checkpoints, which change without an operator write.

import { API_VERSION, KIND, type LoraFineTune, type OperatorStatus, Reason } from "@loraforge/crds";
import { type Kube, paths } from "@loraforge/kube";
import type { Logger } from "./log.ts";
import type { ValidationOutcome } from "./validate.ts";

export interface EventTarget {
  name: string;
  namespace: string;
  uid: string;
}

/** Event reasons of the operator (condition reasons are in @loraforge/crds). */
export const EventReason = {
  JobCreated: "JobCreated",
  Queued: "Queued",
  Admitted: "Admitted",
  TrainingStarted: "TrainingStarted",
  TrainingResumed: "TrainingResumed",
  CheckpointSaved: "CheckpointSaved",
  Evaluating: "Evaluating",
  Succeeded: "Succeeded",
  Failed: "Failed",
  Suspended: "Suspended",
  Unsuspended: "Unsuspended",
  TolerationsFromFlavor: "TolerationsFromFlavor",
  /** Kueue took the run's admission back (preemption, eviction): it is queued again. */
  Evicted: "Evicted",
  LocalQueueNotFound: "LocalQueueNotFound",
} as const;

export interface EventSpec {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** A status write of the operator: what it saw before, what it wrote, and why. */
export interface RunTransition {
  target: EventTarget;
  lft: LoraFineTune;
  before: OperatorStatus;
  after: OperatorStatus;
  validation: ValidationOutcome;
  /** The status as read, trainer fields included (progress, adapter). */
  observed: LoraFineTune["status"];
  /** metadata.creationTimestamp (RFC 3339), when known. */
  createdAt: string | undefined;
  /** When the write happened. */
  at: Date;
}

const message = (s: OperatorStatus, type: string) =>
  s.conditions?.find((c) => c.type === type)?.message ?? "";

/** The Events one status write stands for, in the order they happened. */
export function runEvents(t: RunTransition): EventSpec[] {
  const { before, after, lft, validation } = t;
  const out: EventSpec[] = [];
  const normal = (reason: string, msg: string) =>
    out.push({ type: "Normal", reason, message: msg });
  const warning = (reason: string, msg: string) =>
    out.push({ type: "Warning", reason, message: msg });

  const validatedBefore = before.conditions?.find((c) => c.type === "Validated");
  if (validation.warnings.length > 0 && validatedBefore?.reason !== validation.reason) {
    for (const w of validation.warnings) warning(validation.reason, w);
  }
  if (
    lft.spec?.queueName &&
    lft.spec.resources?.tolerations?.length &&
    before.phase === undefined
  ) {
    warning(
      EventReason.TolerationsFromFlavor,
      "queueName is set: Kueue's ResourceFlavor supplies tolerations; spec.resources.tolerations are not written to the Job",
    );
  }
  if (!before.jobName && after.jobName) {
    normal(EventReason.JobCreated, `created Job ${after.jobName}`);
  }
  if (after.phase === "Queued" && after.reason !== before.reason) {
    // Why a queued run cannot go on is worth a Warning, also while it stays Queued.
    if (after.reason === Reason.EvictedByKueue)
      warning(EventReason.Evicted, message(after, "Admitted"));
    else if (after.reason === Reason.LocalQueueNotFound)
      warning(EventReason.LocalQueueNotFound, message(after, "Admitted"));
  }
  if (before.phase === after.phase) return out;

  switch (after.phase) {
    case "Queued":
      if (after.reason === Reason.QueuedByKueue)
        normal(EventReason.Queued, message(after, "Admitted") || "waiting for Kueue admission");
      break;
    case "Suspended":
      normal(EventReason.Suspended, "spec.suspend is true: training stops (checkpoints are kept)");
      break;
    case "Running":
      if (before.phase === "Queued")
        normal(EventReason.Admitted, `Kueue admitted ${after.jobName}`);
      if (after.reason === Reason.Resumed) {
        normal(EventReason.TrainingResumed, message(after, "Progressing"));
      } else {
        normal(EventReason.TrainingStarted, "the trainer pod is running");
      }
      break;
    case "Evaluating":
      normal(EventReason.Evaluating, "training done; evaluating the adapter");
      break;
    case "Succeeded": {
      const where = t.observed?.adapter?.path;
      normal(
        EventReason.Succeeded,
        where ? `the adapter is ready at ${where}` : "the adapter is ready in the output location",
      );
      break;
    }
    case "Failed":
      warning(
        EventReason.Failed,
        `${after.failure?.reason ?? after.reason ?? "Failed"}: ${after.failure?.message ?? ""}`,
      );
      break;
    case "Pending":
      if (before.phase === "Queued")
        normal(EventReason.Admitted, `Kueue admitted ${after.jobName}`);
      break;
  }
  if (before.phase === "Suspended" && after.phase !== "Suspended" && after.phase !== "Failed") {
    out.push({
      type: "Normal",
      reason: EventReason.Unsuspended,
      message: "spec.suspend is false: the run continues from the newest checkpoint",
    });
  }
  return out;
}

/** Checkpoints the trainer reported since `lastStep`, as CheckpointSaved events. */
export function checkpointEvents(
  status: LoraFineTune["status"] | undefined,
  lastStep: number,
): { events: EventSpec[]; newest: number } {
  let newest = lastStep;
  const events: EventSpec[] = [];
  for (const c of status?.checkpoints ?? []) {
    if (c.step <= lastStep) continue;
    newest = Math.max(newest, c.step);
    const losses = [
      c.trainLoss !== undefined ? `train loss ${c.trainLoss.toFixed(4)}` : "",
      c.valLoss !== undefined ? `val loss ${c.valLoss.toFixed(4)}` : "",
    ].filter(Boolean);
    events.push({
      type: "Normal",
      reason: EventReason.CheckpointSaved,
      message: `step ${c.step}: ${c.path}${losses.length ? ` (${losses.join(", ")})` : ""}`,
    });
  }
  return { events, newest };
}

const MAX_IN_FLIGHT = 64;

export class EventRecorder {
  private inFlight = 0;
  dropped = 0;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    /** reportingInstance: the operator pod's name (the chart passes it), else the host name. */
    private readonly instance: string,
    private readonly component = "loraforge-operator",
  ) {}

  /**
   * Sends an Event without holding up the caller (events are best effort, and a worker
   * should not wait a round trip for one). Beyond 64 in flight, events are dropped.
   */
  emit(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.dropped++;
      return;
    }
    this.inFlight++;
    void this.send(target, type, reason, message).finally(() => {
      this.inFlight--;
    });
  }

  private async send(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ) {
    const now = new Date().toISOString();
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${target.name}.`, namespace: target.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: target.name,
        namespace: target.namespace,
        uid: target.uid,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: this.component,
      reportingInstance: this.instance,
    };
    try {
      await this.kube.create(paths.events(target.namespace), event);
    } catch (error) {
      this.log.warn("could not record event", { reason, error });
    }
  }
}

/** Who else hears of transitions (the run metrics). */
export interface TransitionObserver {
  observeTransition(t: RunTransition): void;
}

interface TrainerView {
  metadata?: { name?: string; namespace?: string; uid?: string };
  status?: unknown;
}

/**
 * Records what happens to runs: Events (and metrics) for the operator's status writes,
 * CheckpointSaved for the trainer's. Checkpoints are remembered per run from the first
 * time this process sees it, so a restarted operator does not repeat old ones.
 */
export class RunRecorder {
  private readonly checkpointSeen = new Map<string, number>();

  constructor(
    private readonly events: EventRecorder,
    private readonly observers: readonly TransitionObserver[] = [],
  ) {}

  transition(t: RunTransition) {
    for (const e of runEvents(t)) this.events.emit(t.target, e.type, e.reason, e.message);
    for (const o of this.observers) o.observeTransition(t);
  }

  /** A LoraFineTune as the informer delivers it (added or updated). */
  trainerReported(obj: TrainerView) {
    const { name, namespace, uid } = obj.metadata ?? {};
    if (!name || !namespace || !uid) return;
    const status = obj.status as LoraFineTune["status"] | undefined;
    const last = this.checkpointSeen.get(uid);
    const { events, newest } = checkpointEvents(status, last ?? 0);
    this.checkpointSeen.set(uid, newest);
    if (last === undefined) return; // first sight: these were announced before, if at all
    for (const e of events) this.events.emit({ name, namespace, uid }, e.type, e.reason, e.message);
  }

  forget(uid: string) {
    this.checkpointSeen.delete(uid);
  }
}
