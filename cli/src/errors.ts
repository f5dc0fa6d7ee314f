/**
 * The cli's one error type. Every error the cli throws on purpose extends CliError and carries
 * its exit code (docs/CONTRACTS.md §2, TRAINER_EXIT_CODES in @loraforge/crds); errors that list
 * problems (dataset, template, tokenizer) carry them too. classifyError turns any thrown value
 * into the exit code and the one-paragraph message that `loraforge <command>` prints and that
 * `loraforge job` exits with and writes to /dev/termination-log.
 *
 * This module imports nothing of the cli's own, so any module may import it.
 */
import { InvalidLoraFineTuneError, TRAINER_EXIT_CODES } from "@loraforge/crds";

export type ExitKind = keyof typeof TRAINER_EXIT_CODES;

/** The name of an exit code in TRAINER_EXIT_CODES ("invalidInput" for 3), "internal" if none. */
export function exitKind(code: number): ExitKind {
  const entry = Object.entries(TRAINER_EXIT_CODES).find(([, c]) => c === code);
  return entry ? (entry[0] as ExitKind) : "internal";
}

export type Severity = "error" | "warning";

/**
 * A problem found in a dataset (or a template, or a tokenizer), located as precisely as we can:
 * the file, the 1-based line, the 0-based record index (as in the JSON array), and the field.
 */
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

/** An error of the cli with its exit code; `kind` is the code's name in TRAINER_EXIT_CODES. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = TRAINER_EXIT_CODES.invalidInput,
  ) {
    super(message);
    this.name = new.target.name;
  }

  get kind(): ExitKind {
    return exitKind(this.exitCode);
  }
}

/** Bad command-line usage (exit 2); `command` names the command whose help to point at. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message, TRAINER_EXIT_CODES.usage);
  }
}

/** Invalid input that comes with every problem found (exit 3). */
export class ProblemsError extends CliError {
  constructor(
    message: string,
    readonly problems: Problem[],
  ) {
    super(message, TRAINER_EXIT_CODES.invalidInput);
  }
}

export interface Classified {
  code: number;
  message: string;
  problems?: Problem[];
}

/**
 * The exit code (contract §2) and a one-paragraph message for an error thrown by a command or by
 * runTraining. Structural: a CliError says its own code; anything else unexpected is a bug (1).
 */
export function classifyError(e: unknown): Classified {
  if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))
    return { code: TRAINER_EXIT_CODES.usage, message: e.message };
  if (e instanceof ProblemsError) {
    const errors = e.problems.filter((p) => p.severity === "error");
    const first = errors[0] ?? e.problems[0];
    const more = errors.length - 1;
    return {
      code: e.exitCode,
      message: `${first ? formatProblem(first) : e.message}${more > 0 ? ` (and ${more} more errors)` : ""}`,
      problems: e.problems,
    };
  }
  if (e instanceof CliError) return { code: e.exitCode, message: e.message };
  // the spec's own validation error comes from @loraforge/crds, which knows nothing of the cli
  if (e instanceof InvalidLoraFineTuneError)
    return { code: TRAINER_EXIT_CODES.invalidInput, message: e.message };
  // file system errors (ENOENT, EACCES, ...) carry the path in their message
  if (e instanceof Error && "code" in e && typeof e.code === "string" && "path" in e)
    return { code: TRAINER_EXIT_CODES.invalidInput, message: e.message };
  return {
    code: TRAINER_EXIT_CODES.internal,
    message: `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
  };
}
