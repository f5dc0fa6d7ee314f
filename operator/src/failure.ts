// Why did the run fail? Read from the trainer container's termination (exit code, OOM
// kill, termination message) or its waiting state (image pull), else from the Job.

import { Reason, type ReasonName, TRAINER_EXIT_CODES } from "@loraforge/crds";
import type { KubeApiError } from "@loraforge/kube";
import { MODEL_IMAGE_CONTAINER, TRAINER_CONTAINER } from "./builders/job.ts";
import { conditionOf, type Job, type Pod } from "./objects.ts";

export interface Failure {
  reason: ReasonName;
  message: string;
  exitCode?: number;
}

const MAX_MESSAGE = 4096;
const clip = (s: string) => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s);

/** Waiting reasons that mean the image will not come without a change. */
export const IMAGE_PULL_REASONS = new Set([
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
]);

const byExitCode: Record<number, { reason: ReasonName; what: string }> = {
  [TRAINER_EXIT_CODES.usage]: {
    reason: Reason.InvalidInput,
    what: "the trainer refused its configuration",
  },
  [TRAINER_EXIT_CODES.invalidInput]: {
    reason: Reason.InvalidInput,
    what: "the model, dataset or a shard is invalid, or a source or the output refused the trainer",
  },
  [TRAINER_EXIT_CODES.io]: {
    reason: Reason.TrainerError,
    what: "a source or the output could not be reached, or the output directory could not be written",
  },
  [TRAINER_EXIT_CODES.numerics]: {
    reason: Reason.NaNLoss,
    what: "the loss or a gradient became NaN/inf; no adapter was written",
  },
  [TRAINER_EXIT_CODES.adapterCheck]: {
    reason: Reason.AdapterCheckFailed,
    what: "the saved adapter failed its self-check",
  },
};

function trainerState(pod: Pod) {
  return pod.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER);
}

/** The init container that copies an image model (builders/job.ts), when the run has one. */
function modelImageState(pod: Pod) {
  return pod.status?.initContainerStatuses?.find((c) => c.name === MODEL_IMAGE_CONTAINER);
}

/** A pod stuck on its image, as a failure; undefined otherwise. */
export function imagePullFailure(pods: readonly Pod[]): Failure | undefined {
  for (const pod of pods) {
    const waiting = trainerState(pod)?.state?.waiting;
    if (waiting?.reason && IMAGE_PULL_REASONS.has(waiting.reason)) {
      return {
        reason: Reason.ImagePullFailed,
        message: clip(
          `pod ${pod.metadata.name}: ${waiting.reason}: ${waiting.message ?? "the trainer image cannot be pulled"}`,
        ),
      };
    }
    const model = modelImageState(pod)?.state?.waiting;
    if (model?.reason && IMAGE_PULL_REASONS.has(model.reason)) {
      return {
        reason: Reason.ImagePullFailed,
        message: clip(
          `pod ${pod.metadata.name}: the model image (spec.baseModel.source.image): ${model.reason}: ${model.message ?? "it cannot be pulled"}`,
        ),
      };
    }
  }
  return undefined;
}

/** The failure of the newest pod whose trainer container terminated unsuccessfully. */
export function podFailure(pods: readonly Pod[]): Failure | undefined {
  const newestFirst = [...pods].sort((a, b) =>
    (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""),
  );
  for (const pod of newestFirst) {
    const copy = modelImageState(pod)?.state?.terminated;
    if (copy && copy.exitCode !== 0) {
      const detail = copy.message?.trim();
      return {
        reason: Reason.InvalidInput,
        exitCode: copy.exitCode,
        message: clip(
          `pod ${pod.metadata.name}: copying the model out of its image (spec.baseModel.source.image) failed with exit code ${copy.exitCode}: the image needs a cp command and the path must exist${detail ? `: ${detail}` : ""}`,
        ),
      };
    }
    const status = trainerState(pod);
    const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
    if (!terminated || terminated.exitCode === 0) continue;
    const detail = terminated.message?.trim();
    const suffix = detail ? `: ${detail}` : "";
    if (terminated.reason === "OOMKilled") {
      return {
        reason: Reason.OOMKilled,
        exitCode: terminated.exitCode,
        message: clip(
          `pod ${pod.metadata.name}: the trainer was killed for exceeding its memory limit (exit ${terminated.exitCode}); raise resources.memory or lower microBatchSize/cutoffLen${suffix}`,
        ),
      };
    }
    const known = byExitCode[terminated.exitCode];
    return {
      reason: known?.reason ?? Reason.TrainerError,
      exitCode: terminated.exitCode,
      message: clip(
        `pod ${pod.metadata.name}: trainer exited with code ${terminated.exitCode} (${known?.what ?? terminated.reason ?? "error"})${suffix}`,
      ),
    };
  }
  return undefined;
}

/** An object with a child's name that this run does not control: refused, left untouched. */
export function objectConflict(
  kind: string,
  namespace: string,
  name: string,
  holder: string,
): Failure {
  return {
    reason: Reason.ObjectConflict,
    message: clip(
      `${kind} ${namespace}/${name} already exists and is not controlled by this LoraFineTune (${holder}); the operator does not take over objects it did not create: delete that ${kind} or create the run under another name`,
    ),
  };
}

/** The API server refused a child outright (400/422...): the run cannot go on as specified. */
export function rejectedByApiServer(
  kind: string,
  namespace: string,
  name: string,
  e: KubeApiError,
): Failure {
  return {
    reason: Reason.RejectedByAPIServer,
    message: clip(
      `the API server refused ${kind} ${namespace}/${name} (${e.status} ${e.reason || "error"}): ${e.serverMessage}`,
    ),
  };
}

export function jobFailure(job: Job, pods: readonly Pod[]): Failure {
  const fromPod = podFailure(pods);
  const failed = conditionOf(job, "Failed");
  if (fromPod) {
    if (failed?.reason === "BackoffLimitExceeded" && fromPod.reason === Reason.TrainerError) {
      return { ...fromPod, reason: Reason.BackoffLimitExceeded };
    }
    return fromPod;
  }
  const message = clip(
    `job ${job.metadata.name}: ${failed?.reason ?? "Failed"}: ${failed?.message ?? "the Job failed"}`,
  );
  if (failed?.reason === "BackoffLimitExceeded")
    return { reason: Reason.BackoffLimitExceeded, message };
  if (failed?.reason === "DeadlineExceeded") return { reason: Reason.DeadlineExceeded, message };
  return { reason: Reason.TrainerError, message };
}
