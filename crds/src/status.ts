import { z } from "zod";
import {
  FAILURE_REASONS,
  JOB_REFUSED_REASONS,
  PHASES,
  Reason,
  VALIDATION_FAILURE_REASONS,
} from "./conditions.ts";
import { CHECKPOINT_POLICIES } from "./spec.ts";

const time = (description: string) => z.string().max(64).describe(`${description} (RFC 3339).`);

const failureReasons = FAILURE_REASONS.join(", ");
/** "A, B or C". */
const either = (words: readonly string[]) =>
  words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;

/** What each condition's reason can be, for `kubectl explain` (built from the constants). */
const CONDITION_REASONS = [
  `Validated: ${Reason.SpecValid} or ${Reason.QuantizationWarning} (True); ${either(VALIDATION_FAILURE_REASONS)} (False).`,
  `Admitted: ${Reason.JobCreated} (True, or Unknown while it is being created); ${Reason.QueuedByKueue}, ${Reason.EvictedByKueue}, ${Reason.LocalQueueNotFound} or ${Reason.SuspendedBySpec} (False); with no Job: the Validated reason for a refused spec, ${either(JOB_REFUSED_REASONS)} when the Job cannot be created (False).`,
  `Progressing: ${Reason.Training}, ${Reason.Resumed} (a retry from the newest checkpoint) or ${Reason.Evaluating} (True); ${Reason.PodPending}, ${Reason.AdapterReady} or a failure reason (False).`,
  `Succeeded: ${Reason.AdapterReady}.`,
  `Failed: a failure reason (${failureReasons}).`,
  `Suspended: ${Reason.SuspendedBySpec} or ${Reason.NotSuspended}.`,
].join(" ");

const ConditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .max(64)
      .describe(
        "Condition type: Validated, Admitted, Progressing, Succeeded, Failed or Suspended.",
      ),
    status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown."),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("metadata.generation of the spec this condition was computed from."),
    // The API server checks the date-time format itself; zod checks the same (RFC 3339
    // with a time zone), so a bad time is refused here as it is there.
    lastTransitionTime: z.iso
      .datetime({ offset: true })
      .describe("When the status last changed (RFC 3339)."),
    reason: z
      .string()
      .min(1)
      .max(128)
      .describe(`CamelCase reason for the status. ${CONDITION_REASONS}`),
    message: z.string().max(32768).default("").describe("Human-readable details."),
  })
  .strict()
  .describe("A condition in the Kubernetes convention.");

const ProgressSchema = z
  .object({
    step: z.number().int().min(0).describe("Optimizer steps done."),
    totalSteps: z.number().int().min(0).describe("Optimizer steps planned."),
    epoch: z.number().min(0).optional().describe("Fractional epoch reached."),
    percent: z.number().int().min(0).max(100).optional().describe("step / totalSteps in percent."),
    summary: z
      .string()
      .max(64)
      .optional()
      .describe('Progress for kubectl get, e.g. "120/300 (40%)".'),
    loss: z
      .number()
      .optional()
      .describe("Latest training loss (mean over unmasked tokens of the step's batch)."),
    valLoss: z.number().optional().describe("Latest validation loss."),
    learningRate: z.number().optional().describe("Learning rate of the latest step."),
    tokensPerSecond: z
      .number()
      .min(0)
      .optional()
      .describe("Training throughput (all tokens, padding excluded)."),
    etaSeconds: z.number().min(0).optional().describe("Estimated seconds until training ends."),
    eta: z
      .string()
      .max(32)
      .optional()
      .describe('etaSeconds for kubectl get -o wide, e.g. "1h12m".'),
    lossScale: z.number().min(0).optional().describe("fp16 dynamic loss scale (fp16 runs only)."),
    updatedAt: time("When the trainer last reported").optional(),
  })
  .strict()
  .describe("Live training progress, written by the trainer through its per-run ServiceAccount.");

const CheckpointSchema = z
  .object({
    step: z.number().int().min(0).describe("Optimizer step of the checkpoint."),
    path: z.string().max(2048).describe("Path of the checkpoint in the output location."),
    trainLoss: z.number().optional().describe("Mean training loss since the previous checkpoint."),
    valLoss: z.number().optional().describe("Validation loss at the checkpoint."),
    createdAt: time("When it was written").optional(),
  })
  .strict()
  .describe("A saved checkpoint.");

const MetricsSchema = z
  .object({
    evalLoss: z.number().optional().describe("Mean loss on the validation split."),
    exactMatch: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Share of generated answers equal to the reference."),
    rougeL: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Mean ROUGE-L F1 of generated answers against the references."),
    promptRepetition: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Share of answers that repeat the prompt (the prompt-repeater failure)."),
  })
  .strict()
  .describe("Evaluation metrics of one model.");

/** Longest text of a sample in status.evaluation.examples (UTF-16 units; the writer cuts with "…"). */
export const EVAL_EXAMPLE_TEXT_MAX = 400;
/** Samples carried in status.evaluation.examples (the rest are in eval.json). */
export const EVAL_EXAMPLES_MAX = 3;

const exampleText = (description: string) =>
  z
    .string()
    .max(EVAL_EXAMPLE_TEXT_MAX)
    .describe(`${description} (cut to ${EVAL_EXAMPLE_TEXT_MAX} characters).`);

const EvalExampleSchema = z
  .object({
    promptSha256: z
      .string()
      .max(64)
      .regex(/^[0-9a-f]{64}$/)
      .describe(
        "sha256 of the uncut prompt (JSON [instruction, input]): the same prompt in another run has the same digest.",
      ),
    instruction: exampleText("The instruction"),
    input: exampleText("The input, empty when the example has none"),
    reference: exampleText("The dataset's response"),
    base: exampleText("The base model's answer"),
    tuned: exampleText("The fine-tuned model's answer").optional(),
  })
  .strict()
  .describe("One sample generation of eval.json, base model vs fine-tuned.");

export const LoraFineTuneStatusSchema = z
  .object({
    phase: z
      .enum(PHASES)
      .optional()
      .describe("Pending, Queued, Running, Evaluating, Succeeded, Failed or Suspended."),
    reason: z
      .string()
      .max(128)
      .optional()
      .describe(
        `Why the run is in its phase, in one word for kubectl get (written by the operator): the failure reason when Failed (${failureReasons}); else the reason of the condition that holds the run in its phase: ${Reason.QueuedByKueue}, ${Reason.EvictedByKueue}, ${Reason.LocalQueueNotFound}, ${Reason.PodPending} or ${Reason.JobCreated} while waiting, ${Reason.SuspendedBySpec}, ${Reason.Training}, ${Reason.Resumed}, ${Reason.Evaluating}, ${Reason.AdapterReady}.`,
      ),
    model: z
      .string()
      .max(512)
      .optional()
      .describe(
        "The base model for kubectl get -o wide (written by the operator): spec.baseModel.name, else the path, URI or image of its source.",
      ),
    gpu: z
      .string()
      .max(160)
      .optional()
      .describe(
        'GPUs of the run and the product it was checked against, for kubectl get -o wide (written by the operator), e.g. "1x Tesla-V100-SXM2-32GB"; "cpu" without GPUs.',
      ),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("metadata.generation last reconciled."),
    conditions: z
      .array(ConditionSchema)
      .max(16)
      .optional()
      .meta({
        description: "Conditions with observedGeneration; one per type.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
    jobName: z.string().max(253).optional().describe("Name of the training Job."),
    queuedSince: time(
      "Since when the run waits for Kueue to admit it (written by the operator while the phase is Queued; cleared on admission)",
    ).optional(),
    startTime: time("When the training Job started").optional(),
    completionTime: time("When the run finished").optional(),
    progress: ProgressSchema.optional(),
    checkpoints: z
      .array(CheckpointSchema)
      .max(1000)
      .optional()
      .describe("Checkpoints kept, oldest first."),
    selectedCheckpoint: z
      .object({
        step: z.number().int().min(0).describe("Step of the selected checkpoint."),
        path: z.string().max(2048).describe("Its path in the output location."),
        policy: z
          .enum(CHECKPOINT_POLICIES)
          .describe("The checkpointSelection policy that chose it."),
      })
      .strict()
      .optional()
      .describe("The checkpoint chosen by spec.checkpointSelection."),
    adapter: z
      .object({
        path: z.string().max(2048).describe("Location of the PEFT adapter directory."),
        digest: z
          .string()
          .max(80)
          .regex(/^sha256:[0-9a-f]{64}$/)
          .describe("sha256 of adapter_model.safetensors."),
        sizeBytes: z.number().int().min(0).describe("Size of adapter_model.safetensors."),
        verified: z
          .boolean()
          .describe("The adapter passed the post-save check (non-empty, finite, changes logits)."),
      })
      .strict()
      .optional()
      .describe("The adapter produced by the run."),
    evaluation: z
      .object({
        base: MetricsSchema.optional(),
        tuned: MetricsSchema.optional(),
        samples: z.number().int().min(0).optional().describe("Prompts generated for."),
        path: z.string().max(2048).optional().describe("Location of eval.json."),
        examples: z
          .array(EvalExampleSchema)
          .max(EVAL_EXAMPLES_MAX)
          .optional()
          .describe(
            `Up to ${EVAL_EXAMPLES_MAX} of eval.json's samples (the ones with the smallest promptSha256, so runs over overlapping data tend to show the same prompts), for the pull-request comment.`,
          ),
      })
      .strict()
      .optional()
      .describe("Summary of eval.json: metrics of the base and the fine-tuned model."),
    failure: z
      .object({
        reason: z.string().max(128).describe(`CamelCase reason: ${failureReasons}.`),
        message: z.string().max(32768).describe("What went wrong, from the trainer or the pod."),
        exitCode: z
          .number()
          .int()
          .optional()
          .describe("Exit code of the trainer container, when it exited."),
      })
      .strict()
      .optional()
      .describe("Why the run failed."),
  })
  .strict()
  .describe("Observed state of the run, written by the operator and the trainer.");

/** A duration as kubectl prints ages ("45s", "12m", "3h05m", "2d4h"), for status.progress.eta. */
export function durationText(seconds: number): string {
  if (!Number.isFinite(seconds)) return "unknown";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

export type LoraFineTuneStatus = z.output<typeof LoraFineTuneStatusSchema>;

/**
 * Who writes which status field (each field has exactly one writer; crds/test/unit/status.test.ts
 * checks the two lists cover the schema). The operator computes these from what it observes
 * and writes them with a status patch that replaces exactly these keys.
 */
export const OPERATOR_STATUS_FIELDS = [
  "phase",
  "reason",
  "model",
  "gpu",
  "observedGeneration",
  "conditions",
  "jobName",
  "queuedSince",
  "startTime",
  "completionTime",
  "failure",
] as const satisfies readonly (keyof LoraFineTuneStatus)[];
/** The trainer (`loraforge job`, through the per-run ServiceAccount) reports these. */
export const TRAINER_STATUS_FIELDS = [
  "progress",
  "checkpoints",
  "selectedCheckpoint",
  "adapter",
  "evaluation",
] as const satisfies readonly (keyof LoraFineTuneStatus)[];
export type OperatorStatusField = (typeof OPERATOR_STATUS_FIELDS)[number];
export type TrainerStatusField = (typeof TRAINER_STATUS_FIELDS)[number];
/** The operator's part of status. */
export type OperatorStatus = Pick<LoraFineTuneStatus, OperatorStatusField>;
/** The trainer's part of status. */
export type TrainerStatus = Pick<LoraFineTuneStatus, TrainerStatusField>;
export type Condition = z.output<typeof ConditionSchema>;
export type Progress = z.output<typeof ProgressSchema>;
export type CheckpointStatus = z.output<typeof CheckpointSchema>;
export type EvalMetrics = z.output<typeof MetricsSchema>;
export type EvalExampleStatus = z.output<typeof EvalExampleSchema>;
