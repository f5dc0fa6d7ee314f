// The seam between `loraforge job` and the cli's training pipeline (the same one
// `loraforge train` runs): one function that trains from a parsed spec and reports the
// native core's events as they happen.

import type { LoraFineTune, LoraFineTuneStatus } from "@loraforge/crds";
import { CliError } from "../errors.ts";
import type { ReportedEvent } from "../train/events.ts";

export interface TrainingRun {
  lft: LoraFineTune;
  /** Local locations prepared by the Job (PVC mounts, an image's copy); undefined for URI/git sources. */
  modelDir: string | undefined;
  datasetPath: string | undefined;
  outputDir: string;
  /** The pod's environment: where sources are fetched to, the mounted credentials, limits. */
  env?: NodeJS.ProcessEnv;
  onEvent: (event: ReportedEvent) => void;
  /** Aborted on SIGTERM: the pipeline saves a checkpoint and stops (exit 130). */
  signal: AbortSignal;
}

export type TrainingResult = Pick<
  LoraFineTuneStatus,
  "adapter" | "selectedCheckpoint" | "evaluation"
>;

export type TrainingPipeline = (run: TrainingRun) => Promise<TrainingResult>;

/** A failure with the exit code of docs/CONTRACTS.md (3 invalid input, 4 NaN, ...). */
export class TrainingFailure extends CliError {
  override name = "TrainingFailure";
}
