// Submit, cancel, wait and report against a real kube-apiserver (status driven by the test)
// and the local GitHub server.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { LoraFineTuneStatus } from "@loraforge/crds";
import { eventually } from "@loraforge/test-k8s";
import { parseSpecText } from "../../src/basespec.ts";
import { PullRequestSchema, pullRequestTarget } from "../../src/event.ts";
import { octokitGitHub } from "../../src/github.ts";
import { connectKube, kubeRunStore } from "../../src/k8s.ts";
import { LABEL } from "../../src/labels.ts";
import { codeHtml } from "../../src/markdown.ts";
import { type Deps, run } from "../../src/run.ts";
import { buildRun } from "../../src/runs.ts";
import { type ActionCluster, actionCluster } from "../support/cluster.ts";
import type { FakeGitHub } from "../support/github-server.ts";
import {
  baseSpec,
  inputs,
  payload,
  REPO,
  recordingReporter,
  SPEC_PATH,
  seededGitHub,
  succeeded,
  TOKEN,
  validDataset,
  writeEvent,
} from "../support/helpers.ts";

const DATASET = "datasets/alpaca.json";
const NEW_SHA = "1111111111111111111111111111111111111111";

describe("LoraFineTune runs on a real API server", () => {
  let k: ActionCluster;
  let gh: FakeGitHub;
  const event = payload("synchronize");
  const pr = event.pull_request;

  before(async () => {
    k = await actionCluster();
    gh = await seededGitHub(
      event,
      [{ filename: DATASET, status: "modified" }],
      { [DATASET]: validDataset(50) },
      baseSpec(k.namespace),
    );
    // The PR also edits the spec: a run must never use it (image, resources, settings come from base).
    gh.setFile(
      REPO,
      pr.head.sha,
      SPEC_PATH,
      baseSpec(k.namespace).replace("epochs: 1", "epochs: 99"),
    );
  });
  after(async () => {
    await gh?.stop();
    await k?.stop();
  });

  function deps(
    over: Partial<Deps> & {
      mode: string;
      eventPath: string;
      eventName?: string;
      extra?: Record<string, string>;
    },
  ) {
    const reporter = recordingReporter();
    const d: Deps = {
      inputs: inputs({
        "github-token": TOKEN,
        mode: over.mode,
        "poll-interval": "1",
        ...(over.extra ?? {}),
      }),
      env: {
        eventName: over.eventName ?? "pull_request",
        eventPath: over.eventPath,
        repository: REPO,
      },
      reporter,
      github: octokitGitHub(TOKEN, gh.url),
      openStore: (ns) => kubeRunStore(connectKube(k.cluster.kubeconfigPath), ns),
    };
    return { d, reporter };
  }

  const prSelector = `${LABEL.pullRequest}=2`;
  let firstRun = "";

  test("submit: the base branch's spec, the PR's dataset pinned to the head SHA, labels; a queued comment", async () => {
    const { d, reporter } = deps({ mode: "submit", eventPath: writeEvent(event) });
    const outcome = await run(d);
    assert.equal(reporter.failed, undefined, reporter.failed);
    assert.equal(outcome.result, "submitted");
    const runs = await k.list(prSelector);
    assert.equal(runs.length, 1);
    const created = runs[0]?.raw as {
      metadata: {
        name: string;
        labels: Record<string, string>;
        annotations: Record<string, string>;
      };
      spec: { training: { epochs: number }; dataset: { source: unknown; valSetSize: number } };
    };
    firstRun = created.metadata.name;
    assert.match(firstRun, /^hello-alpaca-pr2-ec26c3e-[0-9a-f]{6}$/);
    assert.equal(reporter.outputs["run-name"], firstRun);
    assert.equal(created.spec.training.epochs, 1, "from the base commit, not the PR's 99");
    assert.equal(created.spec.dataset.valSetSize, 10);
    assert.deepEqual(created.spec.dataset.source, {
      git: {
        repo: "https://github.com/Codertocat/Hello-World.git",
        ref: pr.head.sha,
        path: DATASET,
      },
    });
    assert.equal(created.metadata.labels[LABEL.repository], "Codertocat_Hello-World");
    assert.equal(created.metadata.labels[LABEL.sha], pr.head.sha);
    assert.equal(created.metadata.labels[LABEL.baseBranch], "master");
    assert.equal(created.metadata.labels.team, "ml", "the base spec's own labels are kept");
    assert.equal(created.metadata.annotations["loraforge.dev/dataset-path"], DATASET);
    const comments = gh.commentsOf(REPO, 2);
    assert.equal(comments.length, 1);
    assert.match(comments[0]?.body ?? "", /⏳ \*\*Queued\*\* — phase Pending/);
  });

  test("submit again (a re-run of the job) changes nothing and adds no comment", async () => {
    const { d, reporter } = deps({ mode: "submit", eventPath: writeEvent(event) });
    const outcome = await run(d);
    assert.equal(outcome.runs[0]?.created, false);
    assert.match(
      reporter.lines.map((l) => l.message).join("\n"),
      /already exists \(re-run of the same commit\)/,
    );
    assert.deepEqual(
      (await k.list(prSelector)).map((r) => r.name),
      [firstRun],
    );
    assert.equal(gh.commentsOf(REPO, 2).length, 1);
  });

  test("a new commit cancels the superseded unfinished run and keeps finished ones", async () => {
    // A finished run of an older commit of the same PR: history, not cancelled.
    const old = payload("synchronize");
    old.pull_request.head.sha = "2222222222222222222222222222222222222222";
    const oldTarget = pullRequestTarget(PullRequestSchema.parse(old.pull_request));
    const store = kubeRunStore(connectKube(k.cluster.kubeconfigPath), k.namespace);
    const finished = buildRun(
      parseSpecText(baseSpec(k.namespace), "spec"),
      oldTarget,
      DATASET,
      k.namespace,
      SPEC_PATH,
    );
    await store.create(finished);
    await k.patchStatus(finished.metadata.name, { phase: "Succeeded" });

    const next = payload("synchronize");
    next.pull_request.head.sha = NEW_SHA;
    gh.setFile(REPO, NEW_SHA, DATASET, validDataset(60));
    const { d, reporter } = deps({ mode: "submit", eventPath: writeEvent(next) });
    const outcome = await run(d);
    const newRun = outcome.runs[0]?.run ?? "";
    assert.match(newRun, /^hello-alpaca-pr2-1111111-/);
    assert.deepEqual(outcome.runs[0]?.cancelled, [firstRun]);
    assert.match(
      reporter.lines.map((l) => l.message).join("\n"),
      new RegExp(`cancelled superseded run ${k.namespace}/${firstRun} \\(deleted\\)`),
    );
    await eventually("the superseded run to be gone", async () => {
      const names = (await k.list(prSelector)).map((r) => r.name).sort();
      return names.includes(firstRun) ? undefined : names;
    });
    assert.deepEqual(
      (await k.list(prSelector)).map((r) => r.name).sort(),
      [finished.metadata.name, newRun].sort(),
    );
    const comments = gh.commentsOf(REPO, 2);
    assert.equal(comments.length, 1, "still one sticky comment");
    assert.match(comments[0]?.body ?? "", /1111111/);
    assert.match(comments[0]?.body ?? "", new RegExp(`cancelled \\(deleted\\): \`${firstRun}\``));
  });

  test("report (a later workflow, PR named by input): waits, logs progress, posts the result against the base branch", async () => {
    // The baseline: a finished run of the base branch (what a push-triggered run records).
    const store = kubeRunStore(connectKube(k.cluster.kubeconfigPath), k.namespace);
    const spec = parseSpecText(baseSpec(k.namespace), "spec");
    const baseline = buildRun(
      spec,
      {
        kind: "push",
        owner: "Codertocat",
        repo: "Hello-World",
        branch: "master",
        before: "3333333333333333333333333333333333333333",
        headSha: pr.base.sha,
        headCloneUrl: "https://github.com/Codertocat/Hello-World.git",
      },
      DATASET,
      k.namespace,
      SPEC_PATH,
    );
    await store.create(baseline);
    await k.patchStatus(baseline.metadata.name, succeeded(1.62, 0.4));

    // The report workflow runs later with the PR number as input (its event has no PR).
    const next = payload("synchronize");
    next.pull_request.head.sha = NEW_SHA;
    gh.addPull(REPO, next.pull_request, [{ filename: DATASET, status: "modified" }]);
    const name = (await k.list(`${LABEL.sha}=${NEW_SHA}`))[0]?.name ?? "";
    assert.ok(name);
    const { d, reporter } = deps({
      mode: "report",
      eventName: "workflow_run",
      eventPath: writeEvent({ action: "completed", repository: next.repository }),
      extra: { "pull-request": "2", timeout: "2m" },
    });
    const driving = (async () => {
      await new Promise((r) => setTimeout(r, 1500));
      const running: LoraFineTuneStatus = {
        phase: "Running",
        startTime: "2026-11-27T10:00:00Z",
        progress: { step: 50, totalSteps: 100, percent: 50, loss: 1.7, etaSeconds: 600 },
      };
      await k.patchStatus(name, running);
      await eventually("the action to see the run Running", async () =>
        reporter.lines.some((l) => l.message.includes("phase Running")) ? true : undefined,
      );
      await k.patchStatus(name, {
        ...succeeded(1.5, 0.42, 4, {
          lossShift: -0.12,
          rougeL: 0.51,
          selectedStep: 800,
          output: name,
        }),
        startTime: "2026-11-27T10:00:00Z",
        completionTime: "2026-11-27T10:31:05Z",
      });
    })();
    const outcome = await run(d);
    await driving;
    assert.equal(reporter.failed, undefined, reporter.failed);
    assert.equal(outcome.result, "reported");
    assert.equal(reporter.outputs.phase, "Succeeded");
    const metrics = JSON.parse(reporter.outputs.metrics ?? "[]");
    assert.equal(metrics[0].baseline.run, baseline.metadata.name);
    assert.equal(metrics[0].tuned.exactMatch, 0.42);
    const log = reporter.lines.map((l) => l.message).join("\n");
    assert.match(log, /phase Running, step 50\/100 \(50%\), loss 1\.7000, ETA 10m/);
    assert.match(log, /phase Succeeded/);
    const comments = gh.commentsOf(REPO, 2);
    assert.equal(comments.length, 1);
    const body = comments[0]?.body ?? "";
    assert.match(body, /✅ \*\*Succeeded\*\*/);
    assert.match(
      body,
      new RegExp(
        `\\| metric \\| base branch \\(\`${baseline.metadata.name}\`\\) \\| this PR \\| Δ \\|`,
      ),
    );
    assert.match(body, /\| eval loss \| 1\.6200 \| 1\.5000 \| -0\.1200 🟢 \|/);
    assert.match(body, /\| run time \| 42m 30s \| 31m 5s \| −11m 25s \|/);
    assert.match(body, /\| training loss \| 1\.4000 \| 1\.0300 \| -0\.3700 🟢 \|/);
    assert.match(
      body,
      /\| selected checkpoint \| step 600 \(lowestTrainLoss\) \| step 800 \(lowestTrainLoss\) \| \|/,
    );
    assert.match(body, /x-axis "step" \[200, 400, 600, 800\]/);
    assert.equal(reporter.summaries.at(-1), body, "the job summary has the same content");
    if (process.env.LORAFORGE_SAMPLE_COMMENT) {
      const { writeFileSync } = await import("node:fs");
      writeFileSync(process.env.LORAFORGE_SAMPLE_COMMENT, body);
    }
  });

  test("a run that does not finish in time: the step warns, succeeds, and the comment says it goes on", async () => {
    const next = payload("synchronize");
    next.pull_request.head.sha = NEW_SHA;
    const name = (await k.list(`${LABEL.sha}=${NEW_SHA}`))[0]?.name ?? "";
    await k.patchStatus(name, { phase: "Running", progress: { step: 10, totalSteps: 100 } });
    const { d, reporter } = deps({
      mode: "report",
      eventPath: writeEvent(next),
      extra: { timeout: "2s" },
    });
    const outcome = await run(d);
    assert.equal(outcome.result, "timeout");
    assert.equal(reporter.failed, undefined);
    assert.equal(reporter.outputs.phase, "Running");
    assert.match(
      reporter.lines
        .filter((l) => l.level === "warning")
        .map((l) => l.message)
        .join("\n"),
      /Still in progress after waiting 2s/,
    );
    assert.match(gh.commentsOf(REPO, 2)[0]?.body ?? "", /🏃 \*\*Running\*\*[\s\S]*report workflow/);
  });

  test("a failed run fails the step after the comment shows why", async () => {
    const next = payload("synchronize");
    next.pull_request.head.sha = NEW_SHA;
    const name = (await k.list(`${LABEL.sha}=${NEW_SHA}`))[0]?.name ?? "";
    await k.patchStatus(name, {
      phase: "Failed",
      failure: {
        reason: "NaNLoss",
        message: "step 12: loss is NaN in layers.3.self_attn.q_proj",
        exitCode: 4,
      },
    });
    const { d, reporter } = deps({ mode: "report", eventPath: writeEvent(next) });
    await run(d);
    assert.match(reporter.failed ?? "", /1 run\(s\) did not succeed/);
    assert.equal(reporter.outputs.phase, "Failed");
    const body = gh.commentsOf(REPO, 2)[0]?.body ?? "";
    assert.match(body, /❌ \*\*Failed\*\* — `NaNLoss` \(exit code 4\)/);
    assert.match(body, /loss is NaN in layers\.3\.self_attn\.q_proj/);
  });

  test("a fork PR trains the commit the label was added at; a later push waits for a new label", async () => {
    const A = "9999999999999999999999999999999999999999";
    const B = "8888888888888888888888888888888888888888";
    const forked = payload("synchronize.fork");
    /** octokit/webhooks' `labeled` payload, made a fork PR (#9) labelled at `sha`. */
    const labeledAt = (sha: string) => {
      const e = payload("labeled");
      e.pull_request.number = 9;
      e.pull_request.head = { ...forked.pull_request.head, sha };
      e.pull_request.labels = [{ name: "loraforge/train" }];
      (e as Record<string, unknown>).label = { name: "loraforge/train" };
      return e;
    };
    const submit = async (e: ReturnType<typeof payload>) => {
      gh.addPull(REPO, e.pull_request, [{ filename: DATASET, status: "modified" }]);
      const { d, reporter } = deps({
        mode: "submit",
        eventName: "pull_request_target",
        eventPath: writeEvent(e),
      });
      return { outcome: await run(d), reporter };
    };
    for (const sha of [A, B]) gh.setFile(REPO, sha, DATASET, validDataset(20));

    const approved = await submit(labeledAt(A));
    assert.equal(approved.outcome.result, "submitted", approved.reporter.failed);
    const created = (await k.list(`${LABEL.sha}=${A}`))[0]?.raw as {
      spec: { dataset: { source: { git: { repo: string; ref: string } } } };
    };
    assert.equal(created.spec.dataset.source.git.repo, "https://github.com/forker/Hello-World.git");
    assert.equal(created.spec.dataset.source.git.ref, A);

    // The fork pushes B; the label is still on the PR, but it approved A.
    const pushed = payload("synchronize.fork");
    pushed.pull_request.number = 9;
    pushed.pull_request.head.sha = B;
    pushed.pull_request.labels = [{ name: "loraforge/train" }];
    const stale = await submit(pushed);
    assert.equal(stale.outcome.result, "validate-only");
    assert.deepEqual(await k.list(`${LABEL.sha}=${B}`), [], "nothing runs for B");
    assert.equal((await k.list(`${LABEL.sha}=${A}`)).length, 1, "A's run is left alone");

    // Re-approved at B: B trains.
    const again = await submit(labeledAt(B));
    assert.equal(again.outcome.result, "submitted", again.reporter.failed);
    assert.equal((await k.list(`${LABEL.sha}=${B}`)).length, 1);
  });

  test("two changed datasets: two runs, two sticky comments, one output line each", async () => {
    const two = payload("opened");
    two.pull_request.number = 5;
    two.pull_request.head.sha = "5555555555555555555555555555555555555555";
    gh.addPull(REPO, two.pull_request, [
      { filename: "datasets/a.json", status: "added" },
      { filename: "datasets/b.jsonl", status: "modified" },
    ]);
    gh.setFile(REPO, two.pull_request.head.sha, "datasets/a.json", validDataset(20));
    gh.setFile(
      REPO,
      two.pull_request.head.sha,
      "datasets/b.jsonl",
      `${Array.from({ length: 15 }, (_, i) => JSON.stringify({ instruction: `Square ${i}.`, output: String(i * i) })).join("\n")}\n`,
    );
    const { d, reporter } = deps({ mode: "submit", eventPath: writeEvent(two) });
    const outcome = await run(d);
    assert.equal(outcome.result, "submitted", reporter.failed);
    const names = (await k.list(`${LABEL.pullRequest}=5`)).map((r) => r.name).sort();
    assert.equal(names.length, 2);
    assert.deepEqual(reporter.outputs["run-name"]?.split("\n").sort(), names);
    const comments = gh.commentsOf(REPO, 5);
    assert.equal(comments.length, 2);
    assert.ok(comments[0]?.body.includes(codeHtml("datasets/a.json")));
    assert.ok(comments[1]?.body.includes(codeHtml("datasets/b.jsonl")));
  });
});
