// run() up to validation, without a cluster: no-op, annotations, failing before submit, forks.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { octokitGitHub } from "../../src/github.ts";
import { codeHtml } from "../../src/markdown.ts";
import { run } from "../../src/run.ts";
import type { FakeGitHub } from "../support/github-server.ts";
import {
  baseSpec,
  INVALID_JSONL,
  inputs,
  manyFiles,
  payload,
  READ_ONLY_TOKEN,
  REPO,
  recordingReporter,
  SPEC_PATH,
  seededGitHub,
  TOKEN,
  validDataset,
  writeEvent,
} from "../support/helpers.ts";

const noCluster = () => {
  throw new Error("the cluster must not be touched");
};

describe("validation (no cluster)", () => {
  const servers: FakeGitHub[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  async function setup(
    name: Parameters<typeof payload>[0],
    files: { filename: string; status: string }[],
    datasets: Record<string, string>,
  ) {
    const event = payload(name);
    const gh = await seededGitHub(event, files, datasets, baseSpec("ml"));
    servers.push(gh);
    return { event, gh, eventPath: writeEvent(event) };
  }

  /** Runs the action with a recording reporter against `gh`; any cluster access throws. */
  async function runOffline(
    gh: FakeGitHub,
    o: { token: string; mode: string; eventName: string; eventPath: string },
  ) {
    const reporter = recordingReporter();
    const outcome = await run({
      inputs: inputs({ "github-token": o.token, mode: o.mode }),
      env: { eventName: o.eventName, eventPath: o.eventPath },
      reporter,
      github: octokitGitHub(o.token, gh.url),
      openStore: noCluster,
    });
    return { reporter, outcome };
  }

  test("no dataset among the changed files is a clear no-op", async () => {
    const { gh, eventPath } = await setup(
      "synchronize",
      [{ filename: "README.md", status: "modified" }],
      {},
    );
    const { reporter, outcome } = await runOffline(gh, {
      token: TOKEN,
      mode: "all",
      eventName: "pull_request",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "noop");
    assert.equal(reporter.outputs.result, "noop");
    assert.equal(reporter.outputs["run-name"], "");
    assert.match(
      reporter.lines.find((l) => l.level === "notice")?.message ?? "",
      /No dataset changed in pull request #2/,
    );
    assert.equal(reporter.failed, undefined);
    assert.equal(gh.calls("GET", /\/contents\//).length, 0, "nothing read");
  });

  test("an invalid dataset gets file/line annotations, a summary, a comment, and fails before submit", async () => {
    const files = manyFiles(250, [
      { at: 10, path: "datasets/good.json" },
      { at: 230, path: "datasets/bad.jsonl" },
    ]);
    const { gh, eventPath } = await setup("synchronize", files, {
      "datasets/good.json": validDataset(40),
      "datasets/bad.jsonl": INVALID_JSONL,
    });
    const { reporter, outcome } = await runOffline(gh, {
      token: TOKEN,
      mode: "all",
      eventName: "pull_request",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "invalid");
    const errors = reporter.lines.filter((l) => l.level === "error");
    assert.deepEqual(
      errors.map((e) => [e.where?.file, e.where?.line]),
      [
        ["datasets/bad.jsonl", 3],
        ["datasets/bad.jsonl", 5],
      ],
    );
    assert.match(errors[0]?.message ?? "", /record 2, field output: is missing/);
    assert.match(errors[1]?.message ?? "", /field input/);
    assert.match(
      reporter.failed ?? "",
      /1 of 2 changed datasets are invalid \(datasets\/bad.jsonl\); nothing was submitted/,
    );
    const summary = reporter.summaries.join("\n");
    assert.ok(summary.includes(`| ${codeHtml("datasets/good.json")} | ✅ valid | 40 | 40 |`));
    assert.ok(summary.includes(`| ${codeHtml("datasets/bad.jsonl")} | ❌ invalid`));
    assert.ok(
      summary.includes(`**error** line 3: ${codeHtml("record 2, field output: is missing")}`),
    );
    // The dataset was read at the head commit, and the spec at the base commit.
    const event = payload("synchronize");
    assert.ok(
      gh
        .calls("GET", /\/contents\/datasets\/bad.jsonl$/)
        .every((c) => c.query.ref === event.pull_request.head.sha),
    );
    assert.ok(
      gh
        .calls("GET", new RegExp(`/contents/${SPEC_PATH}$`))
        .every((c) => c.query.ref === event.pull_request.base.sha),
    );
    const comments = gh.commentsOf(REPO, 2);
    assert.equal(comments.length, 1, "one comment, for the invalid dataset");
    assert.match(comments[0]?.body ?? "", /Invalid dataset/);
  });

  test("validate mode checks and reports but never comments or submits", async () => {
    const { gh, eventPath } = await setup(
      "opened",
      [{ filename: "datasets/a.json", status: "added" }],
      {
        "datasets/a.json": validDataset(30),
      },
    );
    const { reporter, outcome } = await runOffline(gh, {
      token: TOKEN,
      mode: "validate",
      eventName: "pull_request",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "validated");
    assert.equal(reporter.failed, undefined);
    assert.match(reporter.summaries.join("\n"), /train \/ val[\s\S]*24 \/ 6/);
    assert.equal(gh.calls("POST", /comments$/).length, 0);
  });

  test("a fork PR on pull_request (no secrets, read-only token) only validates, and says why", async () => {
    const { gh, eventPath } = await setup(
      "synchronize.fork",
      [{ filename: "datasets/a.json", status: "modified" }],
      {
        "datasets/a.json": validDataset(30),
      },
    );
    const { reporter, outcome } = await runOffline(gh, {
      token: READ_ONLY_TOKEN,
      mode: "all",
      eventName: "pull_request",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "validate-only");
    assert.equal(reporter.outputs.result, "validate-only");
    assert.equal(reporter.failed, undefined);
    const warning = reporter.lines.find((l) => l.level === "warning")?.message ?? "";
    assert.match(warning, /comes from the fork forker\/Hello-World/);
    assert.match(warning, /no secrets and a read-only token/);
    assert.match(warning, /loraforge\/train/);
    assert.match(reporter.summaries.join("\n"), /comes from the fork/);
    assert.equal(gh.calls("POST", /comments$/).length + gh.calls("PATCH", /comments/).length, 0);
  });

  test("a fork PR in a privileged workflow without the trusted label only validates", async () => {
    const { gh, eventPath } = await setup(
      "synchronize.fork",
      [{ filename: "datasets/a.json", status: "modified" }],
      {
        "datasets/a.json": validDataset(30),
      },
    );
    const { reporter, outcome } = await runOffline(gh, {
      token: TOKEN,
      mode: "submit",
      eventName: "pull_request_target",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "validate-only");
    assert.match(
      reporter.lines.find((l) => l.level === "warning")?.message ?? "",
      /has not been approved for training: a maintainer adds the label `loraforge\/train`/,
    );
  });

  test("bad inputs name the input", () => {
    assert.throws(
      () => inputs({ "github-token": TOKEN, mode: "deploy" }),
      /input "mode" must be one of validate, submit, report, all/,
    );
    assert.throws(
      () => inputs({ "github-token": TOKEN, timeout: "soon" }),
      /input "timeout" "soon" is not a duration/,
    );
    assert.throws(
      () => inputs({ "github-token": TOKEN, "pull-request": "12a" }),
      /input "pull-request" must be a pull request number/,
    );
    assert.throws(() => inputs({ mode: "all" }), /input "github-token" is empty/);
  });

  test("a push to a branch finds its changed datasets through the comparison, all pages", async () => {
    const event = payload("synchronize");
    const gh = await seededGitHub(event, [], {}, baseSpec("ml"));
    servers.push(gh);
    const before = event.pull_request.base.sha;
    const after = event.pull_request.head.sha;
    gh.comparisons.set(
      `${REPO}@${before}...${after}`,
      manyFiles(230, [{ at: 205, path: "datasets/a.json" }]),
    );
    gh.setFile(REPO, after, "datasets/a.json", validDataset(12));
    const eventPath = writeEvent({
      ref: "refs/heads/master",
      before,
      after,
      repository: event.repository,
    });
    const { outcome } = await runOffline(gh, {
      token: TOKEN,
      mode: "validate",
      eventName: "push",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "validated");
    assert.deepEqual(outcome.datasets, ["datasets/a.json"]);
    assert.equal(gh.calls("GET", /\/compare\//).length, 3);
  });

  test("a PR over GitHub's 3,000-file limit: datasets listed within it are found, and it warns", async () => {
    const event = payload("synchronize");
    event.pull_request.changed_files = 3500;
    const files = manyFiles(3500, [
      { at: 2990, path: "datasets/seen.json" },
      { at: 3200, path: "datasets/unseen.json" },
    ]);
    const gh = await seededGitHub(
      event,
      files,
      { "datasets/seen.json": validDataset(20) },
      baseSpec("ml"),
    );
    servers.push(gh);
    const { reporter, outcome } = await runOffline(gh, {
      token: TOKEN,
      mode: "validate",
      eventName: "pull_request",
      eventPath: writeEvent(event),
    });
    assert.deepEqual(outcome.datasets, ["datasets/seen.json"]);
    assert.match(
      reporter.lines.find((l) => l.level === "warning")?.message ?? "",
      /changes 3500 files; GitHub lists only the first 3000/,
    );
  });

  test("a token that may not comment costs the comment, with a warning, not the run", async () => {
    const { gh, eventPath } = await setup(
      "synchronize",
      [{ filename: "datasets/bad.jsonl", status: "modified" }],
      {
        "datasets/bad.jsonl": INVALID_JSONL,
      },
    );
    const { reporter, outcome } = await runOffline(gh, {
      token: READ_ONLY_TOKEN,
      mode: "all",
      eventName: "pull_request",
      eventPath: eventPath,
    });
    assert.equal(outcome.result, "invalid");
    assert.match(reporter.failed ?? "", /changed datasets are invalid/);
    assert.match(
      reporter.lines.find((l) => l.level === "warning")?.message ?? "",
      /could not update the pull request comment \(HTTP 403: Resource not accessible by integration/,
    );
    assert.equal(gh.commentsOf(REPO, 2).length, 0);
  });
});
