// The git source against a real `git http-backend` over TLS with basic auth: the pinned
// commit (not the branch tip) is checked out, a tag works, credentials never reach the
// message, a wrong password / unknown commit / oversized repository fail naming the repository.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SourceFailure } from "../../src/inpod/sources/failure.ts";
import { fetchGit } from "../../src/inpod/sources/git.ts";
import { makeRepo, makeTls, type Running, startGitServer } from "../support/sourceServers.ts";

describe("git source against git http-backend", () => {
  const root = mkdtempSync(join(tmpdir(), "lf-gitsrv-"));
  const tls = makeTls();
  const auth = { user: "ci", password: randomBytes(8).toString("hex") };
  let server: Running;
  let shas: string[];
  const work = mkdtempSync(join(tmpdir(), "lf-gitfetch-"));
  let n = 0;
  const dir = () => join(work, `c${n++}`);

  before(async () => {
    shas = makeRepo(root, "data", [
      { "alpaca/data.json": '[{"instruction":"a","input":"","output":"old"}]' },
      { "alpaca/data.json": '[{"instruction":"a","input":"","output":"new"}]' },
    ]);
    makeRepo(root, "big", [{ "blob.bin": randomBytes(3 * 1024 * 1024) }]);
    server = await startGitServer(tls, root, auth);
  });
  after(() => server?.close());

  const base = () => ({
    maxBytes: 1024 * 1024,
    credentials: { username: auth.user, password: auth.password },
    caFile: tls.caFile,
  });

  test("checks out the pinned commit, not the branch tip", async () => {
    const d = dir();
    const head = await fetchGit({
      ...base(),
      repo: `${server.url}/data.git`,
      ref: shas[0] as string,
      dir: d,
    });
    assert.equal(head, shas[0]);
    assert.match(readFileSync(join(d, "alpaca/data.json"), "utf8"), /"old"/);
    assert.ok(server.requests.every((r) => r.authorization?.startsWith("Basic ")));
  });

  test("a branch and a tag resolve as the server has them", async () => {
    const d = dir();
    assert.equal(
      await fetchGit({ ...base(), repo: `${server.url}/data.git`, ref: "main", dir: d }),
      shas[1],
    );
    assert.equal(
      await fetchGit({ ...base(), repo: `${server.url}/data.git`, ref: "v1", dir: dir() }),
      shas[0],
    );
  });

  test("a wrong password fails naming the repository, without the password", async () => {
    await assert.rejects(
      fetchGit({
        ...base(),
        credentials: { username: "ci", password: "wrong-secret" },
        repo: `${server.url}/data.git`,
        ref: "main",
        dir: dir(),
      }),
      (e: SourceFailure) => {
        assert.ok(e instanceof SourceFailure);
        assert.equal(e.exitCode, 3);
        assert.ok(e.message.includes(`${server.url}/data.git@main`), e.message);
        assert.ok(!e.message.includes("wrong-secret") && !e.message.includes(auth.password));
        return true;
      },
    );
  });

  test("an unknown commit fails (exit 3) naming it", async () => {
    const missing = "0123456789abcdef0123456789abcdef01234567";
    await assert.rejects(
      fetchGit({ ...base(), repo: `${server.url}/data.git`, ref: missing, dir: dir() }),
      (e: SourceFailure) =>
        e.exitCode === 3 && e.message.includes(missing) && e.message.includes("git fetch failed"),
    );
  });

  test("a repository over the size limit is stopped and reported with its size", async () => {
    await assert.rejects(
      fetchGit({ ...base(), repo: `${server.url}/big.git`, ref: "main", dir: dir() }),
      (e: SourceFailure) => {
        assert.equal(e.exitCode, 3);
        // Stopped while git ran, or (on a fast machine) caught right after: either way the
        // message names the repository, the limit and the size reached.
        assert.match(
          e.message,
          /big\.git@main: (.*size limit of 1\.0 MiB \(\d+\.\d MiB|\d+\.\d MiB exceeds the size limit of 1\.0 MiB)/,
        );
        return true;
      },
    );
  });

  test("a refused ref syntax and a non-https URL fail before git runs", async () => {
    await assert.rejects(
      fetchGit({ ...base(), repo: `${server.url}/data.git`, ref: "--upload-pack=x", dir: dir() }),
      /ref must be/,
    );
    await assert.rejects(
      fetchGit({ ...base(), repo: "http://127.0.0.1/x.git", ref: "main", dir: dir() }),
      /only https/,
    );
  });
});
