/**
 * Problems found in a dataset (or a template, or a tokenizer). The Problem type and its
 * formatting live with the cli's error type (../errors.ts); they are re-exported here.
 */
import { formatProblem, type Problem, ProblemsError } from "../errors.ts";

export { formatProblem, type Problem, type Severity } from "../errors.ts";

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

/** Thrown by readers that cannot go on; carries every problem found so far. */
export class DatasetError extends ProblemsError {
  constructor(problems: Problem[]) {
    const first = problems.find((p) => p.severity === "error") ?? problems[0];
    super(first ? formatProblem(first) : "invalid dataset", problems);
    this.name = "DatasetError";
  }
}
