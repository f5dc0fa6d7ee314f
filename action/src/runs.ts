// Submitting, cancelling, finding and waiting for LoraFineTune runs.

import {
  API_VERSION,
  KIND,
  type LoraFineTune,
  type Phase,
  parseLoraFineTune,
} from "@loraforge/crds";
import { formatDuration } from "./duration.ts";
import type { PullRequestTarget, Target } from "./event.ts";
import type { RunStore, RunView } from "./k8s.ts";
import { ANNOTATION, datasetKey, LABEL, labelValue, MANAGED_BY, runName } from "./labels.ts";

export const TERMINAL_PHASES: readonly Phase[] = ["Succeeded", "Failed"];

export function isTerminal(run: RunView | undefined): boolean {
  const phase = run?.status?.phase;
  return phase !== undefined && TERMINAL_PHASES.includes(phase);
}

function repositoryOf(target: Target): string {
  return `${target.owner}/${target.repo}`;
}

/** The label selector of every run of this PR and dataset, whatever its commit. */
export function pullRequestSelector(target: PullRequestTarget, datasetPath: string): string {
  return [
    `${LABEL.managedBy}=${MANAGED_BY}`,
    `${LABEL.repository}=${labelValue(repositoryOf(target))}`,
    `${LABEL.pullRequest}=${target.number}`,
    `${LABEL.dataset}=${datasetKey(datasetPath)}`,
  ].join(",");
}

/**
 * The run for one dataset of the target: the base spec with the dataset replaced by a git
 * source pinned to the head commit (keeping the base spec's source `secretName`, the
 * credentials of a private repository). Everything else (image, resources, hyperparameters,
 * output) is the base branch's.
 */
export function buildRun(
  base: LoraFineTune,
  target: Target,
  datasetPath: string,
  namespace: string,
  specPath: string,
): LoraFineTune {
  const repository = repositoryOf(target);
  const scope = target.kind === "pull_request" ? `pr${target.number}` : target.branch;
  const name = runName(base.metadata.name, scope, target.headSha, datasetPath);
  const labels: Record<string, string> = {
    ...(base.metadata.labels ?? {}),
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.repository]: labelValue(repository),
    [LABEL.sha]: target.headSha,
    [LABEL.dataset]: datasetKey(datasetPath),
  };
  const annotations: Record<string, string> = {
    ...(base.metadata.annotations ?? {}),
    [ANNOTATION.repository]: repository,
    [ANNOTATION.datasetPath]: datasetPath,
    [ANNOTATION.spec]: specPath,
  };
  if (target.kind === "pull_request") {
    labels[LABEL.pullRequest] = String(target.number);
    labels[LABEL.baseBranch] = labelValue(target.baseRef);
    annotations[ANNOTATION.baseBranch] = target.baseRef;
    annotations[ANNOTATION.baseSha] = target.baseSha;
    annotations[ANNOTATION.pullRequestUrl] =
      `https://github.com/${repository}/pull/${target.number}`;
  } else {
    labels[LABEL.branch] = labelValue(target.branch);
    annotations[ANNOTATION.branch] = target.branch;
  }
  const manifest = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace, labels, annotations },
    spec: {
      ...base.spec,
      dataset: {
        ...base.spec.dataset,
        source: {
          git: { repo: target.headCloneUrl, ref: target.headSha, path: datasetPath },
          // A private repository: the base spec names the Secret with its credentials.
          ...(base.spec.dataset.source.secretName
            ? { secretName: base.spec.dataset.source.secretName }
            : {}),
        },
      },
      suspend: false,
    },
  };
  return parseLoraFineTune(manifest, `the run built from ${specPath} for ${datasetPath}`);
}

export interface SubmitResult {
  name: string;
  /** false when the run already existed (a re-run of the same commit). */
  created: boolean;
  /** Earlier, unfinished runs of the same PR and dataset that were deleted. */
  cancelled: string[];
}

export class SubmitError extends Error {
  override name = "SubmitError";
}

/**
 * Creates the run unless it exists (idempotent: the name is deterministic), then cancels the
 * superseded runs of the same PR and dataset. Cancelling deletes them: the Job and pods go with
 * them, and a finished run is kept as history (nothing to cancel).
 */
export async function submitRun(
  store: RunStore,
  manifest: LoraFineTune,
  target: Target,
  datasetPath: string,
): Promise<SubmitResult> {
  const name = manifest.metadata.name;
  const outcome = await store.create(manifest);
  if (outcome === "exists") {
    const existing = await store.get(name);
    if (existing && existing.labels[LABEL.sha] !== target.headSha) {
      throw new SubmitError(
        `LoraFineTune ${store.namespace}/${name} exists but belongs to commit ${existing.labels[LABEL.sha] ?? "(unlabelled)"}, not ${target.headSha}: delete it or rename the spec`,
      );
    }
    if (existing?.deletionTimestamp) {
      throw new SubmitError(
        `LoraFineTune ${store.namespace}/${name} is being deleted; re-run the job when it is gone`,
      );
    }
  }
  const cancelled: string[] = [];
  if (target.kind === "pull_request") {
    for (const run of await store.list(pullRequestSelector(target, datasetPath))) {
      if (run.name === name || run.labels[LABEL.sha] === target.headSha) continue;
      if (isTerminal(run) || run.deletionTimestamp) continue;
      if (await store.delete(run.name)) cancelled.push(run.name);
    }
  }
  return { name, created: outcome === "created", cancelled };
}

/**
 * The baseline: the latest Succeeded run labelled with the base branch, preferring one of the
 * same dataset path. Labels are sanitized, so the exact branch is checked in the annotation.
 */
export async function findBaseline(
  store: RunStore,
  target: PullRequestTarget,
  datasetPath: string,
): Promise<RunView | undefined> {
  const selector = [
    `${LABEL.managedBy}=${MANAGED_BY}`,
    `${LABEL.repository}=${labelValue(repositoryOf(target))}`,
    `${LABEL.branch}=${labelValue(target.baseRef)}`,
  ].join(",");
  const runs = (await store.list(selector)).filter(
    (r) =>
      r.status?.phase === "Succeeded" &&
      !r.deletionTimestamp &&
      (r.annotations[ANNOTATION.branch] ?? target.baseRef) === target.baseRef,
  );
  const finished = (r: RunView) => r.status?.completionTime ?? r.creationTimestamp ?? "";
  runs.sort((a, b) => (finished(a) < finished(b) ? 1 : finished(a) > finished(b) ? -1 : 0));
  return runs.find((r) => r.labels[LABEL.dataset] === datasetKey(datasetPath)) ?? runs[0];
}

export function describeProgress(run: RunView): string {
  const s = run.status;
  const parts = [`phase ${s?.phase ?? "Pending"}`];
  const p = s?.progress;
  if (p) {
    parts.push(
      `step ${p.step}/${p.totalSteps}${p.percent !== undefined ? ` (${p.percent}%)` : ""}`,
    );
    if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
    if (p.valLoss !== undefined) parts.push(`val loss ${p.valLoss.toFixed(4)}`);
    if (p.tokensPerSecond !== undefined) parts.push(`${Math.round(p.tokensPerSecond)} tok/s`);
    if (p.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  }
  if (s?.failure) parts.push(`failure ${s.failure.reason}`);
  return parts.join(", ");
}

export interface WaitOptions {
  timeoutSeconds: number;
  pollSeconds: number;
  log: (line: string) => void;
  /** Called when the progress line changes (to refresh the "running" comment). */
  onProgress?: (run: RunView) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export type WaitResult =
  | { outcome: "finished"; run: RunView }
  | { outcome: "timeout"; run: RunView | undefined }
  | { outcome: "gone" };

/** Polls the run until it is Succeeded or Failed, logging each change of progress. */
export async function waitForRun(
  store: RunStore,
  name: string,
  options: WaitOptions,
): Promise<WaitResult> {
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const deadline = now() + options.timeoutSeconds * 1000;
  let last = "";
  let run: RunView | undefined;
  for (;;) {
    run = await store.get(name);
    if (!run) return { outcome: "gone" };
    const line = describeProgress(run);
    if (line !== last) {
      options.log(`${name}: ${line}`);
      last = line;
      if (options.onProgress && !isTerminal(run)) await options.onProgress(run);
    }
    if (isTerminal(run)) return { outcome: "finished", run };
    const left = deadline - now();
    if (left <= 0) return { outcome: "timeout", run };
    await sleep(Math.min(options.pollSeconds * 1000, left));
  }
}
