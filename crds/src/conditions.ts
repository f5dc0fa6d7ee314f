/**
 * The status vocabulary: phases, condition types and reasons. The operator, the
 * in-Job entrypoint and the Action use these constants; nothing else invents strings.
 */

export const PHASES = [
  "Pending",
  "Queued",
  "Running",
  "Evaluating",
  "Succeeded",
  "Failed",
  "Suspended",
] as const;
export type Phase = (typeof PHASES)[number];

/** Condition types. Few on purpose: each answers one question a user asks. */
export const ConditionType = {
  /** Is the spec acceptable for this cluster (precision, memory fit, sources)? */
  Validated: "Validated",
  /** Has the workload been admitted (created, and not held by Kueue or suspend)? */
  Admitted: "Admitted",
  /** Is training or evaluation in progress? */
  Progressing: "Progressing",
  /** Did the run finish with an adapter? */
  Succeeded: "Succeeded",
  /** Did the run fail for good? */
  Failed: "Failed",
  /** Is the run suspended by spec.suspend? */
  Suspended: "Suspended",
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

export const Reason = {
  // Validated
  SpecValid: "SpecValid",
  InvalidSpec: "InvalidSpec",
  PrecisionUnsupported: "PrecisionUnsupported",
  InsufficientGPUMemory: "InsufficientGPUMemory",
  QuantizationWarning: "QuantizationWarning",
  /** Placement or image outside the admin's policy (chart value `policy`). */
  PolicyViolation: "PolicyViolation",
  // Admitted
  JobCreated: "JobCreated",
  QueuedByKueue: "QueuedByKueue",
  /** Kueue took the admission back (preemption, eviction): the run waits to be admitted again. */
  EvictedByKueue: "EvictedByKueue",
  /** spec.queueName names no LocalQueue in the run's namespace: Kueue cannot admit it. */
  LocalQueueNotFound: "LocalQueueNotFound",
  PodPending: "PodPending",
  // Progressing
  Training: "Training",
  Evaluating: "Evaluating",
  Resumed: "Resumed",
  // Succeeded
  AdapterReady: "AdapterReady",
  // Failed
  OOMKilled: "OOMKilled",
  InvalidInput: "InvalidInput",
  NaNLoss: "NaNLoss",
  AdapterCheckFailed: "AdapterCheckFailed",
  ImagePullFailed: "ImagePullFailed",
  BackoffLimitExceeded: "BackoffLimitExceeded",
  DeadlineExceeded: "DeadlineExceeded",
  TrainerError: "TrainerError",
  /** An object with a child's name exists and is not controlled by this run: not taken over. */
  ObjectConflict: "ObjectConflict",
  /** The API server refused a child (400/422...): resending the same object cannot succeed. */
  RejectedByAPIServer: "RejectedByAPIServer",
  // Suspended
  SuspendedBySpec: "SuspendedBySpec",
  NotSuspended: "NotSuspended",
} as const;
export type ReasonName = (typeof Reason)[keyof typeof Reason];

/**
 * Every reason a run can fail with (status.failure.reason, the Failed condition's reason):
 * the spec refused before any Job exists, then what the trainer pod or the Job reported.
 * docs/TROUBLESHOOTING.md has a row for each; a test keeps the two in step.
 */
export const FAILURE_REASONS = [
  Reason.InvalidSpec,
  Reason.PrecisionUnsupported,
  Reason.PolicyViolation,
  Reason.InsufficientGPUMemory,
  Reason.ImagePullFailed,
  Reason.OOMKilled,
  Reason.InvalidInput,
  Reason.NaNLoss,
  Reason.AdapterCheckFailed,
  Reason.BackoffLimitExceeded,
  Reason.DeadlineExceeded,
  Reason.TrainerError,
  Reason.ObjectConflict,
  Reason.RejectedByAPIServer,
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * Reasons of a False Validated condition: the spec refused for this cluster (by the operator's
 * checks) before any Job exists. The run fails with the same reason.
 */
export const VALIDATION_FAILURE_REASONS = [
  Reason.InvalidSpec,
  Reason.PrecisionUnsupported,
  Reason.PolicyViolation,
  Reason.InsufficientGPUMemory,
] as const satisfies readonly FailureReason[];
export type ValidationFailureReason = (typeof VALIDATION_FAILURE_REASONS)[number];

/** Reasons of a False Admitted condition when the run's Job cannot be created: the run fails. */
export const JOB_REFUSED_REASONS = [
  Reason.ObjectConflict,
  Reason.RejectedByAPIServer,
] as const satisfies readonly FailureReason[];

/** Exit codes of loraforge-core / loraforge job (docs/CONTRACTS.md) and what they mean for status. */
export const TRAINER_EXIT_CODES = {
  internal: 1,
  usage: 2,
  invalidInput: 3,
  numerics: 4,
  adapterCheck: 5,
  io: 6,
  interrupted: 130,
} as const;

/** Exit codes on which retrying cannot help: the Job's podFailurePolicy fails the Job at once. */
export const NON_RETRYABLE_EXIT_CODES: readonly number[] = [
  TRAINER_EXIT_CODES.usage,
  TRAINER_EXIT_CODES.invalidInput,
  TRAINER_EXIT_CODES.numerics,
  TRAINER_EXIT_CODES.adapterCheck,
];
