// The comment: result table, chart, truncation under GitHub's limit; names and labels.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LoraFineTuneStatus } from "@loraforge/crds";
import type { RunView } from "../src/k8s.ts";
import { labelValue, runName } from "../src/labels.ts";
import { lossChart, markerLine, renderInvalid, renderResult, resultTable } from "../src/render.ts";
import { GITHUB_COMMENT_LIMIT } from "../src/truncate.ts";
import { succeeded } from "./helpers.ts";

const ctx = {
  marker: "loraforge",
  datasetPath: "datasets/alpaca.json",
  namespace: "ml",
  sha: "ec26c3e",
  baseBranch: "master",
};

function view(name: string, status: LoraFineTuneStatus): RunView {
  return { name, namespace: "ml", uid: "u", labels: {}, annotations: {}, status };
}

/** Every fence opened is closed, and the marker opens the body. */
function wellFormed(text: string) {
  assert.ok(text.startsWith(markerLine("loraforge", "datasets/alpaca.json")));
  // CommonMark: a fence closes only with a line of at least as many backticks.
  let open = "";
  for (const line of text.split("\n")) {
    const m = /^\s*(`{3,})/.exec(line);
    if (!m?.[1]) continue;
    if (open === "") open = m[1];
    else if (m[1].length >= open.length && line.trim() === m[1]) open = "";
  }
  assert.equal(open, "", "every code fence is closed");
  assert.equal((text.match(/<details/g) ?? []).length, (text.match(/<\/details>/g) ?? []).length);
}

describe("the comment", () => {
  test("the table compares this PR with the base branch, with the better direction per metric", () => {
    const table = resultTable(view("pr", succeeded(1.5, 0.42)), view("base", succeeded(1.6, 0.4)));
    assert.match(table, /\| eval loss \| 1\.6000 \| 1\.5000 \| -0\.1000 🟢 \|/);
    assert.match(table, /\| exact match \| 40\.0% \| 42\.0% \| \+2\.0 pp 🟢 \|/);
    assert.match(table, /\| prompt repetition \| 2\.0% \| 2\.0% \| ±0 pp \|/);
    assert.match(table, /\| training loss \| 1\.4000 \| 1\.4000 \|/);
    assert.match(table, /\| selected checkpoint \| step 600 \(lowestTrainLoss\) \|/);
    assert.match(table, /\| run time \| 42m 30s \| 42m 30s \|/);
    assert.match(table, /pvc:\/\/runs\/hello-alpaca-master-f95f852-ee02ac\/adapter` \(4\.0 MiB/);
    const worse = resultTable(view("pr", succeeded(1.7, 0.3)), view("base", succeeded(1.6, 0.4)));
    assert.match(worse, /\| eval loss \| 1\.6000 \| 1\.7000 \| \+0\.1000 🔴 \|/);
    assert.match(worse, /\| exact match \| 40\.0% \| 30\.0% \| -10\.0 pp 🔴 \|/);
  });

  test("without a baseline the base column is empty and the comment says why", () => {
    const { text } = renderResult(ctx, view("pr", succeeded(1.5, 0.42)), undefined, {
      chart: true,
    });
    assert.match(text, /\| eval loss \| — \| 1\.5000 \| — \|/);
    assert.match(text, /No successful run labelled with the base branch `master`/);
    assert.match(text, /Base model without the adapter: eval loss 2\.4000, exact match 5\.0%/);
  });

  test("the loss chart is a Mermaid xychart of the checkpoints", () => {
    const chart = lossChart(view("pr", succeeded(1.5, 0.4)));
    assert.match(chart, /```mermaid\nxychart-beta/);
    assert.match(chart, /x-axis "step" \[200, 400, 600\]/);
    assert.match(chart, /line \[1\.9, 1\.65, 1\.4\]/);
    assert.match(chart, /line \[1\.95, 1\.75, 1\.55\]/);
    assert.equal(lossChart(view("pr", succeeded(1.5, 0.4, 1))), "", "one point is no curve");
  });

  test("a huge failure log is cut under GitHub's limit, fences closed, the table kept", () => {
    const status: LoraFineTuneStatus = {
      ...succeeded(1.5, 0.4, 1000),
      phase: "Failed",
      failure: {
        reason: "NaNLoss",
        message: "```\nlayer 31 q_proj: inf\n".repeat(3000),
        exitCode: 4,
      },
    };
    const { text, truncated } = renderResult(
      ctx,
      view("pr", status),
      view("base", succeeded(1.6, 0.4)),
      { chart: true },
    );
    assert.ok(truncated);
    assert.ok(text.length <= GITHUB_COMMENT_LIMIT, `${text.length} characters`);
    assert.ok(text.length > 50_000, "still uses the room it has");
    wellFormed(text);
    assert.match(text, /❌ \*\*Failed\*\* — `NaNLoss` \(exit code 4\)/);
    assert.match(text, /\| eval loss \| 1\.6000 \| 1\.5000 \|/);
    assert.doesNotMatch(text, /xychart-beta/, "the optional chart goes first");
    assert.match(text, /cut to fit GitHub's size limit/);
  });

  test("thousands of validation problems are cut at a line, <details> closed", () => {
    const lines = [
      "| dataset | result |",
      "| --- | --- |",
      "",
      "<details open><summary>Problems</summary>",
      "",
    ];
    for (let i = 0; i < 5000; i++)
      lines.push(`- **error** line ${i + 1}: record ${i}, field output: is missing ✂️`);
    lines.push("", "</details>");
    const text = renderInvalid(ctx, lines.join("\n"));
    assert.ok(text.length <= GITHUB_COMMENT_LIMIT);
    wellFormed(text);
    assert.match(text, /- … \(cut\)/);
  });

  test("a short comment is not touched", () => {
    const { text, truncated } = renderResult(ctx, view("pr", succeeded(1.5, 0.4)), undefined, {
      chart: true,
    });
    assert.equal(truncated, false);
    assert.match(text, /xychart-beta/);
    wellFormed(text);
  });
});

describe("names and labels", () => {
  test("label values are sanitized, bounded, and stay distinct", () => {
    assert.equal(labelValue("Codertocat/Hello-World"), "Codertocat_Hello-World");
    assert.equal(labelValue("feature/ünïcode branch!"), "feature__n_code_branch");
    const long = labelValue(`org/${"x".repeat(100)}`);
    assert.ok(long.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(long));
    assert.notEqual(labelValue(`org/${"x".repeat(100)}a`), labelValue(`org/${"x".repeat(100)}b`));
    assert.match(labelValue("///"), /^x-[0-9a-f]{12}$/);
  });

  test("the run name is deterministic, a DNS label, and depends on PR, commit and dataset", () => {
    const sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    const a = runName("hello-alpaca", "pr2", sha, "datasets/a.json");
    assert.equal(a, runName("hello-alpaca", "pr2", sha, "datasets/a.json"));
    assert.match(a, /^hello-alpaca-pr2-ec26c3e-[0-9a-f]{6}$/);
    assert.notEqual(a, runName("hello-alpaca", "pr2", sha, "datasets/b.json"));
    assert.notEqual(a, runName("hello-alpaca", "pr3", sha, "datasets/a.json"));
    const long = runName(
      "x".repeat(80),
      "Feature/Very_Long_Branch_Name_That_Goes_On",
      sha,
      "d.json",
    );
    assert.ok(long.length <= 63);
    assert.match(long, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});
