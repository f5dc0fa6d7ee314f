// The operator's part of status, computed from what it observes (the validation outcome,
// the Job and its pods). Pure: reconcile writes the result only when it differs.
// Which fields are the operator's and which the trainer's: OPERATOR_STATUS_FIELDS and
// TRAINER_STATUS_FIELDS in @loraforge/crds.

import {
  type Condition,
  ConditionType,
  type ConditionTypeName,
  type LoraFineTune,
  type LoraFineTuneStatus,
  OPERATOR_STATUS_FIELDS,
  type OperatorStatus,
  type Phase,
  Reason,
  type ReasonName,
} from "@loraforge/crds";
import { kueueManaged } from "./builders/job.ts";
import { type Failure, imagePullFailure, jobFailure } from "./failure.ts";
import { flavorFit } from "./memoryFit.ts";
import { GPU_PRODUCT_LABEL, GPU_RESOURCE } from "./naming.ts";
import { conditionOf, type Job, type Pod, type Workload } from "./objects.ts";
import type { ValidationOutcome } from "./validate.ts";
import { admissionSummary, admittedFlavor, queuedState } from "./workload.ts";

export const TERMINAL_PHASES: readonly Phase[] = ["Succeeded", "Failed"];

interface CondSpec {
  status: "True" | "False" | "Unknown";
  reason: ReasonName;
  message: string;
}

export interface Observation {
  lft: LoraFineTune;
  generation: number;
  validation: ValidationOutcome;
  job: Job | undefined;
  pods: readonly Pod[];
  /** Kueue's Workload for the Job, when the run is queued (queueName) and Kueue made one. */
  workload?: Workload | undefined;
  jobName: string;
  now: string;
  /**
   * A child could not be made (an object of that name this run does not control, or the
   * API server refused it): the run stops here.
   */
  blocked?: Failure | undefined;
}

export interface Decision {
  status: OperatorStatus;
  /** Set when the run failed while its Job still holds a GPU (image pull): delete the Job. */
  stopJob: boolean;
}

function timeOf(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, "Z");
  return undefined;
}

/** Keeps lastTransitionTime when a condition's status did not change. */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  wanted: Partial<Record<ConditionTypeName, CondSpec>>,
  generation: number,
  now: string,
): Condition[] {
  const out: Condition[] = [];
  for (const type of Object.values(ConditionType)) {
    const want = wanted[type];
    if (!want) continue;
    const old = previous?.find((c) => c.type === type);
    out.push({
      type,
      status: want.status,
      observedGeneration: generation,
      lastTransitionTime: old && old.status === want.status ? old.lastTransitionTime : now,
      reason: want.reason,
      message: want.message,
    });
  }
  return out;
}

function isPodRunning(pods: readonly Pod[]) {
  return pods.some((p) => p.status?.phase === "Running" && !p.metadata.deletionTimestamp);
}

/**
 * The trainer exited 0 and the Job controller has not yet marked the Job Complete (a second or
 * so on a real node): the run is finishing, not waiting for a pod to start.
 */
function isPodSucceeded(pods: readonly Pod[]) {
  return pods.some((p) => p.status?.phase === "Succeeded");
}

export function decideStatus(o: Observation): Decision {
  const { lft, validation, job, pods } = o;
  const prev = lft.status;
  const kueue = kueueManaged(lft.spec);
  const validated: CondSpec = validation.ok
    ? { status: "True", reason: validation.reason, message: validation.message || "spec accepted" }
    : { status: "False", reason: validation.reason, message: validation.message };
  const suspended: CondSpec = lft.spec.suspend
    ? { status: "True", reason: Reason.SuspendedBySpec, message: "spec.suspend is true" }
    : { status: "False", reason: Reason.NotSuspended, message: "" };

  let phase = "Pending" as Phase;
  const conds: Partial<Record<ConditionTypeName, CondSpec>> = { Validated: validated };
  let failure: Failure | undefined;
  let stopJob = false;

  const fail = (f: Failure) => {
    phase = "Failed";
    failure = f;
    conds.Progressing = { status: "False", reason: f.reason, message: "the run stopped" };
    conds.Failed = { status: "True", reason: f.reason, message: f.message };
  };

  if (!validation.ok) {
    fail({ reason: validation.reason, message: validation.message });
    conds.Admitted = {
      status: "False",
      reason: validation.reason,
      message: "no Job is created for an invalid spec",
    };
  } else if (o.blocked) {
    fail(o.blocked);
    conds.Admitted = { status: "False", reason: o.blocked.reason, message: o.blocked.message };
    stopJob = job !== undefined;
  } else if (!job) {
    if (prev?.phase && TERMINAL_PHASES.includes(prev.phase)) {
      // The run is over and its Job is gone (deleted after a failure, or by a TTL): keep the
      // result (a run finished before status.reason existed gets it from its result).
      const kept = pick(prev);
      const reason =
        kept.reason ?? (prev.phase === "Failed" ? prev.failure?.reason : Reason.AdapterReady);
      return { status: reason ? { ...kept, reason } : kept, stopJob: false };
    }
    if (lft.spec.suspend) {
      phase = "Suspended";
      conds.Admitted = {
        status: "False",
        reason: Reason.SuspendedBySpec,
        message: "no Job while suspended",
      };
    } else {
      phase = "Pending";
      conds.Admitted = {
        status: "Unknown",
        reason: Reason.JobCreated,
        message: "creating the Job",
      };
    }
    conds.Suspended = suspended;
  } else if (conditionOf(job, "Complete") || conditionOf(job, "SuccessCriteriaMet")) {
    // SuccessCriteriaMet (Kubernetes >= 1.31) comes first and is final, as FailureTarget is below
    phase = "Succeeded";
    conds.Admitted = { status: "True", reason: Reason.JobCreated, message: `Job ${o.jobName}` };
    conds.Progressing = {
      status: "False",
      reason: Reason.AdapterReady,
      message: "training finished",
    };
    conds.Succeeded = {
      status: "True",
      reason: Reason.AdapterReady,
      message: "the Job completed; the adapter is in the output location",
    };
  } else if (conditionOf(job, "Failed") || conditionOf(job, "FailureTarget")) {
    conds.Admitted = { status: "True", reason: Reason.JobCreated, message: `Job ${o.jobName}` };
    fail(jobFailure(job, pods));
  } else {
    const pull = imagePullFailure(pods);
    conds.Suspended = suspended;
    if (pull) {
      conds.Admitted = { status: "True", reason: Reason.JobCreated, message: `Job ${o.jobName}` };
      fail(pull);
      stopJob = true;
    } else if (job.spec?.suspend) {
      if (!kueue || lft.spec.suspend) {
        phase = "Suspended";
        conds.Admitted = {
          status: "False",
          reason: Reason.SuspendedBySpec,
          message: `Job ${o.jobName} is suspended`,
        };
      } else {
        phase = "Queued";
        const queued = queuedState(lft.spec.queueName as string, o.jobName, o.workload);
        conds.Admitted = { status: "False", reason: queued.reason, message: queued.message };
      }
      conds.Progressing = { status: "False", reason: Reason.PodPending, message: "not running" };
    } else {
      const admittedBy = kueue ? admissionSummary(o.workload) : undefined;
      const flavor = kueue ? admittedFlavor(o.workload, GPU_RESOURCE) : undefined;
      const fit = flavor
        ? `; ${flavorFit(flavor, job.spec?.template?.spec?.nodeSelector?.[GPU_PRODUCT_LABEL], validation.memoryEstimate)}`
        : "";
      conds.Admitted = {
        status: "True",
        reason: Reason.JobCreated,
        message: admittedBy ? `Job ${o.jobName}; ${admittedBy}${fit}` : `Job ${o.jobName}`,
      };
      if (isPodRunning(pods) || isPodSucceeded(pods)) {
        const p = prev?.progress;
        const trainingDone =
          p !== undefined &&
          p.totalSteps > 0 &&
          p.step >= p.totalSteps &&
          lft.spec.evaluation.enabled;
        const retries = job.status?.failed ?? 0;
        if (trainingDone) {
          phase = "Evaluating";
          conds.Progressing = {
            status: "True",
            reason: Reason.Evaluating,
            message: "training done; evaluating the adapter",
          };
        } else {
          phase = "Running";
          conds.Progressing =
            retries > 0
              ? {
                  status: "True",
                  reason: Reason.Resumed,
                  message: `retry ${retries} resumes from the newest checkpoint`,
                }
              : { status: "True", reason: Reason.Training, message: "training" };
        }
      } else {
        phase = "Pending";
        conds.Progressing = {
          status: "False",
          reason: Reason.PodPending,
          message: "waiting for the trainer pod to start",
        };
      }
    }
  }

  const status: OperatorStatus = {
    phase,
    reason: phaseReason(phase, conds, failure),
    ...columns(lft, validation),
    observedGeneration: o.generation,
    conditions: mergeConditions(prev?.conditions, conds, o.generation, o.now),
  };
  if (job || prev?.jobName) status.jobName = o.jobName;
  if (phase === "Queued") {
    status.queuedSince = prev?.phase === "Queued" && prev.queuedSince ? prev.queuedSince : o.now;
  }
  const start = timeOf(job?.status?.startTime) ?? prev?.startTime;
  if (start) status.startTime = start;
  const done = timeOf(job?.status?.completionTime);
  if (phase === "Succeeded" || phase === "Failed") {
    status.completionTime = done ?? prev?.completionTime ?? o.now;
  }
  if (failure) {
    status.failure =
      failure.exitCode === undefined
        ? { reason: failure.reason, message: failure.message }
        : { reason: failure.reason, message: failure.message, exitCode: failure.exitCode };
  }
  return { status, stopJob };
}

/**
 * status.reason, the Reason column: the failure when Failed, else the reason of the
 * condition that holds the run where it is (what it waits for, or what it is doing).
 */
function phaseReason(
  phase: Phase,
  conds: Partial<Record<ConditionTypeName, CondSpec>>,
  failure: Failure | undefined,
): ReasonName | undefined {
  switch (phase) {
    case "Failed":
      return failure?.reason;
    case "Succeeded":
      return conds.Succeeded?.reason;
    case "Suspended":
      return Reason.SuspendedBySpec;
    case "Pending":
    case "Queued":
      // Not admitted yet (Kueue, the Job being created), else the pod is not running yet.
      return conds.Admitted?.status !== "True" ? conds.Admitted?.reason : conds.Progressing?.reason;
    default:
      return conds.Progressing?.reason;
  }
}

/** status.model and status.gpu, the Model and GPU columns of `kubectl get lft -o wide`. */
function columns(
  lft: LoraFineTune,
  validation: ValidationOutcome,
): { model?: string; gpu?: string } {
  const out: { model?: string; gpu?: string } = {};
  const base = lft.spec?.baseModel;
  const source = base?.source;
  const model =
    base?.name ??
    source?.pvc?.path ??
    source?.uri ??
    (source?.image ? `${source.image.reference}:${source.image.path}` : undefined);
  if (model) out.model = model.slice(0, 512);
  const gpus = lft.spec?.resources?.gpus;
  if (gpus === 0) out.gpu = "cpu";
  else if (gpus !== undefined) {
    const product = validation.gpuProduct;
    const gpu = product ? `${gpus}x ${product}` : `${gpus}x`;
    out.gpu = (validation.trainsOnCpu ? `${gpu}, ${validation.trainsOnCpu}` : gpu).slice(0, 160);
  }
  return out;
}

export function pick(s: LoraFineTuneStatus | undefined): OperatorStatus {
  const out: Record<string, unknown> = {};
  for (const k of OPERATOR_STATUS_FIELDS) if (s?.[k] !== undefined) out[k] = s[k];
  return out as OperatorStatus;
}

/** Deep equality on JSON values, key order ignored. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}
