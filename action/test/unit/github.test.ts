// The GitHub side against a local HTTP server that speaks GitHub's REST dialect:
// pagination of a PR's files, the 3,000-file limit, contents and blobs, sticky comments.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { octokitGitHub } from "../../src/github.ts";
import { markerLine } from "../../src/render.ts";
import { findStickyComment, upsertStickyComment } from "../../src/sticky.ts";
import type { FakeGitHub } from "../support/github-server.ts";
import { baseSpec, manyFiles, payload, REPO, seededGitHub, TOKEN } from "../support/helpers.ts";

const [OWNER, NAME] = REPO.split("/") as [string, string];

describe("GitHub client against the local GitHub server", () => {
  let gh: FakeGitHub;
  const event = payload("synchronize");
  const pr = event.pull_request;

  before(async () => {
    gh = await seededGitHub(event, [], {}, baseSpec("ml"));
  });
  after(async () => gh.stop());

  test("a PR's changed files are read across every page (2,345 files, Link headers)", async () => {
    const files = manyFiles(2345, [
      { at: 3, path: "datasets/alpaca.json" },
      { at: 2301, path: "datasets/late.jsonl" },
    ]);
    gh.addPull(REPO, pr, files);
    gh.log.length = 0;
    const api = octokitGitHub(TOKEN, gh.url);
    const got = await api.pullRequestFiles(OWNER, NAME, pr.number);
    assert.equal(got.length, 2345);
    assert.deepEqual(got[2301], { path: "datasets/late.jsonl", status: "modified" });
    const pages = gh.calls("GET", /\/pulls\/2\/files$/).map((c) => Number(c.query.page ?? "1"));
    assert.deepEqual(
      pages,
      Array.from({ length: 24 }, (_, i) => i + 1),
    );
    assert.ok(gh.calls("GET", /\/pulls\/2\/files$/).every((c) => c.query.per_page === "100"));
  });

  test("stops at GitHub's 3,000-file limit", async () => {
    gh.addPull(REPO, pr, manyFiles(3500, [{ at: 2999, path: "datasets/last-listed.json" }]));
    gh.log.length = 0;
    const got = await octokitGitHub(TOKEN, gh.url).pullRequestFiles(OWNER, NAME, pr.number);
    assert.equal(got.length, 3000);
    assert.equal(got.at(-1)?.path, "datasets/last-listed.json");
    assert.equal(gh.calls("GET", /\/pulls\/2\/files$/).length, 30);
  });

  test("file contents come back byte for byte, from the blob API over 1 MB", async () => {
    const small = new Uint8Array([0x5b, 0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x5d]); // invalid UTF-8 kept
    const big = new Uint8Array(1_500_000).map((_, i) => (i * 31) % 251);
    gh.setFile(REPO, pr.head.sha, "datasets/small.json", small);
    gh.setFile(REPO, pr.head.sha, "datasets/big.json", big);
    gh.log.length = 0;
    const api = octokitGitHub(TOKEN, gh.url);
    assert.deepEqual(await api.fileAt(OWNER, NAME, "datasets/small.json", pr.head.sha), small);
    assert.equal(gh.calls("GET", /\/git\/blobs\//).length, 0);
    assert.deepEqual(await api.fileAt(OWNER, NAME, "datasets/big.json", pr.head.sha), big);
    assert.equal(gh.calls("GET", /\/git\/blobs\//).length, 1);
    assert.equal(await api.fileAt(OWNER, NAME, "datasets/nope.json", pr.head.sha), undefined);
    assert.equal(await api.fileAt(OWNER, NAME, "datasets/small.json", pr.base.sha), undefined);
  });

  test("the sticky comment is found among 350 comments and updated, never duplicated", async () => {
    const number = 77;
    const marker = markerLine("loraforge", "datasets/alpaca.json");
    const other = markerLine("loraforge", "datasets/other.json");
    for (let i = 0; i < 350; i++) {
      if (i === 12) {
        // A person quoting the bot's comment: same first line, not ours.
        gh.addComment(REPO, number, `${marker}\n> quoted`, { login: "Codertocat", type: "User" });
      } else if (i === 40) {
        gh.addComment(REPO, number, `${other}\nanother dataset`, {
          login: "github-actions[bot]",
          type: "Bot",
        });
      } else if (i === 120) {
        // Another bot with our marker (e.g. a different app): not ours either.
        gh.addComment(REPO, number, `${marker}\nimpostor`, {
          login: "other-app[bot]",
          type: "Bot",
        });
      } else if (i === 321) {
        gh.addComment(REPO, number, `${marker}\nqueued`, {
          login: "github-actions[bot]",
          type: "Bot",
        });
      } else {
        gh.addComment(REPO, number, `comment ${i}`, {
          login: i % 2 ? "Codertocat" : "github-actions[bot]",
          type: i % 2 ? "User" : "Bot",
        });
      }
    }
    const ours = gh.commentsOf(REPO, number)[321];
    const api = octokitGitHub(TOKEN, gh.url);
    gh.log.length = 0;
    const found = await findStickyComment(api, OWNER, NAME, number, marker, {});
    assert.equal(found?.id, ours?.id);
    assert.equal(gh.calls("GET", /\/issues\/77\/comments$/).length, 4, "read all 4 pages of 100");

    const first = await upsertStickyComment(
      api,
      OWNER,
      NAME,
      number,
      marker,
      `${marker}\nresult 1`,
      {},
    );
    assert.deepEqual(first, { id: ours?.id, action: "updated" });
    const again = await upsertStickyComment(
      api,
      OWNER,
      NAME,
      number,
      marker,
      `${marker}\nresult 1`,
      {},
    );
    assert.equal(again.action, "unchanged");
    const comments = gh.commentsOf(REPO, number);
    assert.equal(comments.length, 350);
    assert.equal(comments[321]?.body, `${marker}\nresult 1`);
    assert.equal(comments[12]?.body, `${marker}\n> quoted`, "a user's comment is never touched");
    assert.equal(comments[120]?.body, `${marker}\nimpostor`);
    assert.equal(gh.calls("POST", /comments$/).length, 0);
  });

  test("without a comment of its own it creates one, then updates that one", async () => {
    const number = 78;
    const marker = markerLine("loraforge", "datasets/alpaca.json");
    gh.addComment(REPO, number, `${marker}\nby a person`, { login: "Codertocat", type: "User" });
    const api = octokitGitHub(TOKEN, gh.url);
    const created = await upsertStickyComment(
      api,
      OWNER,
      NAME,
      number,
      marker,
      `${marker}\nqueued`,
      {},
    );
    assert.equal(created.action, "created");
    const updated = await upsertStickyComment(
      api,
      OWNER,
      NAME,
      number,
      marker,
      `${marker}\ndone`,
      {},
    );
    assert.deepEqual(updated, { id: created.id, action: "updated" });
    assert.deepEqual(
      gh.commentsOf(REPO, number).map((c) => c.body),
      [`${marker}\nby a person`, `${marker}\ndone`],
    );
  });

  test("a token that may read /user names the comment author (a personal token)", async () => {
    gh.tokens.set("ghp_person", {
      login: "release-bot",
      type: "User",
      canReadUser: true,
      canWrite: true,
    });
    assert.equal(await octokitGitHub("ghp_person", gh.url).viewerLogin(), "release-bot");
    assert.equal(await octokitGitHub(TOKEN, gh.url).viewerLogin(), undefined);
  });
});
