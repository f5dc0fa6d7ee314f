// Approval of fork pull requests is per head commit: the label added at commit A approves A
// only; a push of B takes it off and asks again. Real webhook payloads (octokit/webhooks'
// `labeled` and the fork variant of `synchronize`), the local GitHub server, no cluster.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { approvalMarker, approvedSha, forkGate } from "../../src/approval.ts";
import { pullRequestTarget, readEvent } from "../../src/event.ts";
import { octokitGitHub } from "../../src/github.ts";
import { run } from "../../src/run.ts";
import type { FakeGitHub } from "../support/github-server.ts";
import {
  baseSpec,
  inputs,
  payload,
  REPO,
  recordingReporter,
  seededGitHub,
  TOKEN,
  validDataset,
  writeEvent,
} from "../support/helpers.ts";

const LABEL = "loraforge/train";
const DATASET = "datasets/alpaca.json";
const SHA_A = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"; // the fixtures' head commit
const SHA_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const noCluster = () => {
  throw new Error("the cluster must not be touched");
};

/** The `labeled` payload of a fork PR: a maintainer adds `label` while the head is `sha`. */
function labeledFork(sha: string, label = LABEL, by = "Codertocat") {
  const fork = payload("synchronize.fork");
  const e = payload("labeled");
  e.pull_request.head = { ...fork.pull_request.head, sha };
  e.pull_request.labels = [...e.pull_request.labels, { name: label }];
  (e as Record<string, unknown>).label = { name: label };
  (e.sender as { login: string }).login = by;
  return e;
}

/** The `synchronize` payload of a fork PR whose head became `sha` (labels as the PR has them). */
function pushedFork(sha: string, labels: string[]) {
  const e = payload("synchronize.fork");
  e.pull_request.head.sha = sha;
  e.pull_request.labels = labels.map((name) => ({ name }));
  return e;
}

describe("fork approval is per head commit", () => {
  const servers: FakeGitHub[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  async function github() {
    const gh = await seededGitHub(
      payload("synchronize.fork"),
      [{ filename: DATASET, status: "modified" }],
      {},
      baseSpec("ml"),
    );
    servers.push(gh);
    for (const sha of [SHA_A, SHA_B]) gh.setFile(REPO, sha, DATASET, validDataset(20));
    return gh;
  }

  /** The gate as the action runs it for `event` in a pull_request_target workflow. */
  async function gate(gh: FakeGitHub, event: unknown) {
    const read = readEvent("pull_request_target", writeEvent(event), REPO, undefined);
    if (read.kind !== "target" || read.target.kind !== "pull_request") throw new Error("not a PR");
    const reporter = recordingReporter();
    const why = await forkGate(
      {
        inputs: inputs({ "github-token": TOKEN, mode: "submit" }),
        eventName: "pull_request_target",
        github: octokitGitHub(TOKEN, gh.url),
        reporter,
      },
      read.target,
    );
    return { why, reporter };
  }

  const labelsOnServer = (gh: FakeGitHub) =>
    ((gh.pulls.get(`${REPO}#2`)?.pr.labels ?? []) as { name: string }[]).map((l) => l.name);

  const record = (gh: FakeGitHub) =>
    gh.commentsOf(REPO, 2).filter((c) => c.body.startsWith(approvalMarker(LABEL)));

  test("approve at A, push B: B is not trained until the label is added again at B", async () => {
    const gh = await github();
    // The maintainer adds the label while the head is A: approved, and recorded for A.
    const labeled = labeledFork(SHA_A);
    gh.addPull(REPO, labeled.pull_request, [{ filename: DATASET, status: "modified" }]);
    const a = await gate(gh, labeled);
    assert.equal(a.why, undefined, "the labeled event approves its head commit");
    assert.equal(record(gh).length, 1);
    assert.equal(approvedSha(record(gh)[0]?.body ?? ""), SHA_A);
    assert.equal(record(gh)[0]?.user.login, "github-actions[bot]");

    // The fork pushes B. The label is still on the PR (in the payload too), but it approved A.
    const pushed = pushedFork(SHA_B, ["bug", LABEL]);
    gh.addPull(REPO, pushed.pull_request, [{ filename: DATASET, status: "modified" }]);
    const reporter = recordingReporter();
    const outcome = await run({
      inputs: inputs({ "github-token": TOKEN, mode: "all" }),
      env: { eventName: "pull_request_target", eventPath: writeEvent(pushed), repository: REPO },
      reporter,
      github: octokitGitHub(TOKEN, gh.url),
      openStore: noCluster,
    });
    assert.equal(outcome.result, "validate-only", "B is validated, never submitted");
    assert.deepEqual(labelsOnServer(gh), ["bug"], "the stale label was taken off");
    const warning = reporter.lines.find((l) => l.level === "warning")?.message ?? "";
    assert.match(warning, /approved commit ec26c3e, not the head commit bbbbbbb/);
    assert.equal(record(gh).length, 1, "the record is updated, not duplicated");
    assert.match(record(gh)[0]?.body ?? "", /the head is now bbbbbbb, pushed after the approval/);
    assert.equal(approvedSha(record(gh)[0]?.body ?? ""), SHA_A, "still only A is approved");

    // A re-run of B's workflow (the label is gone now) still only validates.
    const again = await gate(gh, pushedFork(SHA_B, ["bug"]));
    assert.match(again.why ?? "", /has not been approved for training/);

    // The maintainer reviews B and adds the label again: B is approved, and the record says so.
    const relabeled = labeledFork(SHA_B);
    gh.addPull(REPO, relabeled.pull_request, [{ filename: DATASET, status: "modified" }]);
    assert.equal((await gate(gh, relabeled)).why, undefined);
    assert.equal(approvedSha(record(gh)[0]?.body ?? ""), SHA_B);
    // Later events for B itself (a re-run, a reopen) keep the approval and the label.
    assert.equal((await gate(gh, pushedFork(SHA_B, [LABEL]))).why, undefined);
    assert.ok(labelsOnServer(gh).includes(LABEL));
  });

  test("the label without a record of its commit (added before, or by hand-edited history) is not an approval", async () => {
    const gh = await github();
    const pushed = pushedFork(SHA_B, [LABEL]);
    gh.addPull(REPO, pushed.pull_request, []);
    // The PR's author forges a record: the marker and B's SHA, in their own comment.
    gh.addComment(
      REPO,
      2,
      `${approvalMarker(LABEL)}\n<!-- loraforge:approved-sha:${SHA_B} -->\nlooks approved`,
      { login: "forker", type: "User" },
    );
    const { why } = await gate(gh, pushed);
    assert.match(
      why ?? "",
      /approved an earlier commit \(no record\), not the head commit bbbbbbb/,
    );
    assert.deepEqual(labelsOnServer(gh), []);
  });

  test("another label being added approves nothing", async () => {
    const gh = await github();
    const e = labeledFork(SHA_B, "documentation");
    gh.addPull(REPO, e.pull_request, []);
    const { why } = await gate(gh, e);
    assert.match(why ?? "", /has not been approved for training/);
    assert.equal(record(gh).length, 0);
  });

  test("a PR fetched by number (workflow_run, report) is approved by the record alone", async () => {
    const gh = await github();
    const labeled = labeledFork(SHA_A);
    gh.addPull(REPO, labeled.pull_request, []);
    await gate(gh, labeled);
    const target = pullRequestTarget(
      await octokitGitHub(TOKEN, gh.url).pullRequest("Codertocat", "Hello-World", 2),
    );
    assert.equal(target.labeled, undefined);
    const why = await forkGate(
      {
        inputs: inputs({ "github-token": TOKEN, mode: "report" }),
        eventName: "workflow_run",
        github: octokitGitHub(TOKEN, gh.url),
        reporter: recordingReporter(),
      },
      target,
    );
    assert.equal(why, undefined);
  });
});
