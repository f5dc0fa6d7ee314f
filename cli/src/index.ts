/** @loraforge/cli as a library: the pieces `loraforge job` and the Action reuse. */

export { ProgressView } from "./commands/progress.ts";
export { printSummary } from "./commands/train.ts";
export { cliPipeline } from "./inpod/cliPipeline.ts";
export { StatusReporter } from "./inpod/reporter.ts";
export { importLlama2c } from "./llama2c/import.ts";
export { classifyError, main } from "./main.ts";
export {
  type DataManifest,
  type PrepareOptions,
  type PrepareResult,
  prepareDataset,
} from "./prepare/prepare.ts";
export { loadModelTokenizer, type ModelTokenizer, TokenizerError } from "./tokenizer/tokenizer.ts";
export { findCore } from "./train/core.ts";
export { type CoreEvent, CoreEventSchema, EXIT } from "./train/events.ts";
export { type History, historyOf, readHistory } from "./train/metrics.ts";
export { type LocalPaths, LocalRunError, resolveLocalPaths } from "./train/resolve.ts";
export {
  RunSetupError,
  type RunSummary,
  type RunTrainingOptions,
  runTraining,
} from "./train/run.ts";
export { type Backend, buildRunJson, type RunJson } from "./train/runConfig.ts";
