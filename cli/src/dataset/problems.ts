/**
 * A problem found in a dataset (or a template, or a tokenizer), located as precisely as we can:
 * the file, the 1-based line, the 0-based record index (as in the JSON array), and the field.
 */
export type Severity = "error" | "warning";

export interface Problem {
  file: string;
  line?: number;
  record?: number;
  field?: string;
  message: string;
  severity: Severity;
}

/** "data.jsonl:14: record 13, field output: must be a string" */
export function formatProblem(p: Problem): string {
  const where = [p.line !== undefined ? `${p.file}:${p.line}` : p.file];
  const what: string[] = [];
  if (p.record !== undefined) what.push(`record ${p.record}`);
  if (p.field !== undefined) what.push(`field ${p.field}`);
  const prefix = what.length > 0 ? `${where[0]}: ${what.join(", ")}: ` : `${where[0]}: `;
  return `${p.severity}: ${prefix}${p.message}`;
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

/** Thrown by readers that cannot go on; carries every problem found so far. */
export class DatasetError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    const first = problems.find((p) => p.severity === "error") ?? problems[0];
    super(first ? formatProblem(first) : "invalid dataset");
    this.name = "DatasetError";
    this.problems = problems;
  }
}
