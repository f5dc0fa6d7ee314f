// The gate for fork pull requests in a privileged workflow: a maintainer's approval (the
// trusted label) holds for ONE head commit. Adding the label records the commit it was added
// at in a bot-owned comment; a later commit finds the record out of date, takes the label off
// and asks for a new approval, so a push after an approval never trains with the cluster's
// credentials on its own.

import type { PullRequestTarget } from "./event.ts";
import type { GitHubApi } from "./github.ts";
import type { Inputs } from "./inputs.ts";
import { shortHash } from "./labels.ts";
import { codeHtml } from "./markdown.ts";
import type { Reporter } from "./reporter.ts";
import { type CommentAuthor, findStickyComment, upsertStickyComment } from "./sticky.ts";

/** The hidden first line of the approval record (one per PR and trusted label). */
export function approvalMarker(label: string): string {
  return `<!-- loraforge:approval:${shortHash(label, 12)} -->`;
}

const APPROVED_SHA = /^<!-- loraforge:approved-sha:([0-9a-f]{40}) -->$/m;

/** The commit an approval record names, if it names one. */
export function approvedSha(body: string): string | undefined {
  return APPROVED_SHA.exec(body)?.[1];
}

function recordBody(label: string, sha: string, text: string): string {
  return `${approvalMarker(label)}\n<!-- loraforge:approved-sha:${sha} -->\n${text}`;
}

export interface GateDeps {
  inputs: Inputs;
  eventName: string;
  github: GitHubApi;
  reporter: Reporter;
}

/** Whose comments count as records: the token's own (the same rule as the sticky comment). */
async function recordAuthor(deps: GateDeps): Promise<CommentAuthor> {
  const login = deps.inputs["comment-author"] ?? (await deps.github.viewerLogin());
  return login ? { login } : {};
}

/** A write the token may not make costs the record, with a warning, not the run. */
function isForbidden(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return status === 403 || status === 404;
}

/**
 * Why this run may only validate (a fork without an approval of its head commit), or
 * undefined when it may submit. Records approvals and withdraws stale ones as a side effect.
 */
export async function forkGate(
  deps: GateDeps,
  target: PullRequestTarget,
): Promise<string | undefined> {
  if (!target.fork) return undefined;
  const { inputs, github, reporter } = deps;
  const label = inputs["trusted-label"];
  if (deps.eventName === "pull_request") {
    return `This pull request comes from the fork ${target.headRepo}. Workflows run by pull_request events from forks get no secrets and a read-only token, so LoraForge only validated the changed datasets. Training starts from the privileged workflow once a maintainer approves it (${label ? `the label \`${label}\` or ` : ""}an environment approval; see action/README.md, "Security").`;
  }
  if (inputs["allow-fork-submit"]) return undefined;
  if (!label) return undefined;
  const { owner, repo, number, headSha } = target;
  const short = headSha.slice(0, 7);

  // 1. The label being added now approves the commit the PR has in this event.
  if (target.labeled?.label === label) {
    const text = `✅ Training of commit ${short} was approved by ${codeHtml(target.labeled.by)} (label ${codeHtml(label)}). The approval holds for this commit only: after a new push the label is taken off, and a maintainer adds it again to train the new commits.`;
    try {
      await upsertStickyComment(
        github,
        owner,
        repo,
        number,
        approvalMarker(label),
        recordBody(label, headSha, text),
        await recordAuthor(deps),
      );
      reporter.info(`approval of ${short} by ${target.labeled.by} recorded`);
    } catch (error) {
      if (!isForbidden(error)) throw error;
      reporter.warning(
        `could not record the approval of ${short} in a comment (HTTP ${(error as { status?: unknown }).status}); this run trains it, but later runs for the same commit (report, re-runs) will ask for the label again. Give the token issues: write.`,
      );
    }
    return undefined;
  }

  const notApproved = `This pull request comes from the fork ${target.headRepo} and has not been approved for training: a maintainer adds the label \`${label}\` to start it. Only validation ran.`;
  if (!target.labels.includes(label)) return notApproved;

  // 2. The label is on the PR: it counts only for the commit it was added at.
  const author = await recordAuthor(deps);
  const record = await findStickyComment(
    github,
    owner,
    repo,
    number,
    approvalMarker(label),
    author,
  );
  const approved = record ? approvedSha(record.body) : undefined;
  if (approved === headSha) return undefined;

  // 3. Stale: withdraw the label and say why, in the record itself.
  const was = approved ? `commit ${approved.slice(0, 7)}` : "an earlier commit (no record)";
  try {
    const removed = await github.removeLabel(owner, repo, number, label);
    if (removed) reporter.info(`label ${label} removed: it approved ${was}, not ${short}`);
    const text = `⚠️ The label ${codeHtml(label)} approved ${was}; the head is now ${short}, pushed after the approval. The label was taken off and nothing was trained: a maintainer reviews the new commits and adds the label again to train them.`;
    await upsertStickyComment(
      github,
      owner,
      repo,
      number,
      approvalMarker(label),
      approved ? recordBody(label, approved, text) : `${approvalMarker(label)}\n${text}`,
      author,
      record?.id,
    );
  } catch (error) {
    if (!isForbidden(error)) throw error;
    reporter.warning(
      `could not take the label ${label} off or comment (HTTP ${(error as { status?: unknown }).status}); nothing was trained either way`,
    );
  }
  return `This pull request comes from the fork ${target.headRepo}. The label \`${label}\` approved ${was}, not the head commit ${short}: a push after an approval needs a new one. Only validation ran; a maintainer adds the label again to train ${short}.`;
}
