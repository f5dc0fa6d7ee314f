/**
 * Dataset validation as a library (used by the CLI and the GitHub Action): no printing, no exit.
 */
export { DEFAULT_MAX_RECORD_BYTES, type DatasetFormat, type ParsedDataset, type ParseOptions, parseDataset } from "./parse.ts";
export { DatasetError, formatProblem, hasErrors, type Problem, type Severity } from "./problems.ts";
export { AlpacaRecordSchema, type DatasetRecord } from "./record.ts";
export { effectiveValSize, seededRandom, shuffledIndices, splitTrainVal } from "./split.ts";
export {
  type DatasetStats,
  type Summary,
  summarize,
  type ValidateOptions,
  type ValidationReport,
  validateBytes,
  validateFile,
} from "./validate.ts";

/** The brief's name for it: validate(path, options) → report with structured problems. */
export { validateFile as validate } from "./validate.ts";
