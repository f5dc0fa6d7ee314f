// The action from event to comment: changed datasets → validation → submit → wait → report.
// Every external effect goes through the injected GitHub client, run store and reporter.

import type { LoraFineTune, Phase } from "@loraforge/crds";
import { forkGate } from "./approval.ts";
import { readBaseSpec } from "./basespec.ts";
import { changedDatasets } from "./datasets.ts";
import { formatDuration } from "./duration.ts";
import { pullRequestTarget, readEvent, type Target } from "./event.ts";
import { type GitHubApi, MAX_PR_FILES } from "./github.ts";
import type { Inputs } from "./inputs.ts";
import type { RunStore, RunView } from "./k8s.ts";
import { codeHtml } from "./markdown.ts";
import {
  type CommentContext,
  markerLine,
  renderInProgress,
  renderInvalid,
  renderResult,
} from "./render.ts";
import type { Reporter } from "./reporter.ts";
import { buildRun, findBaseline, submitRun, waitForRun } from "./runs.ts";
import { type CommentAuthor, upsertStickyComment } from "./sticky.ts";
import { renderValidation, validateDatasets } from "./validate.ts";

export interface RunEnv {
  eventName: string;
  eventPath: string;
  /** owner/name, from GITHUB_REPOSITORY */
  repository?: string;
}

export interface Deps {
  inputs: Inputs;
  env: RunEnv;
  reporter: Reporter;
  github: GitHubApi;
  /** Opens the LoraFineTune store of a namespace (only called when the cluster is needed). */
  openStore: (namespace: string) => RunStore;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface RunRecord {
  dataset: string;
  run: string;
  namespace: string;
  phase: Phase | "NotFound" | "";
  created?: boolean;
  cancelled?: string[];
  tuned?: unknown;
  base?: unknown;
  baseline?: { run: string; tuned?: unknown };
}

export interface Outcome {
  /** What happened, one word: noop, validated, invalid, validate-only, submitted, reported, timeout. */
  result: string;
  datasets: string[];
  runs: RunRecord[];
}

const ZERO_SHA = /^0{40}$/;

function worstPhase(runs: readonly RunRecord[]): string {
  if (runs.length === 0) return "";
  if (runs.some((r) => r.phase === "Failed")) return "Failed";
  if (runs.some((r) => r.phase === "NotFound")) return "NotFound";
  if (runs.every((r) => r.phase === "Succeeded")) return "Succeeded";
  return runs.find((r) => r.phase !== "Succeeded")?.phase ?? "";
}

function setOutputs(reporter: Reporter, outcome: Outcome): void {
  reporter.setOutput("result", outcome.result);
  reporter.setOutput("datasets", outcome.datasets.join("\n"));
  reporter.setOutput("run-name", outcome.runs.map((r) => r.run).join("\n"));
  reporter.setOutput("phase", worstPhase(outcome.runs));
  reporter.setOutput("metrics", JSON.stringify(outcome.runs));
}

async function resolveTarget(deps: Deps): Promise<Target | string> {
  const read = readEvent(
    deps.env.eventName,
    deps.env.eventPath,
    deps.env.repository,
    deps.inputs["pull-request"],
  );
  if (read.kind === "unsupported") return read.message;
  if (read.kind === "target") return read.target;
  return pullRequestTarget(await deps.github.pullRequest(read.owner, read.repo, read.number));
}

export async function run(deps: Deps): Promise<Outcome> {
  const { inputs, reporter, github } = deps;
  const mode = inputs.mode;
  const target = await resolveTarget(deps);
  if (typeof target === "string") {
    reporter.notice(`LoraForge: ${target}`);
    const outcome: Outcome = { result: "noop", datasets: [], runs: [] };
    setOutputs(reporter, outcome);
    return outcome;
  }
  const { owner, repo } = target;
  const where =
    target.kind === "pull_request" ? `pull request #${target.number}` : `push to ${target.branch}`;

  // ── changed datasets ──────────────────────────────────────────────────────────────────
  let files: { path: string; status: string }[];
  if (target.kind === "pull_request") {
    files = await github.pullRequestFiles(owner, repo, target.number);
    if ((target.changedFiles ?? files.length) > MAX_PR_FILES || files.length >= MAX_PR_FILES) {
      reporter.warning(
        `${where} changes ${target.changedFiles ?? `at least ${MAX_PR_FILES}`} files; GitHub lists only the first ${MAX_PR_FILES}, so a dataset changed beyond those is not seen`,
      );
    }
  } else if (ZERO_SHA.test(target.before)) {
    files = [];
    reporter.info(`${where} created the branch: no earlier commit to compare with`);
  } else {
    files = await github.compareFiles(owner, repo, target.before, target.headSha);
  }
  const { changed, removed } = changedDatasets(files, inputs.datasets);
  reporter.info(
    `${where}: ${files.length} changed files, ${changed.length} changed datasets (${inputs.datasets.join(", ")})`,
  );
  for (const r of removed) reporter.info(`${r}: removed, nothing to train on`);
  if (changed.length === 0) {
    const message = `No dataset changed in ${where} (globs: ${inputs.datasets.join(", ")}): nothing to validate or train.`;
    reporter.notice(`LoraForge: ${message}`);
    reporter.summary(`### LoraForge\n\n${message}`);
    const outcome: Outcome = { result: "noop", datasets: [], runs: [] };
    setOutputs(reporter, outcome);
    return outcome;
  }

  // ── security gate and base spec ───────────────────────────────────────────────────────
  const gate =
    target.kind === "pull_request" && mode !== "validate"
      ? await forkGate({ inputs, eventName: deps.env.eventName, github, reporter }, target)
      : undefined;
  const effectiveMode = gate ? "validate" : mode;
  if (gate) reporter.warning(gate);
  const canComment =
    inputs.comment &&
    target.kind === "pull_request" &&
    !(target.fork && deps.env.eventName === "pull_request");
  const specSha = target.kind === "pull_request" ? target.baseSha : target.headSha;

  let spec: LoraFineTune | undefined;
  try {
    spec = await readBaseSpec(github, owner, repo, inputs.spec, specSha);
  } catch (error) {
    if (effectiveMode !== "validate") throw error;
    reporter.warning(`${(error as Error).message}; validating with the default dataset settings`);
  }

  const author: CommentAuthor = {};
  if (canComment && effectiveMode !== "validate") {
    const login = inputs["comment-author"] ?? (await github.viewerLogin());
    if (login) author.login = login;
  }
  const context = (dataset: string, namespace: string): CommentContext => ({
    marker: inputs["comment-marker"],
    datasetPath: dataset,
    namespace,
    sha: target.headSha.slice(0, 7),
    baseBranch: target.kind === "pull_request" ? target.baseRef : target.branch,
  });
  const commentIds = new Map<string, number>();
  // The comment reports; it does not decide. A token that may not comment (missing
  // permissions, a read-only token) costs the comment, not the run: it is a warning.
  let commentBlocked = false;
  const comment = async (dataset: string, body: string) => {
    if (!canComment || commentBlocked || target.kind !== "pull_request") return;
    const marker = markerLine(inputs["comment-marker"], dataset);
    try {
      const r = await upsertStickyComment(
        github,
        owner,
        repo,
        target.number,
        marker,
        body,
        author,
        commentIds.get(dataset),
      );
      commentIds.set(dataset, r.id);
      reporter.info(`${dataset}: comment ${r.id} ${r.action}`);
    } catch (error) {
      const status = (error as { status?: unknown }).status;
      if (status !== 403 && status !== 404) throw error;
      commentBlocked = true;
      reporter.warning(
        `could not update the pull request comment (HTTP ${status}: ${(error as Error).message}); give the token pull-requests: write and issues: write, or set comment: false. The results are in the job summary.`,
      );
    }
  };

  // ── validate ──────────────────────────────────────────────────────────────────────────
  if (effectiveMode !== "report") {
    const results = await validateDatasets(
      github,
      owner,
      repo,
      target.headSha,
      changed,
      spec,
      reporter,
    );
    const table = renderValidation(results);
    reporter.summary(
      `### LoraForge dataset validation (${where}, ${target.headSha.slice(0, 7)})\n\n${table}`,
    );
    const invalid = results.filter((r) => !r.ok);
    if (invalid.length > 0) {
      if (effectiveMode !== "validate") {
        for (const r of invalid) {
          await comment(r.path, renderInvalid(context(r.path, ""), renderValidation([r])));
        }
      }
      reporter.setFailed(
        `${invalid.length} of ${changed.length} changed datasets are invalid (${invalid.map((r) => r.path).join(", ")}); nothing was submitted`,
      );
      const outcome: Outcome = { result: "invalid", datasets: changed, runs: [] };
      setOutputs(reporter, outcome);
      return outcome;
    }
    if (effectiveMode === "validate") {
      if (gate) reporter.summary(`> ${gate}`);
      const outcome: Outcome = {
        result: gate ? "validate-only" : "validated",
        datasets: changed,
        runs: [],
      };
      setOutputs(reporter, outcome);
      return outcome;
    }
  }
  if (!spec) throw new Error("unreachable: the base spec is read before submit");

  // ── submit ────────────────────────────────────────────────────────────────────────────
  const namespace = inputs.namespace ?? spec.metadata.namespace ?? "default";
  const store = deps.openStore(namespace);
  const records: RunRecord[] = [];
  for (const dataset of changed) {
    const manifest = buildRun(spec, target, dataset, namespace, inputs.spec);
    const record: RunRecord = { dataset, run: manifest.metadata.name, namespace, phase: "" };
    records.push(record);
    if (effectiveMode === "submit" || effectiveMode === "all") {
      const submitted = await submitRun(store, manifest, target, dataset);
      record.created = submitted.created;
      record.cancelled = submitted.cancelled;
      reporter.info(
        `${dataset}: LoraFineTune ${namespace}/${submitted.name} ${submitted.created ? "created" : "already exists (re-run of the same commit)"}`,
      );
      for (const c of submitted.cancelled)
        reporter.info(`${dataset}: cancelled superseded run ${namespace}/${c} (deleted)`);
      const view = await store.get(submitted.name);
      record.phase = view?.status?.phase ?? "Pending";
      if (view && target.kind === "pull_request") {
        await comment(
          dataset,
          renderInProgress(context(dataset, namespace), view, submitted.cancelled),
        );
      }
    }
  }
  if (effectiveMode === "submit") {
    reporter.summary(
      `### LoraForge runs submitted\n\n${records.map((r) => `- ${codeHtml(r.dataset)} → \`${namespace}/${r.run}\` (${r.created ? "created" : "existed"})`).join("\n")}`,
    );
    const outcome: Outcome = { result: "submitted", datasets: changed, runs: records };
    setOutputs(reporter, outcome);
    return outcome;
  }

  // ── wait and report ───────────────────────────────────────────────────────────────────
  let timedOut = false;
  let failed = false;
  // One deadline for all the runs of this job, not one timeout each.
  const now = deps.now ?? Date.now;
  const deadline = now() + inputs.timeout * 1000;
  for (const record of records) {
    const ctx = context(record.dataset, namespace);
    const waited = await waitForRun(store, record.run, {
      timeoutSeconds: Math.max(0, (deadline - now()) / 1000),
      pollSeconds: inputs["poll-interval"],
      log: (line) => reporter.info(line),
      onProgress: (view) =>
        comment(record.dataset, renderInProgress(ctx, view, record.cancelled ?? [])),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      ...(deps.now ? { now: deps.now } : {}),
    });
    if (waited.outcome === "gone") {
      record.phase = "NotFound";
      reporter.error(
        `${record.dataset}: LoraFineTune ${namespace}/${record.run} does not exist${effectiveMode === "report" ? " (did the submit step run for this commit?)" : " (it was deleted while waiting)"}`,
      );
      failed = true;
      continue;
    }
    if (waited.outcome === "timeout") {
      timedOut = true;
      record.phase = waited.run?.status?.phase ?? "Pending";
      const note = `Still in progress after waiting ${formatDuration(inputs.timeout)}; the run goes on in the cluster, and the report workflow (mode: report) posts the result here.`;
      reporter.warning(`${record.dataset}: ${namespace}/${record.run} ${note}`);
      if (waited.run) {
        await comment(
          record.dataset,
          renderInProgress(ctx, waited.run, record.cancelled ?? [], note),
        );
        reporter.summary(renderInProgress(ctx, waited.run, record.cancelled ?? [], note));
      }
      continue;
    }
    const view: RunView = waited.run;
    record.phase = view.status?.phase ?? "";
    record.tuned = view.status?.evaluation?.tuned;
    record.base = view.status?.evaluation?.base;
    const baseline =
      target.kind === "pull_request"
        ? await findBaseline(store, target, record.dataset)
        : undefined;
    if (baseline)
      record.baseline = { run: baseline.name, tuned: baseline.status?.evaluation?.tuned };
    const rendered = renderResult(ctx, view, baseline, { chart: inputs["loss-chart"] });
    await comment(record.dataset, rendered.text);
    reporter.summary(rendered.text);
    if (record.phase === "Failed") {
      failed = true;
      reporter.error(
        `${record.dataset}: LoraFineTune ${namespace}/${record.run} failed: ${view.status?.failure?.reason ?? "no reason given"}${view.status?.failure?.message ? ` — ${view.status.failure.message}` : ""}`,
      );
    }
  }
  const outcome: Outcome = {
    result: timedOut ? "timeout" : "reported",
    datasets: changed,
    runs: records,
  };
  setOutputs(reporter, outcome);
  if (failed)
    reporter.setFailed(
      `LoraForge: ${records.filter((r) => r.phase === "Failed" || r.phase === "NotFound").length} run(s) did not succeed`,
    );
  return outcome;
}
