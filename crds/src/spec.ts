import { z } from "zod";
import { NO_BF16_PRODUCT_PATTERN, productLacksBf16 } from "./gpus.ts";
import { httpsHostRules } from "./hosts.ts";
import { annotate } from "./rules.ts";

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

/** Schemes a URI source may use. Anything else (file, http, ftp, ...) is refused. */
export const ALLOWED_URI_SCHEMES = ["https", "s3", "hf"] as const;

const uriPattern = new RegExp(`^(${ALLOWED_URI_SCHEMES.join("|")})://[^\\s/]+`);

const uri = (what: string) =>
  annotate(z.string().min(1).max(2048), {
    description: `URI of ${what}. Allowed schemes: ${ALLOWED_URI_SCHEMES.join(", ")} (e.g. hf://org/name, s3://bucket/key, https://host/path). An https host may not be loopback, link-local, localhost or a metadata host; the operator refuses other non-public addresses unless its policy allows the network.`,
    rules: [
      {
        cel: `self.matches('^(${ALLOWED_URI_SCHEMES.join("|")})://[^\\\\s/]+')`,
        message: `must be a URI with one of the schemes ${ALLOWED_URI_SCHEMES.join(", ")}`,
        holds: (s) => uriPattern.test(s),
      },
      ...httpsHostRules(),
    ],
  });

/** A path inside a volume: relative, and never climbing out of it. */
const volumePath = (what: string) =>
  annotate(z.string().min(1).max(1024), {
    description: `${what}, relative to the root of the volume. Absolute paths and ".." segments are refused.`,
    rules: [
      {
        cel: "!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')",
        message: "must be a relative path that stays inside its volume (no leading '/', no '..')",
        holds: (s) => !s.startsWith("/") && !/(^|\/)\.\.(\/|$)/.test(s),
      },
    ],
  });

const dnsLabel = (description: string) =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .describe(description);

/** A Secret with the credentials of a uri or git source, or of a uri output. */
const secretName = (what: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
    .describe(
      `Secret in the resource's namespace with the credentials of ${what}, mounted read-only into the trainer pod: keys token (https, hf: Bearer; git: as password), username/password (git), accessKeyId/secretAccessKey/sessionToken/region/endpoint (s3; endpoint for S3-compatible stores). See docs/ADMIN.md.`,
    );

const secretOnlyWith = (keys: readonly string[]) => ({
  cel: `!has(self.secretName) || ${keys.map((k) => `has(self.${k})`).join(" || ")}`,
  message: `secretName is used only with ${keys.join(" or ")}`,
  field: ["secretName"],
  holds: (v: Record<string, unknown>) =>
    v.secretName === undefined || keys.some((k) => v[k] !== undefined),
});

const pvcSource = (what: string) =>
  z
    .object({
      claimName: dnsLabel("Name of a PersistentVolumeClaim in the resource's namespace."),
      path: volumePath(`Path of ${what}`),
    })
    .strict()
    .describe(`${what} on a PersistentVolumeClaim.`);

/** "exactly one of" for source objects, as a zod check and a CEL rule. */
function exactlyOne<T extends Record<string, unknown>>(keys: readonly (keyof T & string)[]) {
  return {
    cel: `[${keys.map((k) => `has(self.${k})`).join(", ")}].filter(x, x).size() == 1`,
    message: `exactly one of ${keys.join(", ")} must be set`,
    holds: (v: T) => keys.filter((k) => v[k] !== undefined).length === 1,
  };
}

// ---------------------------------------------------------------------------
// spec.baseModel
// ---------------------------------------------------------------------------

const ModelSourceSchema = annotate(
  z
    .object({
      pvc: pvcSource(
        "a Hugging Face model directory (config.json, tokenizer.json, *.safetensors)",
      ).optional(),
      uri: uri("a Hugging Face model directory").optional(),
      image: z
        .object({
          reference: z
            .string()
            .min(1)
            .max(512)
            .describe("Container image that carries the model files (an OCI image reference)."),
          path: volumePath("Directory of the model inside the image"),
        })
        .strict()
        .describe(
          "A model shipped inside a container image: an init container (the image itself, running its cp) copies the directory into the pod's sources volume.",
        )
        .optional(),
      secretName: secretName("the uri").optional(),
    })
    .strict(),
  {
    description: "Where the base model comes from: exactly one of pvc, uri or image.",
    rules: [exactlyOne(["pvc", "uri", "image"]), secretOnlyWith(["uri"])],
  },
);

export const BaseModelSchema = annotate(
  z
    .object({
      source: ModelSourceSchema,
      name: z
        .string()
        .max(256)
        .optional()
        .describe(
          "Name recorded as base_model_name_or_path in the adapter's adapter_config.json (defaults to the source path or URI).",
        ),
    })
    .strict(),
  {
    description:
      "The frozen base model that LoRA adapts (a Llama-family Hugging Face model directory).",
    immutable: true,
  },
);

// ---------------------------------------------------------------------------
// spec.dataset
// ---------------------------------------------------------------------------

const DatasetSourceSchema = annotate(
  z
    .object({
      pvc: pvcSource("the dataset file (Alpaca JSON or JSONL)").optional(),
      uri: uri("the dataset file").optional(),
      git: z
        .object({
          repo: annotate(z.string().min(1).max(2048), {
            description:
              "HTTPS URL of the git repository. Its host may not be loopback, link-local, localhost or a metadata host; the operator refuses other non-public addresses unless its policy allows the network.",
            rules: [
              {
                cel: "self.startsWith('https://')",
                message: "must be an https:// repository URL",
                holds: (s) => s.startsWith("https://"),
              },
              ...httpsHostRules(),
            ],
          }),
          ref: z
            .string()
            .min(1)
            .max(256)
            .describe("Commit SHA (preferred: makes the run reproducible), tag or branch."),
          path: volumePath("Path of the dataset file inside the repository"),
        })
        .strict()
        .describe("A dataset file in a git repository, pinned to a ref.")
        .optional(),
      secretName: secretName("the uri or git repository").optional(),
    })
    .strict(),
  {
    description:
      "Where the dataset comes from: exactly one of pvc, uri or git. An https uri may end in #sha256=<hex> to pin the file's digest.",
    rules: [exactlyOne(["pvc", "uri", "git"]), secretOnlyWith(["uri", "git"])],
  },
);

export const PROMPT_TEMPLATES = ["alpaca", "alpaca_short", "custom"] as const;

const DatasetSchema = annotate(
  z
    .object({
      source: DatasetSourceSchema,
      format: z
        .enum(["auto", "json", "jsonl"])
        .default("auto")
        .describe(
          "File format: json (an array of Alpaca records), jsonl (one record per line) or auto (by extension, then content).",
        ),
      promptTemplate: z
        .enum(PROMPT_TEMPLATES)
        .default("alpaca")
        .describe(
          "Prompt template: alpaca (alpaca-lora's text, response after '### Response:'), alpaca_short, or custom (see customTemplatePath).",
        ),
      customTemplatePath: volumePath(
        "A JSON template file (prompt_input, prompt_no_input, response_split) on the dataset's volume or repository; required when promptTemplate is custom",
      ).optional(),
      valSetSize: z
        .number()
        .int()
        .min(0)
        .max(1000000)
        .default(2000)
        .describe(
          "Records held out for validation, chosen by a seeded shuffle. Capped at a fifth of the dataset on small data; 0 disables validation.",
        ),
      cutoffLen: z
        .number()
        .int()
        .min(32)
        .max(131072)
        .default(512)
        .describe(
          "Maximum tokens per example (prompt + response + EOS); longer examples are truncated on the right.",
        ),
      trainOnInputs: z
        .boolean()
        .default(false)
        .describe(
          "Also compute the loss on prompt tokens. Off by default: training on the prompt teaches the model to repeat it.",
        ),
      groupByLength: z
        .boolean()
        .default(false)
        .describe(
          "Batch examples of similar length together. Faster, but gives an oscillating loss and often a worse model; off by default.",
        ),
      addEos: z
        .boolean()
        .default(true)
        .describe(
          "Append the tokenizer's EOS to every example (when it fits) so the model learns to stop.",
        ),
    })
    .strict(),
  {
    description: "The instruction dataset and how it becomes training examples.",
    immutable: true,
    rules: [
      {
        cel: "self.promptTemplate != 'custom' || has(self.customTemplatePath)",
        message: "customTemplatePath is required when promptTemplate is custom",
        field: ["customTemplatePath"],
        holds: (d) => d.promptTemplate !== "custom" || d.customTemplatePath !== undefined,
      },
      {
        cel: "self.promptTemplate == 'custom' || !has(self.customTemplatePath)",
        message: "customTemplatePath is only used when promptTemplate is custom",
        field: ["customTemplatePath"],
        holds: (d) => d.promptTemplate === "custom" || d.customTemplatePath === undefined,
      },
    ],
  },
);

// ---------------------------------------------------------------------------
// spec.lora
// ---------------------------------------------------------------------------

export const TARGET_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;

const LoraSchema = z
  .object({
    r: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(16)
      .describe("LoRA rank: the inner dimension of A [r, in] and B [out, r]."),
    alpha: z
      .number()
      .gt(0)
      .max(100000)
      .default(16)
      .describe("LoRA alpha: the update is scaled by alpha/r (alpha/sqrt(r) with useRslora)."),
    dropout: z
      .number()
      .min(0)
      .lt(1)
      .default(0.05)
      .describe("Dropout probability on the LoRA input, in [0, 1)."),
    targetModules: z
      .array(z.enum(TARGET_MODULES).describe("A Llama linear layer name."))
      .min(1)
      .max(TARGET_MODULES.length)
      .default(["q_proj", "k_proj", "v_proj", "o_proj"])
      .describe(
        "Linear layers that get a LoRA adapter, any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.",
      ),
    useRslora: z
      .boolean()
      .default(false)
      .describe("Rank-stabilized LoRA: scale by alpha/sqrt(r) instead of alpha/r."),
  })
  .strict();

const LoraWithRules = annotate(LoraSchema, {
  description: "The LoRA adapter: rank, scaling, dropout and which layers it adapts.",
  immutable: true,
  rules: [
    {
      cel: "self.targetModules.all(m, self.targetModules.exists_one(n, n == m))",
      message: "targetModules must not repeat a module",
      field: ["targetModules"],
      holds: (l) => new Set(l.targetModules).size === l.targetModules.length,
    },
  ],
});

// ---------------------------------------------------------------------------
// spec.training
// ---------------------------------------------------------------------------

export const PRECISIONS = ["auto", "fp32", "fp16", "bf16"] as const;
export const QUANTIZATIONS = ["none", "int8", "nf4"] as const;

const TrainingSchema = annotate(
  z
    .object({
      epochs: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(3)
        .describe("Passes over the training split."),
      maxSteps: z
        .number()
        .int()
        .min(0)
        .max(10000000)
        .default(0)
        .describe("Stop after this many optimizer steps; 0 derives the count from epochs."),
      learningRate: z
        .number()
        .gt(0)
        .max(1)
        .default(0.0003)
        .describe("Peak learning rate of AdamW, reached after warmupSteps."),
      batchSize: z
        .number()
        .int()
        .min(1)
        .max(65536)
        .default(128)
        .describe("Examples per optimizer step (gradients are accumulated over micro-batches)."),
      microBatchSize: z
        .number()
        .int()
        .min(1)
        .max(4096)
        .default(4)
        .describe("Examples per forward/backward pass; must divide batchSize."),
      warmupSteps: z
        .number()
        .int()
        .min(0)
        .max(1000000)
        .default(100)
        .describe("Steps of linear warmup from 0 to learningRate."),
      scheduler: z
        .enum(["linear", "cosine", "constant"])
        .default("linear")
        .describe("Learning-rate schedule after warmup: linear or cosine decay to 0, or constant."),
      weightDecay: z.number().min(0).max(1).default(0).describe("AdamW decoupled weight decay."),
      maxGradNorm: z
        .number()
        .min(0)
        .max(1000)
        .default(1)
        .describe("Clip the global gradient norm to this value; 0 disables clipping."),
      precision: z
        .enum(PRECISIONS)
        .default("auto")
        .describe(
          "Compute precision: fp32, fp16 (dynamic loss scaling; V100), bf16 (compute capability >= 8.0 only), or auto (bf16 where supported, else fp16 on GPU, fp32 on CPU).",
        ),
      quantization: z
        .enum(QUANTIZATIONS)
        .default("none")
        .describe("Storage of the frozen base weights: none, int8 or nf4 (GPU only)."),
      gradientCheckpointing: z
        .boolean()
        .default(false)
        .describe(
          "Recompute activations in the backward pass: less memory, about a third more compute.",
        ),
      logSteps: z
        .number()
        .int()
        .min(1)
        .max(100000)
        .default(1)
        .describe("Report training progress every N steps."),
      evalSteps: z
        .number()
        .int()
        .min(0)
        .max(1000000)
        .default(200)
        .describe("Compute the validation loss every N steps; 0 only at the start and the end."),
      saveSteps: z
        .number()
        .int()
        .min(1)
        .max(1000000)
        .default(200)
        .describe("Save a checkpoint every N steps."),
      saveTotalLimit: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(3)
        .describe("Checkpoints to keep; older ones are deleted."),
      seed: z
        .number()
        .int()
        .min(0)
        .max(4294967295)
        .default(42)
        .describe("Seed of the LoRA initialisation, dropout, validation split and shuffles."),
    })
    .strict(),
  {
    description: "Optimisation: epochs, AdamW, batch sizes, schedule, precision and intervals.",
    immutable: true,
    rules: [
      {
        cel: "self.batchSize % self.microBatchSize == 0",
        message: "microBatchSize must divide batchSize",
        field: ["microBatchSize"],
        holds: (t) => t.batchSize % t.microBatchSize === 0,
      },
    ],
  },
);

// ---------------------------------------------------------------------------
// spec.checkpointSelection, spec.evaluation
// ---------------------------------------------------------------------------

export const CHECKPOINT_POLICIES = [
  "lowestTrainLoss",
  "last",
  "lowestEvalLoss",
  "bestEvalScore",
] as const;

export const EVAL_METRICS = ["evalLoss", "exactMatch", "rougeL", "promptRepetition"] as const;

const EvaluationSchema = annotate(
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          "Generate answers for held-out prompts with the base and the fine-tuned model and score them.",
        ),
      samples: z
        .number()
        .int()
        .min(1)
        .max(10000)
        .default(50)
        .describe("Held-out prompts to generate for."),
      maxNewTokens: z
        .number()
        .int()
        .min(1)
        .max(4096)
        .default(128)
        .describe("Tokens generated per answer."),
      temperature: z
        .number()
        .min(0)
        .max(2)
        .default(0)
        .describe("Sampling temperature; 0 is greedy decoding."),
      metrics: z
        .array(z.enum(EVAL_METRICS).describe("A metric name."))
        .min(1)
        .max(EVAL_METRICS.length)
        .default([...EVAL_METRICS])
        .describe("Metrics to report: evalLoss, exactMatch, rougeL, promptRepetition."),
      scoreMetric: z
        .enum(["exactMatch", "rougeL"])
        .default("rougeL")
        .describe("Metric that checkpointSelection bestEvalScore maximises."),
    })
    .strict(),
  {
    description: "Generation-based evaluation of the result, compared with the base model.",
    immutable: true,
  },
);

// ---------------------------------------------------------------------------
// spec.resources
// ---------------------------------------------------------------------------

/** A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
const QUALIFIED_NAME =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/** A prefix over 253 characters (a regex, not indexOf: CRDs must apply on Kubernetes 1.29). */
const LONG_PREFIX = "^[^/]{254,}/";
const longPrefix = new RegExp(LONG_PREFIX);
const LABEL_VALUE = "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";
const qualifiedName = new RegExp(QUALIFIED_NAME);
const labelValue = new RegExp(LABEL_VALUE);

// The API server's own toleration checks (ValidateTolerations), so that a toleration it
// would refuse in the Job is refused here, at admission, instead.
const TolerationSchema = annotate(
  z
    .object({
      key: z
        .string()
        .max(316)
        .optional()
        .describe(
          "Taint key the toleration applies to (required: an empty key would match every taint).",
        ),
      operator: z
        .enum(["Exists", "Equal"])
        .default("Equal")
        .describe("Exists matches any value; Equal matches value."),
      value: z.string().max(63).optional().describe("Taint value to match with operator Equal."),
      effect: z
        .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
        .optional()
        .describe("Taint effect to match; empty matches all effects."),
      tolerationSeconds: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe("With NoExecute: how long the pod stays bound after the taint appears."),
    })
    .strict(),
  {
    description: "A Kubernetes toleration for GPU node taints.",
    rules: [
      {
        cel: `!has(self.key) || self.key == '' || (self.key.matches('${QUALIFIED_NAME}') && !self.key.matches('${LONG_PREFIX}'))`,
        message:
          "must be a label key: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        field: ["key"],
        holds: (t) =>
          t.key === undefined ||
          t.key === "" ||
          (qualifiedName.test(t.key) && !longPrefix.test(t.key)),
      },
      {
        cel: "(has(self.key) && self.key != '') || self.operator == 'Exists'",
        message: "a toleration without a key must have operator Exists",
        field: ["operator"],
        holds: (t) => (t.key !== undefined && t.key !== "") || t.operator === "Exists",
      },
      {
        cel: "self.operator != 'Exists' || !has(self.value) || self.value == ''",
        message: "must be empty when operator is Exists",
        field: ["value"],
        holds: (t) => t.operator !== "Exists" || t.value === undefined || t.value === "",
      },
      {
        cel: `!has(self.value) || self.value.matches('${LABEL_VALUE}')`,
        message:
          "must be a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        field: ["value"],
        holds: (t) => t.value === undefined || labelValue.test(t.value),
      },
      {
        cel: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        message: "tolerationSeconds needs effect NoExecute",
        field: ["tolerationSeconds"],
        holds: (t) => t.tolerationSeconds === undefined || t.effect === "NoExecute",
      },
    ],
  },
);

/**
 * A toleration without a key and with operator Exists tolerates every taint (control-plane,
 * dedicated pools, nodes being drained): refused at admission, whatever the admin policy.
 */
const TOLERATION_NEEDS_KEY = {
  cel: "self.all(t, has(t.key) && t.key != '')",
  message:
    "every toleration needs a key: a toleration without one tolerates every taint on every node",
  holds: (ts: readonly { key?: string | undefined }[]) =>
    ts.every((t) => t.key !== undefined && t.key !== ""),
};

const quantity = (description: string) =>
  z
    .string()
    .max(64)
    .regex(/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/)
    .describe(description);

const ResourcesSchema = annotate(
  z
    .object({
      gpus: z
        .number()
        .int()
        .min(0)
        .max(16)
        .default(1)
        .describe("nvidia.com/gpu devices for the training pod; 0 runs on CPU."),
      gpuProduct: z
        .string()
        .max(128)
        .regex(/^[A-Za-z0-9][-A-Za-z0-9_.]*$/)
        .optional()
        .describe(
          "Required value of the node label nvidia.com/gpu.product, e.g. Tesla-V100-SXM2-32GB or NVIDIA-A100-SXM4-80GB. Used for scheduling, precision checks and the memory estimate.",
        ),
      cpu: quantity("CPU request of the training pod, e.g. 8.").optional(),
      memory: quantity("Memory request and limit of the training pod, e.g. 64Gi.").optional(),
      sharedMemory: quantity("Size of the /dev/shm memory volume, e.g. 8Gi.").default("1Gi"),
      nodeSelector: z
        .record(z.string().max(316), z.string().max(63))
        .optional()
        .describe("Node labels the training pod must match.")
        .meta({ description: "Node labels the training pod must match.", maxProperties: 64 }),
      tolerations: annotate(z.array(TolerationSchema).max(32), {
        description:
          "Tolerations of the training pod. Each names a taint key; the operator also checks the keys against the admin's policy (allowedTolerationKeys).",
        rules: [TOLERATION_NEEDS_KEY],
      }).optional(),
      terminationGracePeriodSeconds: z
        .number()
        .int()
        .min(10)
        .max(3600)
        .optional()
        .describe(
          "Seconds the trainer gets after SIGTERM (preemption, eviction, suspend) to finish its micro-batch and write a checkpoint before it is killed. Default: the operator's setting (chart value trainer.terminationGracePeriodSeconds, 120).",
        ),
      affinity: z.record(z.string(), z.unknown()).optional().meta({
        description: "A Kubernetes affinity object for the training pod, passed through unchanged.",
        "x-kubernetes-preserve-unknown-fields": true,
      }),
    })
    .strict(),
  {
    description: "Compute for the training Job: GPUs, GPU product and pod placement.",
    immutable: true,
  },
);

// ---------------------------------------------------------------------------
// spec.output
// ---------------------------------------------------------------------------

const OutputSchema = annotate(
  z
    .object({
      pvc: pvcSource("the run directory (checkpoints, adapter, metrics, eval.json)").optional(),
      uri: uri(
        "an S3 prefix (s3://bucket/prefix) the result is uploaded under: adapter, eval.json, the selected checkpoint, then loraforge-complete.json last",
      ).optional(),
      secretName: secretName("the s3 uri").optional(),
    })
    .strict(),
  {
    description:
      "Where the run writes checkpoints, the selected adapter, metrics and eval.json: exactly one of pvc or uri. Each run writes into its own folder <path or prefix>/<run name>-<uid>.",
    immutable: true,
    rules: [
      exactlyOne(["pvc", "uri"]),
      secretOnlyWith(["uri"]),
      {
        cel: "!has(self.uri) || self.uri.startsWith('s3://')",
        message:
          "an output uri must be s3://bucket/prefix (https and hf outputs cannot be written)",
        field: ["uri"],
        holds: (o) => o.uri === undefined || o.uri.startsWith("s3://"),
      },
    ],
  },
);

// ---------------------------------------------------------------------------
// spec
// ---------------------------------------------------------------------------

export const LoraFineTuneSpecSchema = annotate(
  z
    .object({
      baseModel: BaseModelSchema,
      dataset: DatasetSchema,
      lora: LoraWithRules.default(LoraWithRules.parse({})),
      training: TrainingSchema.default(TrainingSchema.parse({})),
      checkpointSelection: annotate(z.enum(CHECKPOINT_POLICIES), {
        description:
          "Which checkpoint becomes the result: lowestTrainLoss (default), last, lowestEvalLoss, or bestEvalScore (needs evaluation). The lowest eval loss is often not the best model.",
        immutable: true,
      }).default("lowestTrainLoss"),
      evaluation: EvaluationSchema.default(EvaluationSchema.parse({})),
      resources: ResourcesSchema.default(ResourcesSchema.parse({})),
      queueName: annotate(
        z
          .string()
          .min(1)
          .max(63)
          .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
        {
          description:
            "Kueue LocalQueue to submit the Job to (sets the kueue.x-k8s.io/queue-name label).",
          immutable: true,
        },
      ).optional(),
      priorityClass: annotate(
        z
          .string()
          .min(1)
          .max(253)
          .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/),
        {
          description:
            "Kueue WorkloadPriorityClass of the run (sets the kueue.x-k8s.io/priority-class label): decides the order in the queue and which runs Kueue may preempt. Needs queueName.",
          immutable: true,
        },
      ).optional(),
      output: OutputSchema,
      suspend: z
        .boolean()
        .default(false)
        .describe(
          "Suspend the run (the Job is suspended; it resumes from the latest checkpoint). The only field that may change after creation.",
        ),
    })
    .strict(),
  {
    description: "Desired fine-tuning run. Immutable after creation except suspend.",
    rules: [
      {
        cel: `!(self.training.precision == 'bf16' && has(self.resources.gpuProduct) && self.resources.gpuProduct.matches('(?i)${NO_BF16_PRODUCT_PATTERN}'))`,
        message:
          "bf16 needs compute capability >= 8.0; this GPU product has none: use fp16 (with loss scaling) or fp32",
        field: ["training", "precision"],
        holds: (s) =>
          !(
            s.training.precision === "bf16" &&
            s.resources.gpuProduct !== undefined &&
            productLacksBf16(s.resources.gpuProduct)
          ),
      },
      {
        cel: "self.training.quantization == 'none' || self.resources.gpus > 0",
        message: "int8 and nf4 quantization need a GPU (resources.gpus > 0)",
        field: ["training", "quantization"],
        holds: (s) => s.training.quantization === "none" || s.resources.gpus > 0,
      },
      {
        cel: "self.training.precision != 'bf16' && self.training.precision != 'fp16' || self.resources.gpus > 0",
        message: "fp16 and bf16 training need a GPU (resources.gpus > 0); use fp32 or auto on CPU",
        field: ["training", "precision"],
        holds: (s) =>
          (s.training.precision !== "bf16" && s.training.precision !== "fp16") ||
          s.resources.gpus > 0,
      },
      {
        cel: "self.checkpointSelection != 'bestEvalScore' || self.evaluation.enabled",
        message: "checkpointSelection bestEvalScore needs evaluation.enabled",
        field: ["checkpointSelection"],
        holds: (s) => s.checkpointSelection !== "bestEvalScore" || s.evaluation.enabled,
      },
      {
        cel: "!has(self.priorityClass) || has(self.queueName)",
        message: "priorityClass is a Kueue WorkloadPriorityClass: it needs queueName",
        field: ["priorityClass"],
        holds: (s) => s.priorityClass === undefined || s.queueName !== undefined,
      },
      {
        cel: "has(oldSelf.queueName) == has(self.queueName)",
        message: `queueName ${"is immutable once the run is created; create a new LoraFineTune"}`,
        field: ["queueName"],
        // A transition rule: zod sees one object only; validateSpecUpdate checks it.
        holds: () => true,
      },
    ],
  },
);

export type LoraFineTuneSpec = z.output<typeof LoraFineTuneSpecSchema>;
export type LoraFineTuneSpecInput = z.input<typeof LoraFineTuneSpecSchema>;
