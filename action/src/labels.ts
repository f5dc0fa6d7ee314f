// Names and labels of the runs the action creates. Label values are restricted (63 characters,
// alphanumerics and -_. inside, alphanumeric at both ends), so every free-form value is
// sanitized, and the exact value is kept in an annotation beside it.

import { createHash } from "node:crypto";

export const LABEL = {
  managedBy: "app.kubernetes.io/managed-by",
  repository: "loraforge.dev/repository",
  pullRequest: "loraforge.dev/pull-request",
  sha: "loraforge.dev/sha",
  baseBranch: "loraforge.dev/base-branch",
  branch: "loraforge.dev/branch",
  dataset: "loraforge.dev/dataset",
} as const;

export const ANNOTATION = {
  repository: "loraforge.dev/repository",
  datasetPath: "loraforge.dev/dataset-path",
  baseBranch: "loraforge.dev/base-branch",
  branch: "loraforge.dev/branch",
  baseSha: "loraforge.dev/base-sha",
  spec: "loraforge.dev/spec",
  pullRequestUrl: "loraforge.dev/pull-request-url",
} as const;

export const MANAGED_BY = "loraforge-action";

export function shortHash(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/**
 * A valid label value for any string: characters outside [A-Za-z0-9._-] become "_", the ends
 * are trimmed to alphanumerics, and a value over 63 characters keeps its first 50 plus a hash
 * of the whole (so two long values stay distinct).
 */
export function labelValue(text: string): string {
  let v = text.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  if (v.length > 63) v = `${v.slice(0, 50).replace(/[^A-Za-z0-9]+$/, "")}-${shortHash(text, 12)}`;
  return v === "" ? `x-${shortHash(text, 12)}` : v;
}

/** A DNS-label fragment: lower case, [a-z0-9-], no dashes at the ends, at most `max` chars. */
export function dnsFragment(text: string, max: number): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .slice(0, max)
    .replace(/^-+|-+$/g, "");
}

/** The label value that identifies a dataset path (a hash: paths are long and have "/"). */
export function datasetKey(path: string): string {
  return shortHash(path, 12);
}

/**
 * The run's name: `<spec>-pr<N>-<sha7>-<dataset6>` (or `<spec>-<branch>-<sha7>-<dataset6>` for a
 * push). The same PR commit and dataset always give the same name, which makes submit idempotent.
 */
export function runName(specName: string, scope: string, sha: string, datasetPath: string): string {
  const tail = `-${dnsFragment(scope, 24)}-${sha.slice(0, 7)}-${shortHash(datasetPath, 6)}`;
  const head = dnsFragment(specName, 63 - tail.length) || "lft";
  return `${head}${tail}`;
}
