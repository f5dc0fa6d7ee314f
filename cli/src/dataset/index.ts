/**
 * Dataset validation as a library (used by the CLI and the GitHub Action): no printing, no exit.
 */
export {
  type DatasetFormat,
  DEFAULT_MAX_RECORD_BYTES,
  type ParsedDataset,
  type ParseOptions,
  parseDataset,
} from "./parse.ts";
export { DatasetError, formatProblem, hasErrors, type Problem, type Severity } from "./problems.ts";
export { AlpacaRecordSchema, type DatasetRecord } from "./record.ts";
export { effectiveValSize, seededRandom, shuffledIndices, splitTrainVal } from "./split.ts";
/** The brief's name for it: validate(path, options) → report with structured problems. */
export {
  type DatasetStats,
  type Summary,
  summarize,
  type ValidateOptions,
  type ValidationReport,
  validateBytes,
  validateFile,
  validateFile as validate,
} from "./validate.ts";
