// Real local servers for the in-pod source tests, on 127.0.0.1 over TLS with a certificate
// made here: `git http-backend` (the CGI program git ships) behind basic auth, a static file
// server, and a Hugging Face Hub that serves the Hub's file endpoints (`/api/models/<repo>/
// revision/<rev>` and `/<repo>/resolve/<rev>/<file>`, with a redirect to a "CDN" as the Hub
// does) for a Bearer token.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface Tls {
  key: string;
  cert: string;
  caFile: string;
}

/** A self-signed certificate for `host` (an IP address; openssl). */
export function makeTls(host = "127.0.0.1"): Tls {
  const dir = mkdtempSync(join(tmpdir(), "lf-tls-"));
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-days",
      "1",
      "-subj",
      `/CN=${host}`,
      "-addext",
      `subjectAltName=IP:${host},DNS:localhost`,
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return {
    key: readFileSync(join(dir, "key.pem"), "utf8"),
    cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    caFile: join(dir, "cert.pem"),
  };
}

export interface Running {
  url: string;
  server: Server;
  close: () => Promise<void>;
  requests: { method: string; path: string; authorization: string | undefined }[];
}

async function listen(
  tls: Tls,
  handler: (req: IncomingMessage, res: ServerResponse, base: string) => void,
  host = "127.0.0.1",
): Promise<Running> {
  const requests: Running["requests"] = [];
  let base = "";
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    requests.push({
      method: req.method ?? "",
      path: req.url ?? "",
      authorization: req.headers.authorization,
    });
    handler(req, res, base);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  base = `https://${host}:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    server,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: cwd,
    },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
};

/** A bare repository under `root/<name>.git` with one commit per entry of `commits`. */
export function makeRepo(
  root: string,
  name: string,
  commits: Record<string, string | Buffer>[],
): string[] {
  const work = mkdtempSync(join(tmpdir(), "lf-gitwork-"));
  git(work, "init", "--quiet", "-b", "main");
  const shas: string[] = [];
  for (const files of commits) {
    for (const [path, content] of Object.entries(files)) {
      const full = join(work, path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
      git(work, "add", path);
    }
    git(work, "commit", "--quiet", "-m", `commit ${shas.length}`);
    shas.push(git(work, "rev-parse", "HEAD"));
  }
  git(root, "clone", "--quiet", "--bare", work, `${name}.git`);
  git(join(root, `${name}.git`), "tag", "v1", shas[0] as string);
  return shas;
}

/**
 * `git http-backend` for every repository under `root`, behind basic auth user:password, on
 * `host` (the certificate's address).
 */
export function startGitServer(
  tls: Tls,
  root: string,
  auth: { user: string; password: string },
  host = "127.0.0.1",
): Promise<Running> {
  const expected = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`;
  return listen(
    tls,
    (req, res) => {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end();
        return;
      }
      const url = new URL(req.url ?? "/", "https://x");
      const cgi = spawn("git", ["http-backend"], {
        env: {
          PATH: process.env.PATH,
          GIT_PROJECT_ROOT: root,
          GIT_HTTP_EXPORT_ALL: "1",
          GIT_CONFIG_NOSYSTEM: "1",
          HOME: root,
          REQUEST_METHOD: req.method ?? "GET",
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.slice(1),
          CONTENT_TYPE: req.headers["content-type"] ?? "",
          REMOTE_USER: auth.user,
          REMOTE_ADDR: "127.0.0.1",
          GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
          HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"] ?? ""),
        },
      });
      req.pipe(cgi.stdin);
      let head = Buffer.alloc(0);
      let headerDone = false;
      cgi.stdout.on("data", (chunk: Buffer) => {
        if (headerDone) {
          res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        headerDone = true;
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
          const i = line.indexOf(":");
          const k = line.slice(0, i).trim();
          const v = line.slice(i + 1).trim();
          if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
          else headers[k] = v;
        }
        res.writeHead(status, headers);
        res.write(head.subarray(end + 4));
      });
      cgi.on("close", () => res.end());
    },
    host,
  );
}

/** A static file server: `files` maps a path to bytes. */
export function startFileServer(tls: Tls, files: Record<string, Buffer>): Promise<Running> {
  return listen(tls, (req, res) => {
    const body = files[new URL(req.url ?? "/", "https://x").pathname];
    if (!body) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-length": String(body.length) }).end(body);
  });
}

/**
 * The Hub's file API: `GET /api/{models,datasets}/<org>/<name>/revision/<rev>` (sha and
 * siblings) and `GET /[datasets/]<org>/<name>/resolve/<rev>/<file>` (repos keyed "org/name"
 * for models, "datasets/org/name" for datasets), which redirects to `/cdn/...` as the
 * Hub does to its CDN; both need `Authorization: Bearer <token>` (a private or gated repo).
 */
export function startHub(
  tls: Tls,
  token: string,
  repos: Record<string, { sha: string; files: Record<string, Buffer> }>,
): Promise<Running> {
  return listen(tls, (req, res, base) => {
    const url = new URL(req.url ?? "/", "https://x");
    const cdn = /^\/cdn\/((?:datasets\/)?[^/]+\/[^/]+)\/(.+)$/.exec(url.pathname);
    if (cdn) {
      // The CDN's URL is signed; it must not receive the Hub token.
      if (req.headers.authorization) {
        res.writeHead(400).end("token sent to the CDN");
        return;
      }
      const body = repos[cdn[1] as string]?.files[cdn[2] as string];
      if (!body) res.writeHead(404).end();
      else res.writeHead(200, { "content-length": String(body.length) }).end(body);
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      res
        .writeHead(401, { "content-type": "application/json" })
        .end('{"error":"Invalid credentials"}');
      return;
    }
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const id = api[1] === "datasets" ? `datasets/${api[2]}` : (api[2] as string);
      const repo = repos[id];
      if (!repo) {
        res
          .writeHead(404, { "x-error-code": "RepoNotFound" })
          .end('{"error":"Repository not found"}');
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          id: api[2],
          sha: repo.sha,
          siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })),
        }),
      );
      return;
    }
    const resolve = /^\/((?:datasets\/)?[^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repo = resolve ? repos[resolve[1] as string] : undefined;
    const file = resolve && repo ? repo.files[resolve[3] as string] : undefined;
    if (!resolve || !file) {
      res.writeHead(404, { "x-error-code": "EntryNotFound" }).end();
      return;
    }
    res
      .writeHead(302, {
        // Another origin, as the Hub's CDN is: the client must drop the token.
        location: `${base.replace("127.0.0.1", "localhost")}/cdn/${resolve[1]}/${resolve[3]}`,
        "x-repo-commit": repo?.sha ?? "",
        "x-linked-etag": createHash("sha256").update(file).digest("hex"),
      })
      .end();
  });
}

export const sizeOf = (p: string) => statSync(p).size;
