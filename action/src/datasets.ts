// Which changed files are datasets: the dataset globs, matched against repository paths.

import { minimatch } from "minimatch";
import type { ChangedFile } from "./github.ts";

export interface ChangedDatasets {
  /** Added, modified, renamed or copied dataset files, in the order GitHub listed them. */
  changed: string[];
  /** Dataset files the change deletes (nothing to train on). */
  removed: string[];
}

export function changedDatasets(
  files: readonly ChangedFile[],
  globs: readonly string[],
): ChangedDatasets {
  const include = globs.filter((g) => !g.startsWith("!"));
  const exclude = globs.filter((g) => g.startsWith("!")).map((g) => g.slice(1));
  const matches = (path: string) =>
    include.some((g) => minimatch(path, g, { dot: true })) &&
    !exclude.some((g) => minimatch(path, g, { dot: true }));
  const changed: string[] = [];
  const removed: string[] = [];
  for (const f of files) {
    if (!matches(f.path)) continue;
    if (f.status === "removed") removed.push(f.path);
    else if (f.status !== "unchanged" && !changed.includes(f.path)) changed.push(f.path);
  }
  return { changed, removed };
}
