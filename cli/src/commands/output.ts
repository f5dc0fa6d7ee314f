/** Printing for people: problems, numbers, durations. Only command modules use it. */
import { formatProblem, type Problem } from "../dataset/problems.ts";

export interface Out {
  info(line: string): void;
  error(line: string): void;
}

export const consoleOut: Out = {
  info: (line) => process.stdout.write(`${line}\n`),
  error: (line) => process.stderr.write(`${line}\n`),
};

export function printProblems(out: Out, problems: readonly Problem[], limit = 50): void {
  const errors = problems.filter((p) => p.severity === "error");
  const warnings = problems.filter((p) => p.severity === "warning");
  const shown = [...errors, ...warnings].slice(0, limit);
  for (const p of shown) (p.severity === "error" ? out.error : out.info)(formatProblem(p));
  if (problems.length > shown.length) out.info(`... and ${problems.length - shown.length} more`);
}

export const fmtNum = (n: number | null | undefined, digits = 4) =>
  n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits);

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`
    : `${m}:${String(r).padStart(2, "0")}`;
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

// UsageError lives with the cli's error type; the commands import it from here as before.
export { UsageError } from "../errors.ts";
