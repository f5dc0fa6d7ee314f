// `loraforge job --spec FILE`: the trainer Job's entrypoint. Reads the LoraFineTune the
// operator mounted, runs the training pipeline, and reports progress, checkpoints, the
// adapter and the evaluation summary into the resource's status through the per-run
// ServiceAccount. Exits with the pipeline's documented exit code; the reason goes to the
// termination log, where the operator reads it.

import { writeFileSync } from "node:fs";
import { readLoraFineTuneFile, TRAINER_EXIT_CODES } from "@loraforge/crds";
import type { KubeClient } from "@loraforge/kube";
import { z } from "zod";
import { stopReason } from "../train/core.ts";
import { TrainingFailure, type TrainingPipeline } from "./pipeline.ts";
import { StatusReporter } from "./reporter.ts";
import { inClusterKube, patchStatus, readCheckpoints } from "./runStatus.ts";

export { type ReportedEvent, ReportedEventSchema } from "../train/events.ts";
export {
  TrainingFailure,
  type TrainingPipeline,
  type TrainingResult,
  type TrainingRun,
} from "./pipeline.ts";
export { StatusReporter } from "./reporter.ts";
export { inClusterKube, patchStatus, readCheckpoints } from "./runStatus.ts";

const EnvSchema = z.object({
  LORAFORGE_RUN_NAMESPACE: z.string().min(1).optional(),
  LORAFORGE_MODEL_DIR: z.string().min(1).optional(),
  LORAFORGE_DATASET_PATH: z.string().min(1).optional(),
  LORAFORGE_OUTPUT_DIR: z.string().min(1, "is required (the operator sets it)"),
  LORAFORGE_STATUS_INTERVAL_S: z.string().regex(/^\d+$/).transform(Number).optional(),
  LORAFORGE_TERMINATION_LOG: z.string().default("/dev/termination-log"),
});

export interface JobDeps {
  pipeline: TrainingPipeline;
  env?: NodeJS.ProcessEnv;
  /** Where status goes; the in-cluster API server as the pod's ServiceAccount by default. */
  kube?: KubeClient;
  log?: (line: string) => void;
}

export function parseJobArgs(argv: readonly string[]): { spec: string } {
  const i = argv.indexOf("--spec");
  const spec = i >= 0 ? argv[i + 1] : undefined;
  if (!spec)
    throw new TrainingFailure("usage: loraforge job --spec FILE", TRAINER_EXIT_CODES.usage);
  return { spec };
}

/** Runs the job; resolves with the process exit code (never throws). */
export async function runJob(argv: readonly string[], deps: JobDeps): Promise<number> {
  const log = deps.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = deps.env ?? process.env;
  let terminationLog = "/dev/termination-log";
  let reporter: StatusReporter | undefined;
  const controller = new AbortController();
  const onTerm = () => controller.abort(stopReason("SIGTERM"));
  process.once("SIGTERM", onTerm);
  try {
    const { spec } = parseJobArgs(argv);
    const e = EnvSchema.safeParse(env);
    if (!e.success) {
      const first = e.error.issues[0];
      throw new TrainingFailure(
        `environment: ${first?.path.join(".")}: ${first?.message}`,
        TRAINER_EXIT_CODES.usage,
      );
    }
    terminationLog = e.data.LORAFORGE_TERMINATION_LOG;
    let lft: ReturnType<typeof readLoraFineTuneFile>;
    try {
      lft = readLoraFineTuneFile(spec);
    } catch (error) {
      throw new TrainingFailure((error as Error).message, TRAINER_EXIT_CODES.invalidInput);
    }
    const name = lft.metadata.name;
    const namespace = e.data.LORAFORGE_RUN_NAMESPACE ?? lft.metadata.namespace;
    if (!namespace)
      throw new TrainingFailure(
        `${spec}: metadata.namespace is missing`,
        TRAINER_EXIT_CODES.invalidInput,
      );
    const kube = deps.kube ?? inClusterKube(env);
    reporter = new StatusReporter({
      send: (status) => patchStatus(kube, namespace, name, status),
      // A retried pod keeps what the earlier attempts reported (merged by step).
      load: () => readCheckpoints(kube, namespace, name),
      intervalMs: (e.data.LORAFORGE_STATUS_INTERVAL_S ?? 10) * 1000,
      log,
    });
    const r = reporter;
    log(`loraforge job: training ${namespace}/${name}`);
    const result = await deps.pipeline({
      lft,
      modelDir: e.data.LORAFORGE_MODEL_DIR,
      datasetPath: e.data.LORAFORGE_DATASET_PATH,
      outputDir: e.data.LORAFORGE_OUTPUT_DIR,
      env,
      onEvent: (ev) => r.onEvent(ev),
      signal: controller.signal,
    });
    reporter.setResult(result);
    const reported = await reporter.close();
    if (!reported)
      log(
        "loraforge job: the final status could not be written (the result is in the output location)",
      );
    return 0;
  } catch (error) {
    const code = error instanceof TrainingFailure ? error.exitCode : TRAINER_EXIT_CODES.internal;
    const message = error instanceof Error ? error.message : String(error);
    log(`loraforge job: ${message}`);
    try {
      writeFileSync(terminationLog, message.slice(0, 4000));
    } catch {
      // not in a pod: stderr has it
    }
    if (reporter) await reporter.close(1, 500);
    return code;
  } finally {
    process.off("SIGTERM", onTerm);
  }
}
