/** @loraforge/cli as a library: the pieces `loraforge job` and the Action reuse. */
export { main } from "./main.ts";
export { runTraining, type RunSummary, type RunTrainingOptions, RunSetupError } from "./train/run.ts";
export { type LocalPaths, resolveLocalPaths, LocalRunError } from "./train/resolve.ts";
export { type Backend, buildRunJson, type RunJson } from "./train/runConfig.ts";
export { type CoreEvent, CoreEventSchema, EXIT } from "./train/events.ts";
export { findCore } from "./train/core.ts";
export { readHistory, historyOf, type History } from "./train/metrics.ts";
export { prepareDataset, type PrepareOptions, type PrepareResult, type DataManifest } from "./prepare/prepare.ts";
export { loadModelTokenizer, type ModelTokenizer, TokenizerError } from "./tokenizer/tokenizer.ts";
export { importLlama2c } from "./llama2c/import.ts";
export { printSummary } from "./commands/train.ts";
export { ProgressView } from "./commands/progress.ts";
