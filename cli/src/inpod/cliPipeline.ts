// The real pipeline behind `loraforge job`: the cli's runTraining (the same function
// `loraforge train` runs), on the locations the operator mounted into the Job.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { TRAINER_EXIT_CODES } from "@loraforge/crds";
import { classifyError } from "../errors.ts";
import { CPU_TRAINER_SETTING_ENV, jobBackend, probeBackends } from "../train/backendChoice.ts";
import { findCore } from "../train/core.ts";
import type { LocalPaths } from "../train/resolve.ts";
import { runTraining } from "../train/run.ts";
import { storeOutput } from "./outputs.ts";
import { TrainingFailure, type TrainingPipeline, type TrainingResult } from "./pipeline.ts";
import { parseSourcesEnv, resolveSources } from "./sources/index.ts";

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The cli's own classification (exit code of contract §2 and a one-paragraph message). */
function asFailure(e: unknown): TrainingFailure {
  if (e instanceof TrainingFailure) return e;
  const c = classifyError(e);
  return new TrainingFailure(c.message, c.code);
}

export function cliPipeline(log: (line: string) => void): TrainingPipeline {
  return async (run) => {
    const { spec } = run.lft;
    const env = run.env ?? process.env;
    const sources = await resolveSources(spec, {
      mounted: { modelDir: run.modelDir, datasetPath: run.datasetPath },
      env: parseSourcesEnv(env),
      signal: run.signal,
      log,
    });
    const paths: LocalPaths = {
      modelDir: sources.modelDir,
      datasetFile: sources.datasetFile,
      outDir: run.outputDir,
      baseModelName: sources.baseModelName,
      ...(sources.customTemplateFile ? { customTemplateFile: sources.customTemplateFile } : {}),
    };
    let summary: Awaited<ReturnType<typeof runTraining>>;
    try {
      // a GPU Job trains on the GPU or fails saying why; it never falls back to the CPU (only
      // the cluster's test-only setting, named in the log, switches it there)
      const corePath = findCore();
      const choice = jobBackend(
        spec.resources.gpus,
        probeBackends(corePath),
        env[CPU_TRAINER_SETTING_ENV] || undefined,
      );
      log(choice.reason);
      summary = await runTraining(spec, {
        paths,
        corePath,
        backend: choice.backend,
        signal: run.signal,
        onMessage: log,
        // Parsed once, by runCore (train/events.ts): every event it passes is a reported one.
        onEvent: run.onEvent,
      });
    } catch (e) {
      throw asFailure(e);
    }
    if (summary.status !== "done" || !summary.adapterDir) {
      const why = summary.error?.message ?? `the trainer stopped (${summary.status})`;
      throw new TrainingFailure(why, summary.exitCode || TRAINER_EXIT_CODES.internal);
    }
    const file = join(summary.adapterDir, "adapter_model.safetensors");
    const result: TrainingResult = {
      adapter: {
        path: summary.adapterDir,
        digest: `sha256:${await sha256File(file)}`,
        sizeBytes: (await stat(file)).size,
        // The core checks every adapter it saves (non-empty, finite, changes the logits)
        // and exits 5 otherwise, so a finished run's adapter passed.
        verified: true,
      },
    };
    if (summary.selection) {
      result.selectedCheckpoint = {
        step: summary.selection.step,
        path: summary.selection.dir,
        policy: spec.checkpointSelection,
      };
    }
    // The operator shows phase Evaluating while the pod runs past the last step; the
    // summary of eval.json (metrics named in spec.evaluation.metrics) ends it.
    if (summary.evaluation) {
      const { path, samples, base, tuned, examples } = summary.evaluation;
      result.evaluation = {
        path,
        samples,
        base,
        ...(tuned ? { tuned } : {}),
        // A summary.json written before samples were carried has none.
        ...(examples && examples.length > 0 ? { examples } : {}),
      };
    }
    // A result that cannot be stored fails the run: it never reports Succeeded.
    return storeOutput(run.lft, { outDir: run.outputDir, result }, env, run.signal, log);
  };
}
