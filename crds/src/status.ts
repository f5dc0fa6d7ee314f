import { z } from "zod";
import { PHASES } from "./conditions.ts";
import { CHECKPOINT_POLICIES } from "./spec.ts";

const time = (description: string) => z.string().max(64).describe(`${description} (RFC 3339).`);

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
    lastTransitionTime: time("When the status last changed"),
    reason: z
      .string()
      .min(1)
      .max(128)
      .describe("CamelCase reason, one of the constants in crds/src/conditions.ts."),
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

export const LoraFineTuneStatusSchema = z
  .object({
    phase: z
      .enum(PHASES)
      .optional()
      .describe("Pending, Queued, Running, Evaluating, Succeeded, Failed or Suspended."),
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
      })
      .strict()
      .optional()
      .describe("Summary of eval.json: metrics of the base and the fine-tuned model."),
    failure: z
      .object({
        reason: z
          .string()
          .max(128)
          .describe("CamelCase reason (OOMKilled, InvalidInput, NaNLoss, ImagePullFailed, ...)."),
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

export type LoraFineTuneStatus = z.output<typeof LoraFineTuneStatusSchema>;
export type Condition = z.output<typeof ConditionSchema>;
export type Progress = z.output<typeof ProgressSchema>;
export type CheckpointStatus = z.output<typeof CheckpointSchema>;
export type EvalMetrics = z.output<typeof MetricsSchema>;
