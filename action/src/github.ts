// The one module that talks to GitHub (through @octokit/rest). Everything the action needs
// from the REST API, parsed with zod at the boundary.

import { Octokit } from "@octokit/rest";
import { z } from "zod";
import { type PullRequest, PullRequestSchema } from "./event.ts";

/** GitHub lists at most 3,000 files of a pull request (and 300 of a comparison page set). */
export const MAX_PR_FILES = 3000;

export interface ChangedFile {
  path: string;
  /** added, modified, removed, renamed, copied, changed, unchanged */
  status: string;
}

export interface IssueComment {
  id: number;
  body: string;
  login: string;
  type: string;
}

export interface GitHubApi {
  pullRequest(owner: string, repo: string, number: number): Promise<PullRequest>;
  /** The PR's files, paginated, stopping at GitHub's 3,000-file limit. */
  pullRequestFiles(owner: string, repo: string, number: number): Promise<ChangedFile[]>;
  /** Files changed between two commits (push events), paginated. */
  compareFiles(owner: string, repo: string, base: string, head: string): Promise<ChangedFile[]>;
  /** A file's exact bytes at a commit; undefined when the path does not exist there. */
  fileAt(owner: string, repo: string, path: string, ref: string): Promise<Uint8Array | undefined>;
  /** Every comment of an issue/PR, all pages, oldest first. */
  comments(owner: string, repo: string, number: number): AsyncIterable<IssueComment>;
  createComment(owner: string, repo: string, number: number, body: string): Promise<IssueComment>;
  updateComment(owner: string, repo: string, id: number, body: string): Promise<IssueComment>;
  /** Takes a label off an issue/PR; false when it was not on it. */
  removeLabel(owner: string, repo: string, number: number, name: string): Promise<boolean>;
  /** The token's own login, or undefined when the token cannot ask (an installation token). */
  viewerLogin(): Promise<string | undefined>;
}

const FileSchema = z.object({ filename: z.string(), status: z.string() });
const CommentSchema = z.object({
  id: z.number().int(),
  body: z.string().nullish(),
  user: z.object({ login: z.string(), type: z.string() }).nullable(),
});
const ContentSchema = z.object({
  type: z.string(),
  sha: z.string(),
  size: z.number().int().min(0),
  encoding: z.string().optional(),
  content: z.string().optional(),
});
const BlobSchema = z.object({ content: z.string(), encoding: z.string() });

export class GitHubError extends Error {
  override name = "GitHubError";
}

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const r = schema.safeParse(data);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new GitHubError(
      `unexpected answer from GitHub for ${what}: field ${first?.path.join(".") || "(root)"}: ${first?.message}`,
    );
  }
  return r.data;
}

function toComment(data: unknown, what: string): IssueComment {
  const c = parse(CommentSchema, data, what);
  return { id: c.id, body: c.body ?? "", login: c.user?.login ?? "", type: c.user?.type ?? "" };
}

function statusOf(error: unknown): number | undefined {
  if (error && typeof error === "object" && "status" in error && typeof error.status === "number") {
    return error.status;
  }
  return undefined;
}

export function octokitGitHub(token: string, baseUrl: string): GitHubApi {
  const octokit = new Octokit({
    auth: token,
    baseUrl,
    userAgent: "loraforge-action",
    // The action decides what to retry; octokit's default logger would print 404s we expect.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });

  return {
    async pullRequest(owner, repo, number) {
      const r = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
      return parse(PullRequestSchema, r.data, `pull request #${number}`);
    },

    async pullRequestFiles(owner, repo, number) {
      const files: ChangedFile[] = [];
      for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listFiles, {
        owner,
        repo,
        pull_number: number,
        per_page: 100,
      })) {
        for (const f of page.data) {
          const file = parse(FileSchema, f, `the files of pull request #${number}`);
          files.push({ path: file.filename, status: file.status });
        }
        if (files.length >= MAX_PR_FILES) break;
      }
      return files.slice(0, MAX_PR_FILES);
    },

    async compareFiles(owner, repo, base, head) {
      const files: ChangedFile[] = [];
      for await (const page of octokit.paginate.iterator(
        octokit.rest.repos.compareCommitsWithBasehead,
        {
          owner,
          repo,
          basehead: `${base}...${head}`,
          per_page: 100,
        },
      )) {
        const data = parse(
          z.object({ files: z.array(FileSchema).default([]) }),
          page.data,
          `the comparison ${base}...${head}`,
        );
        for (const f of data.files) files.push({ path: f.filename, status: f.status });
        if (files.length >= MAX_PR_FILES) break;
      }
      return files.slice(0, MAX_PR_FILES);
    },

    async fileAt(owner, repo, path, ref) {
      let data: unknown;
      try {
        data = (await octokit.rest.repos.getContent({ owner, repo, path, ref })).data;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
      if (Array.isArray(data)) {
        throw new GitHubError(`${path} at ${ref} is a directory, not a file`);
      }
      const c = parse(ContentSchema, data, `${path} at ${ref}`);
      if (c.type !== "file") throw new GitHubError(`${path} at ${ref} is a ${c.type}, not a file`);
      if (
        c.encoding === "base64" &&
        c.content !== undefined &&
        (c.content !== "" || c.size === 0)
      ) {
        return new Uint8Array(Buffer.from(c.content, "base64"));
      }
      // Over 1 MB the contents API leaves the content out: read the blob (up to 100 MB).
      const blob = parse(
        BlobSchema,
        (await octokit.rest.git.getBlob({ owner, repo, file_sha: c.sha })).data,
        `blob ${c.sha} (${path})`,
      );
      if (blob.encoding !== "base64") {
        throw new GitHubError(`blob ${c.sha} (${path}) came as ${blob.encoding}, expected base64`);
      }
      return new Uint8Array(Buffer.from(blob.content, "base64"));
    },

    async *comments(owner, repo, number) {
      for await (const page of octokit.paginate.iterator(octokit.rest.issues.listComments, {
        owner,
        repo,
        issue_number: number,
        per_page: 100,
      })) {
        for (const c of page.data) yield toComment(c, `the comments of #${number}`);
      }
    },

    async createComment(owner, repo, number, body) {
      const r = await octokit.rest.issues.createComment({
        owner,
        repo,
        issue_number: number,
        body,
      });
      return toComment(r.data, `the new comment on #${number}`);
    },

    async updateComment(owner, repo, id, body) {
      const r = await octokit.rest.issues.updateComment({ owner, repo, comment_id: id, body });
      return toComment(r.data, `comment ${id}`);
    },

    async removeLabel(owner, repo, number, name) {
      try {
        await octokit.rest.issues.removeLabel({ owner, repo, issue_number: number, name });
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
    },

    async viewerLogin() {
      try {
        const r = await octokit.rest.users.getAuthenticated();
        return parse(z.object({ login: z.string() }), r.data, "the authenticated user").login;
      } catch (error) {
        // GITHUB_TOKEN and app installation tokens get 403 "Resource not accessible by integration".
        if (statusOf(error) === 403 || statusOf(error) === 401 || statusOf(error) === 404) {
          return undefined;
        }
        throw error;
      }
    },
  };
}
