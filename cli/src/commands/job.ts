/**
 * `loraforge job`'s declaration: flags, help and completion. The entrypoint itself lives in
 * src/inpod/; main checks the flags here before handing it the command line.
 */
import { defineCommand, flag } from "../args/flags.ts";

export const jobCli = defineCommand({
  name: "job",
  summary: {
    usage: "job --spec FILE",
    text: "the trainer Job's entrypoint inside Kubernetes (set up by the operator)",
  },
  usage: "loraforge job --spec FILE",
  description: `The entrypoint of the training Job that the operator creates; not meant to be typed by hand.
Reads the LoraFineTune mounted at FILE, runs the same pipeline as \`loraforge train\` on the
Job's volumes, and reports progress, checkpoints, the adapter and the evaluation summary into
the resource's status through the run's own ServiceAccount (at most every 10 s; API errors never
stop training). The exit code follows docs/CONTRACTS.md; the last error also goes to the
termination log, where the operator reads the failure reason.`,
  flags: {
    spec: flag.string("FILE", "the LoraFineTune manifest mounted into the pod", "file"),
  },
  epilogue: `Environment (set by the operator):
  LORAFORGE_OUTPUT_DIR         run directory on the output volume (required)
  LORAFORGE_MODEL_DIR          base model directory on the model volume
  LORAFORGE_DATASET_PATH       dataset file on the dataset volume
  LORAFORGE_RUN_NAMESPACE      namespace of the LoraFineTune (default: the manifest's)
  LORAFORGE_STATUS_INTERVAL_S  seconds between status patches (default 10)
  LORAFORGE_TERMINATION_LOG    where the failure message goes (default /dev/termination-log)
  LORAFORGE_CPU_TRAINER_SETTING  TEST ONLY: a GPU run trains on the CPU backend; the value names
                               the cluster setting that asked for it (testing.cpuTrainerForGpuRuns)

Example: what the operator's Job runs
  loraforge job --spec /etc/loraforge/spec.yaml`,
});
