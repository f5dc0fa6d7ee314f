// One sticky comment per PR and dataset: found by its hidden marker among every comment of
// the PR (all pages), only among the bot's own comments, and updated in place.

import type { GitHubApi, IssueComment } from "./github.ts";

/** The login GITHUB_TOKEN comments as. */
export const GITHUB_ACTIONS_BOT = "github-actions[bot]";

export interface CommentAuthor {
  /** The token's login when known (a PAT, or the comment-author input). */
  login?: string;
}

export function isOwnComment(c: IssueComment, author: CommentAuthor): boolean {
  if (author.login) return c.login === author.login;
  return c.type === "Bot" && c.login === GITHUB_ACTIONS_BOT;
}

export async function findStickyComment(
  github: GitHubApi,
  owner: string,
  repo: string,
  number: number,
  marker: string,
  author: CommentAuthor,
): Promise<IssueComment | undefined> {
  for await (const c of github.comments(owner, repo, number)) {
    // The marker must open the body: a user quoting our comment does not make it ours.
    if (c.body.startsWith(marker) && isOwnComment(c, author)) return c;
  }
  return undefined;
}

export type UpsertResult = { id: number; action: "created" | "updated" | "unchanged" };

export async function upsertStickyComment(
  github: GitHubApi,
  owner: string,
  repo: string,
  number: number,
  marker: string,
  body: string,
  author: CommentAuthor,
  known?: number,
): Promise<UpsertResult> {
  if (!body.startsWith(marker)) throw new Error("a sticky comment must start with its marker");
  if (known !== undefined) {
    await github.updateComment(owner, repo, known, body);
    return { id: known, action: "updated" };
  }
  const existing = await findStickyComment(github, owner, repo, number, marker, author);
  if (existing) {
    if (existing.body === body) return { id: existing.id, action: "unchanged" };
    await github.updateComment(owner, repo, existing.id, body);
    return { id: existing.id, action: "updated" };
  }
  const created = await github.createComment(owner, repo, number, body);
  return { id: created.id, action: "created" };
}
