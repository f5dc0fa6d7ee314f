// What the workflow run is about, read from the event payload ($GITHUB_EVENT_PATH) through zod:
// a pull request (pull_request, pull_request_target, or any event plus the pull-request
// input), or a push to a branch (baseline runs for the base branch).

import { readFileSync } from "node:fs";
import { z } from "zod";

const RepoSchema = z.object({
  full_name: z.string().regex(/^[^/]+\/[^/]+$/),
  clone_url: z.string(),
  fork: z.boolean().optional(),
});

export const PullRequestSchema = z.object({
  number: z.number().int().positive(),
  state: z.string().optional(),
  html_url: z.string().optional(),
  changed_files: z.number().int().min(0).optional(),
  labels: z.array(z.object({ name: z.string() })).default([]),
  head: z.object({
    sha: z.string().regex(/^[0-9a-f]{40}$/, "must be a 40-hex commit SHA"),
    ref: z.string(),
    // null when the fork was deleted
    repo: RepoSchema.nullable(),
  }),
  base: z.object({
    sha: z.string().regex(/^[0-9a-f]{40}$/, "must be a 40-hex commit SHA"),
    ref: z.string(),
    repo: RepoSchema,
  }),
});
export type PullRequest = z.output<typeof PullRequestSchema>;

const PullRequestEventSchema = z.object({
  action: z.string().optional(),
  pull_request: PullRequestSchema,
  repository: RepoSchema,
  /** The label just added (action "labeled") and who added it. */
  label: z.object({ name: z.string() }).optional(),
  sender: z.object({ login: z.string() }).optional(),
});

const PushEventSchema = z.object({
  ref: z.string(),
  before: z.string().regex(/^[0-9a-f]{40}$/),
  after: z.string().regex(/^[0-9a-f]{40}$/),
  repository: RepoSchema,
});

const AnyEventSchema = z.object({ repository: RepoSchema.optional() }).passthrough();

export interface PullRequestTarget {
  kind: "pull_request";
  owner: string;
  repo: string;
  number: number;
  headSha: string;
  /** Where the PR's commits live (the fork for a fork PR). */
  headCloneUrl: string;
  baseRef: string;
  baseSha: string;
  /** The head repository is not the base repository (or it was deleted). */
  fork: boolean;
  headRepo: string;
  labels: string[];
  /** GitHub's count of changed files, when the payload has it. */
  changedFiles?: number;
  /**
   * This event is a label being added (pull_request[_target] "labeled"): which one, by whom.
   * The payload's head SHA is the commit the PR had when it was added.
   */
  labeled?: { label: string; by: string };
}

export interface PushTarget {
  kind: "push";
  owner: string;
  repo: string;
  branch: string;
  before: string;
  headSha: string;
  headCloneUrl: string;
}

export type Target = PullRequestTarget | PushTarget;

export function pullRequestTarget(pr: PullRequest): PullRequestTarget {
  const [owner = "", repo = ""] = pr.base.repo.full_name.split("/");
  const headRepo = pr.head.repo?.full_name ?? "(deleted fork)";
  return {
    kind: "pull_request",
    owner,
    repo,
    number: pr.number,
    headSha: pr.head.sha,
    headCloneUrl: pr.head.repo?.clone_url ?? pr.base.repo.clone_url,
    baseRef: pr.base.ref,
    baseSha: pr.base.sha,
    fork: pr.head.repo === null || pr.head.repo.full_name !== pr.base.repo.full_name,
    headRepo,
    labels: pr.labels.map((l) => l.name),
    ...(pr.changed_files !== undefined ? { changedFiles: pr.changed_files } : {}),
  };
}

export class EventError extends Error {
  override name = "EventError";
}

function describeIssues(file: string, error: z.ZodError): string {
  return error.issues
    .map((i) => `${file}: field ${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("\n");
}

export type EventRead =
  | { kind: "target"; target: Target }
  /** An event without a pull request: the caller fetches PR `number` (the pull-request input). */
  | { kind: "fetch-pull-request"; owner: string; repo: string; number: number }
  | { kind: "unsupported"; message: string };

/**
 * Reads the event. `pullRequestInput` (the pull-request input) wins over the payload, so a
 * separate report workflow (workflow_run, workflow_dispatch, schedule) can name the PR.
 */
export function readEvent(
  eventName: string,
  eventPath: string,
  repository: string | undefined,
  pullRequestInput: number | undefined,
): EventRead {
  let payload: unknown;
  try {
    payload = JSON.parse(readFileSync(eventPath, "utf8"));
  } catch (e) {
    throw new EventError(`cannot read the event payload ${eventPath}: ${(e as Error).message}`);
  }
  if (pullRequestInput !== undefined) {
    const any = AnyEventSchema.safeParse(payload);
    const full = (any.success ? any.data.repository?.full_name : undefined) ?? repository;
    if (!full?.includes("/")) {
      throw new EventError(
        "pull-request is set but neither the event nor GITHUB_REPOSITORY names the repository",
      );
    }
    const [owner = "", repo = ""] = full.split("/");
    return { kind: "fetch-pull-request", owner, repo, number: pullRequestInput };
  }
  if (eventName === "pull_request" || eventName === "pull_request_target") {
    const parsed = PullRequestEventSchema.safeParse(payload);
    if (!parsed.success) throw new EventError(describeIssues(eventPath, parsed.error));
    const e = parsed.data;
    const target = pullRequestTarget(e.pull_request);
    if (e.action === "labeled" && e.label) {
      target.labeled = { label: e.label.name, by: e.sender?.login ?? "(unknown)" };
    }
    return { kind: "target", target };
  }
  if (eventName === "push") {
    const parsed = PushEventSchema.safeParse(payload);
    if (!parsed.success) throw new EventError(describeIssues(eventPath, parsed.error));
    const e = parsed.data;
    if (!e.ref.startsWith("refs/heads/")) {
      return { kind: "unsupported", message: `push of ${e.ref} is not a branch: nothing to do` };
    }
    const [owner = "", repo = ""] = e.repository.full_name.split("/");
    return {
      kind: "target",
      target: {
        kind: "push",
        owner,
        repo,
        branch: e.ref.slice("refs/heads/".length),
        before: e.before,
        headSha: e.after,
        headCloneUrl: e.repository.clone_url,
      },
    };
  }
  return {
    kind: "unsupported",
    message: `event "${eventName}" carries no pull request; set the pull-request input (e.g. from workflow_run or workflow_dispatch) to name one`,
  };
}
