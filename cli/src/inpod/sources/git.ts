// A dataset in a git repository, fetched over HTTPS with the git CLI at one ref: `git init`,
// `git fetch --depth 1 origin <ref>`, `git checkout --detach FETCH_HEAD`. A 40-hex ref is a
// commit and the checkout must be exactly it; a tag or branch is taken as the server has it.
//
// Credentials (username/password or a token) reach git as an `http.extraHeader` through
// GIT_CONFIG_* environment variables: never in the URL, the command line or a log. The size
// limit is enforced while git runs (the repository folder is measured, git is stopped when it
// passes the limit), since a shallow fetch of one commit can still be arbitrarily large.

import { spawn } from "node:child_process";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Credentials } from "./credentials.ts";
import { bytesText, redact, SourceFailure } from "./failure.ts";

export interface GitFetchOptions {
  repo: string;
  ref: string;
  dir: string;
  maxBytes: number;
  credentials: Credentials;
  /** A CA bundle file git trusts besides the system's (tests, internal servers). */
  caFile?: string | undefined;
  signal?: AbortSignal | undefined;
  log?: (line: string) => void;
}

const COMMIT = /^[0-9a-f]{40}$/;
const SAFE_REF = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

async function duSize(dir: string): Promise<number> {
  let total = 0;
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await duSize(p);
    else if (e.isFile()) total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

function authHeader(c: Credentials): string | undefined {
  if (c.username !== undefined || c.password !== undefined) {
    const basic = Buffer.from(`${c.username ?? "x-access-token"}:${c.password ?? c.token ?? ""}`);
    return `Authorization: Basic ${basic.toString("base64")}`;
  }
  if (c.token !== undefined) {
    // GitHub, GitLab and Gitea take a token as the password of basic auth.
    return `Authorization: Basic ${Buffer.from(`x-access-token:${c.token}`).toString("base64")}`;
  }
  return undefined;
}

/** Fetches `ref` of `repo` into `dir` (emptied first); resolves with the commit checked out. */
export async function fetchGit(o: GitFetchOptions): Promise<string> {
  const where = `${redact(o.repo)}@${o.ref}`;
  const fail = (reason: string, permanent: boolean) =>
    new SourceFailure(where, reason, permanent ? "permanent" : "transient");
  if (!o.repo.startsWith("https://")) throw fail("only https:// repositories are fetched", true);
  if (!COMMIT.test(o.ref) && (!SAFE_REF.test(o.ref) || o.ref.includes("..")))
    throw fail(
      "ref must be a 40-hex commit, or a tag or branch name (letters, digits, . _ / -)",
      true,
    );
  await rm(o.dir, { recursive: true, force: true });
  await mkdir(o.dir, { recursive: true });

  const config: [string, string][] = [
    ["protocol.allow", "never"],
    ["protocol.https.allow", "always"],
    ["credential.helper", ""],
    ["core.hooksPath", "/dev/null"],
    ["advice.detachedHead", "false"],
    ["init.defaultBranch", "main"],
  ];
  const header = authHeader(o.credentials);
  if (header) config.push(["http.extraHeader", header]);
  if (o.caFile) config.push(["http.sslCAInfo", o.caFile]);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: o.dir, // no user config is read
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "/bin/false",
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });

  const git = (args: string[], watchSize: boolean) =>
    new Promise<{ code: number; stderr: string; stdout: string; over?: number }>(
      (resolve, reject) => {
        const child = spawn("git", args, { cwd: o.dir, env, signal: o.signal });
        let stderr = "";
        let stdout = "";
        let over: number | undefined;
        child.stdout.on("data", (d) => {
          stdout += d;
        });
        child.stderr.on("data", (d) => {
          stderr = (stderr + d).slice(-4000);
        });
        let timer: NodeJS.Timeout | undefined;
        let exited = false;
        if (watchSize) {
          const check = async () => {
            const size = await duSize(o.dir);
            // git may have exited while the folder was measured: never re-arm then.
            if (exited) return;
            if (size > o.maxBytes) {
              over = size;
              child.kill("SIGKILL");
            } else timer = setTimeout(check, 200);
          };
          timer = setTimeout(check, 200);
        }
        child.on("error", (e) => {
          exited = true;
          clearTimeout(timer);
          reject(
            (e as NodeJS.ErrnoException).code === "ENOENT"
              ? fail("the git command is not installed in the trainer image", true)
              : fail(e.message, false),
          );
        });
        child.on("close", (code) => {
          exited = true;
          clearTimeout(timer);
          resolve({ code: code ?? 1, stderr, stdout, ...(over !== undefined ? { over } : {}) });
        });
      },
    );
  // Never echo the credentials git may print back (they are only in the header).
  const clean = (s: string) =>
    s
      .split("\n")
      .map((l) => l.replace(/Authorization: \S+ \S+/gi, "Authorization: ***").trim())
      .filter((l) => l !== "")
      .slice(-3)
      .join("; ");

  for (const args of [
    ["init", "--quiet"],
    ["remote", "add", "origin", o.repo],
  ]) {
    const r = await git(args, false);
    if (r.code !== 0) throw fail(`git ${args[0]} failed: ${clean(r.stderr)}`, false);
  }
  o.log?.(`loraforge job: fetching ${where}`);
  const fetched = await git(
    ["fetch", "--quiet", "--no-tags", "--depth", "1", "origin", o.ref],
    true,
  );
  if (fetched.over !== undefined)
    throw fail(
      `the fetch passed the size limit of ${bytesText(o.maxBytes)} (${bytesText(fetched.over)} so far) and was stopped`,
      true,
    );
  if (fetched.code !== 0) {
    const msg = clean(fetched.stderr);
    const permanent =
      /not found|couldn't find remote ref|not our ref|401|403|404|Authentication failed|could not read Username/i.test(
        msg,
      );
    throw fail(`git fetch failed: ${msg}`, permanent);
  }
  const checkout = await git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], true);
  if (checkout.over !== undefined)
    throw fail(
      `the checkout passed the size limit of ${bytesText(o.maxBytes)} (${bytesText(checkout.over)}) and was stopped`,
      true,
    );
  if (checkout.code !== 0) throw fail(`git checkout failed: ${clean(checkout.stderr)}`, false);
  const head = (await git(["rev-parse", "HEAD"], false)).stdout.trim();
  if (COMMIT.test(o.ref) && head !== o.ref)
    throw fail(`the server gave commit ${head}, not the pinned ${o.ref}`, true);
  const size = await duSize(o.dir);
  if (size > o.maxBytes)
    throw fail(`${bytesText(size)} exceeds the size limit of ${bytesText(o.maxBytes)}`, true);
  return head;
}
