// Validation of changed datasets with the same code as `loraforge validate`
// (@loraforge/cli/dataset), reported as file/line annotations and in the job summary.
// The bytes validated are the bytes the run will train on: read through the API at the
// PR's head commit, the same commit the run's git source is pinned to.

import { type Problem, type ValidationReport, validateBytes } from "@loraforge/cli/dataset";
import type { LoraFineTune } from "@loraforge/crds";
import type { GitHubApi } from "./github.ts";
import { codeHtml } from "./markdown.ts";
import type { Reporter } from "./reporter.ts";

/** GitHub shows at most 10 error and 10 warning annotations per step; more only clutter logs. */
export const MAX_ANNOTATIONS_PER_FILE = 50;
const MAX_SUMMARY_PROBLEMS = 100;

export interface DatasetValidation {
  path: string;
  ok: boolean;
  errors: number;
  warnings: number;
  report: ValidationReport;
}

export function describeProblem(p: Problem): string {
  const where: string[] = [];
  if (p.record !== undefined) where.push(`record ${p.record}`);
  if (p.field !== undefined) where.push(`field ${p.field}`);
  return where.length > 0 ? `${where.join(", ")}: ${p.message}` : p.message;
}

export async function validateDatasets(
  github: GitHubApi,
  owner: string,
  repo: string,
  sha: string,
  paths: readonly string[],
  spec: LoraFineTune | undefined,
  reporter: Reporter,
): Promise<DatasetValidation[]> {
  const results: DatasetValidation[] = [];
  for (const path of paths) {
    const bytes = await github.fileAt(owner, repo, path, sha);
    const report = validateBytes(bytes ?? new Uint8Array(), path, {
      format: spec?.spec.dataset.format ?? "auto",
      ...(spec
        ? { split: { valSetSize: spec.spec.dataset.valSetSize, seed: spec.spec.training.seed } }
        : {}),
    });
    if (bytes === undefined) {
      report.ok = false;
      report.problems = [
        { file: path, message: `not found at ${sha.slice(0, 7)}`, severity: "error" },
      ];
    }
    results.push(annotate(report, reporter));
  }
  return results;
}

function annotate(report: ValidationReport, reporter: Reporter): DatasetValidation {
  const errors = report.problems.filter((p) => p.severity === "error");
  const warnings = report.problems.filter((p) => p.severity === "warning");
  let shown = 0;
  for (const p of [...errors, ...warnings]) {
    if (shown++ >= MAX_ANNOTATIONS_PER_FILE) break;
    const where = {
      file: p.file,
      ...(p.line !== undefined ? { line: p.line } : {}),
      title: `LoraForge dataset ${p.severity}`,
    };
    if (p.severity === "error") reporter.error(describeProblem(p), where);
    else reporter.warning(describeProblem(p), where);
  }
  const hidden =
    report.problems.length - Math.min(report.problems.length, MAX_ANNOTATIONS_PER_FILE);
  if (hidden > 0) reporter.info(`${report.file}: ${hidden} more problems (see the job summary)`);
  reporter.info(
    `${report.file}: ${report.ok ? "valid" : "INVALID"} — ${report.stats.records} records, ${errors.length} errors, ${warnings.length} warnings`,
  );
  return {
    path: report.file,
    ok: report.ok,
    errors: errors.length,
    warnings: warnings.length,
    report,
  };
}

/** The validation section of the job summary (and of the comment when a dataset is invalid). */
export function renderValidation(
  results: readonly DatasetValidation[],
  maxProblems = MAX_SUMMARY_PROBLEMS,
): string {
  const lines = [
    "| dataset | result | records | usable | rejected | duplicates | train / val | errors | warnings |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
  ];
  for (const r of results) {
    const s = r.report.stats;
    lines.push(
      `| ${codeHtml(r.path)} | ${r.ok ? "✅ valid" : "❌ invalid"} | ${s.records} | ${s.usable} | ${s.rejected} | ${s.duplicates} | ${s.split ? `${s.split.train} / ${s.split.val}` : "—"} | ${r.errors} | ${r.warnings} |`,
    );
  }
  for (const r of results) {
    if (r.report.problems.length === 0) continue;
    lines.push(
      "",
      `<details${r.ok ? "" : " open"}><summary>Problems in ${codeHtml(r.path)}</summary>`,
      "",
    );
    for (const p of r.report.problems.slice(0, maxProblems)) {
      const at = p.line !== undefined ? `line ${p.line}` : "file";
      // Messages and field names quote the file (a JSON error shows its text): code, inert.
      lines.push(`- **${p.severity}** ${at}: ${codeHtml(describeProblem(p))}`);
    }
    const more = r.report.problems.length - maxProblems;
    if (more > 0) lines.push(`- … and ${more} more`);
    lines.push("", "</details>");
  }
  return lines.join("\n");
}
