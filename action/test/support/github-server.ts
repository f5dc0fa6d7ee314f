// A local GitHub REST server (node:http) for the action's tests: the endpoints the action
// calls, with GitHub's pagination (per_page/page and Link headers), its 3,000-file limit on a
// pull request's files, base64 contents (and blobs over 1 MB), comment authorship by token,
// and 403 for writes with a read-only token. State is plain data the tests set and inspect.

import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Identity {
  login: string;
  type: "User" | "Bot";
  /** GET /user works (a personal token) or answers 403 (GITHUB_TOKEN, app tokens). */
  canReadUser: boolean;
  /** false: a fork PR's read-only GITHUB_TOKEN; writes answer 403. */
  canWrite: boolean;
}

export interface StoredComment {
  id: number;
  body: string;
  user: { login: string; type: string };
  created_at: string;
  updated_at: string;
}

export interface FakePull {
  /** The pull_request object of a webhook payload. */
  pr: Record<string, unknown>;
  files: { filename: string; status: string }[];
}

export interface RequestLogEntry {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
}

export const GITHUB_FILE_LIMIT = 3000;
const CONTENTS_INLINE_LIMIT = 1024 * 1024;

export class FakeGitHub {
  readonly tokens = new Map<string, Identity>();
  readonly pulls = new Map<string, FakePull>();
  readonly comments = new Map<string, StoredComment[]>();
  /** "owner/repo@sha" → path → bytes */
  readonly trees = new Map<string, Map<string, Uint8Array>>();
  /** "owner/repo@base...head" → files */
  readonly comparisons = new Map<string, { filename: string; status: string }[]>();
  readonly log: RequestLogEntry[] = [];
  private blobs = new Map<string, Uint8Array>();
  private nextCommentId = 1000;
  private server: Server | undefined;
  url = "";

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => {
        this.send(res, req, 500, { message: error.message });
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
  }

  addPull(
    repo: string,
    pr: Record<string, unknown>,
    files: { filename: string; status: string }[],
  ) {
    this.pulls.set(`${repo}#${String(pr.number)}`, { pr, files });
  }

  setFile(repo: string, sha: string, path: string, content: string | Uint8Array) {
    const key = `${repo}@${sha}`;
    const tree = this.trees.get(key) ?? new Map<string, Uint8Array>();
    tree.set(path, typeof content === "string" ? new TextEncoder().encode(content) : content);
    this.trees.set(key, tree);
  }

  commentsOf(repo: string, number: number): StoredComment[] {
    const key = `${repo}#${number}`;
    const list = this.comments.get(key) ?? [];
    this.comments.set(key, list);
    return list;
  }

  addComment(repo: string, number: number, body: string, user: { login: string; type: string }) {
    const now = new Date(Date.UTC(2026, 0, 1, 0, 0, this.nextCommentId % 60)).toISOString();
    const c: StoredComment = {
      id: this.nextCommentId++,
      body,
      user,
      created_at: now,
      updated_at: now,
    };
    this.commentsOf(repo, number).push(c);
    return c;
  }

  calls(method: string, pattern: RegExp): RequestLogEntry[] {
    return this.log.filter((e) => e.method === method && pattern.test(e.path));
  }

  private send(
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) {
    const url = new URL(req.url ?? "/", "http://x");
    this.log.push({
      method: req.method ?? "GET",
      path: decodeURIComponent(url.pathname),
      query: Object.fromEntries(url.searchParams),
      status,
    });
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  /** Slices `items` like GitHub: per_page (default 30, max 100), page (1-based), Link header. */
  private page<T>(
    req: IncomingMessage,
    items: readonly T[],
  ): { items: T[]; headers: Record<string, string> } {
    const url = new URL(req.url ?? "/", this.url);
    const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get("per_page") ?? "30")));
    const page = Math.max(1, Number(url.searchParams.get("page") ?? "1"));
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p: number, rel: string) => {
      const u = new URL(url);
      u.searchParams.set("per_page", String(perPage));
      u.searchParams.set("page", String(p));
      return `<${u.toString()}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page < last) links.push(link(page + 1, "next"), link(last, "last"));
    if (page > 1) links.push(link(1, "first"), link(page - 1, "prev"));
    return {
      items: items.slice((page - 1) * perPage, page * perPage),
      headers: links.length > 0 ? { link: links.join(", ") } : {},
    };
  }

  private identity(req: IncomingMessage): Identity | undefined {
    const auth = req.headers.authorization ?? "";
    const token = auth.replace(/^(token|bearer)\s+/i, "");
    return this.tokens.get(token);
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? JSON.parse(text) : {};
  }

  private commentJson(c: StoredComment, repo: string) {
    return {
      ...c,
      url: `${this.url}/repos/${repo}/issues/comments/${c.id}`,
      html_url: `https://github.com/${repo}/pull/0#issuecomment-${c.id}`,
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const who = this.identity(req);
    if (!who) return this.send(res, req, 401, { message: "Bad credentials" });

    if (method === "GET" && path === "/user") {
      return who.canReadUser
        ? this.send(res, req, 200, { login: who.login, type: who.type })
        : this.send(res, req, 403, { message: "Resource not accessible by integration" });
    }

    const m = /^\/repos\/([^/]+)\/([^/]+)\/(.*)$/.exec(path);
    if (!m) return this.send(res, req, 404, { message: "Not Found" });
    const repo = `${m[1]}/${m[2]}`;
    const rest = m[3] ?? "";

    let r: RegExpExecArray | null;
    r = method === "GET" ? /^pulls\/(\d+)$/.exec(rest) : null;
    if (r) {
      const pull = this.pulls.get(`${repo}#${r[1]}`);
      return pull
        ? this.send(res, req, 200, pull.pr)
        : this.send(res, req, 404, { message: "Not Found" });
    }
    r = method === "GET" ? /^pulls\/(\d+)\/files$/.exec(rest) : null;
    if (r) {
      const pull = this.pulls.get(`${repo}#${r[1]}`);
      if (!pull) return this.send(res, req, 404, { message: "Not Found" });
      const p = this.page(req, pull.files.slice(0, GITHUB_FILE_LIMIT));
      return this.send(res, req, 200, p.items, p.headers);
    }
    r = method === "GET" ? /^compare\/(.+)$/.exec(rest) : null;
    if (r) {
      const files = this.comparisons.get(`${repo}@${decodeURIComponent(r[1] ?? "")}`);
      if (!files) return this.send(res, req, 404, { message: "Not Found" });
      const p = this.page(req, files);
      return this.send(res, req, 200, { status: "ahead", files: p.items }, p.headers);
    }
    r = method === "GET" ? /^contents\/(.+)$/.exec(rest) : null;
    if (r) {
      const file = decodeURIComponent(r[1] ?? "");
      const ref = url.searchParams.get("ref") ?? "";
      const bytes = this.trees.get(`${repo}@${ref}`)?.get(file);
      if (!bytes) return this.send(res, req, 404, { message: "Not Found" });
      const sha = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
      this.blobs.set(`${repo}@${sha}`, bytes);
      const inline = bytes.length <= CONTENTS_INLINE_LIMIT;
      return this.send(res, req, 200, {
        type: "file",
        name: file.split("/").pop(),
        path: file,
        sha,
        size: bytes.length,
        encoding: inline ? "base64" : "none",
        content: inline
          ? Buffer.from(bytes)
              .toString("base64")
              .replace(/(.{60})/g, "$1\n")
          : "",
      });
    }
    r = method === "GET" ? /^git\/blobs\/([0-9a-f]{40})$/.exec(rest) : null;
    if (r) {
      const bytes = this.blobs.get(`${repo}@${r[1]}`);
      if (!bytes) return this.send(res, req, 404, { message: "Not Found" });
      return this.send(res, req, 200, {
        sha: r[1],
        size: bytes.length,
        encoding: "base64",
        content: Buffer.from(bytes).toString("base64"),
      });
    }
    r = /^issues\/(\d+)\/comments$/.exec(rest);
    if (r) {
      const number = Number(r[1]);
      if (method === "GET") {
        const p = this.page(
          req,
          this.commentsOf(repo, number).map((c) => this.commentJson(c, repo)),
        );
        return this.send(res, req, 200, p.items, p.headers);
      }
      if (method === "POST") {
        if (!who.canWrite)
          return this.send(res, req, 403, { message: "Resource not accessible by integration" });
        const body = (await this.body(req)) as { body?: unknown };
        if (typeof body.body !== "string")
          return this.send(res, req, 422, { message: "body is missing" });
        if (body.body.length > 65536) {
          return this.send(res, req, 422, {
            message: "Body is too long (maximum is 65536 characters)",
          });
        }
        const c = this.addComment(repo, number, body.body, { login: who.login, type: who.type });
        return this.send(res, req, 201, this.commentJson(c, repo));
      }
    }
    r = method === "DELETE" ? /^issues\/(\d+)\/labels\/(.+)$/.exec(rest) : null;
    if (r) {
      if (!who.canWrite)
        return this.send(res, req, 403, { message: "Resource not accessible by integration" });
      const pull = this.pulls.get(`${repo}#${r[1]}`);
      const name = decodeURIComponent(r[2] ?? "");
      const labels = (pull?.pr.labels ?? []) as { name: string }[];
      if (!pull || !labels.some((l) => l.name === name))
        return this.send(res, req, 404, { message: "Label does not exist" });
      pull.pr.labels = labels.filter((l) => l.name !== name);
      return this.send(res, req, 200, pull.pr.labels);
    }
    r = method === "PATCH" ? /^issues\/comments\/(\d+)$/.exec(rest) : null;
    if (r) {
      if (!who.canWrite)
        return this.send(res, req, 403, { message: "Resource not accessible by integration" });
      const id = Number(r[1]);
      const c = [...this.comments.entries()]
        .filter(([k]) => k.startsWith(`${repo}#`))
        .flatMap(([, list]) => list)
        .find((x) => x.id === id);
      if (!c) return this.send(res, req, 404, { message: "Not Found" });
      if (c.user.login !== who.login) {
        return this.send(res, req, 403, { message: "You cannot edit someone else's comment" });
      }
      const body = (await this.body(req)) as { body?: unknown };
      if (typeof body.body !== "string")
        return this.send(res, req, 422, { message: "body is missing" });
      if (body.body.length > 65536) {
        return this.send(res, req, 422, {
          message: "Body is too long (maximum is 65536 characters)",
        });
      }
      c.body = body.body;
      c.updated_at = new Date().toISOString();
      return this.send(res, req, 200, this.commentJson(c, repo));
    }
    return this.send(res, req, 404, {
      message: `Not Found (fake GitHub has no ${method} ${path})`,
    });
  }
}
