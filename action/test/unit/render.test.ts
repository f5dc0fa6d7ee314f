// The comment: result table, chart, truncation under GitHub's limit; names and labels.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LoraFineTuneStatus } from "@loraforge/crds";
import type { RunView } from "../../src/k8s.ts";
import { labelValue, runName } from "../../src/labels.ts";
import { codeHtml, preHtml } from "../../src/markdown.ts";
import {
  lossChart,
  markerLine,
  renderInProgress,
  renderInvalid,
  renderResult,
  resultTable,
  samplesSection,
} from "../../src/render.ts";
import { GITHUB_COMMENT_LIMIT } from "../../src/truncate.ts";
import { renderValidation } from "../../src/validate.ts";
import { succeeded } from "../support/helpers.ts";

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
    assert.ok(
      table.includes(
        `${codeHtml("pvc://runs/hello-alpaca-master-f95f852-ee02ac/adapter")} (4.0 MiB`,
      ),
    );
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

/** Dataset paths a pull request can add (git allows all of these in a file name). */
const NASTY_PATHS = [
  "datasets/`x`.json",
  "datasets/``` fence.json",
  "datasets/a<img src=x onerror=alert(1)>.json",
  "datasets/<script>alert(1)</script>.json",
  "datasets/a|b|c.json",
  "datasets/@admin ping @org/team.json",
  "datasets/![img](https://evil.example/p.png).json",
  "datasets/[click me](https://evil.example).json",
  "datasets/https://evil.example/x.json",
  "datasets/www.evil.example.json",
  "datasets/**bold** _it_ ~~s~~ #1.json",
  "datasets/&lt;b&gt;entity.json",
  "datasets/line\n### injected heading\n.json",
  "datasets/cr\rtab\tnul\u0000c1\u0085.json",
  "datasets/\\`escaped.json",
  "datasets/:+1: \u202eevil.json",
];

/** Decodes the numeric character references codeHtml writes. */
function decode(html: string): string {
  return html.replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)));
}

/** What the reader sees for a path: control characters as their pictures. */
function shown(path: string): string {
  return [...path]
    .map((c) => {
      const cp = c.codePointAt(0) as number;
      if (cp < 0x20) return String.fromCodePoint(0x2400 + cp);
      if (cp === 0x7f) return "\u2421";
      if (cp >= 0x80 && cp <= 0x9f) return "\ufffd";
      return c;
    })
    .join("");
}

/**
 * Every <code> element holds only letters, digits, "/", "-", space and numeric character
 * references: nothing Markdown, GitHub's autolinker or its mention filter can act on.
 */
function assertInertCode(text: string, path: string) {
  const codes = [...text.matchAll(/<code>(.*?)<\/code>/g)].map((m) => m[1] ?? "");
  assert.ok(codes.length > 0, "the path is shown as code");
  for (const c of codes) assert.match(c, /^(?:[A-Za-z0-9/ -]|&#\d+;)*$/, `inert: ${c}`);
  assert.ok(
    codes.some((c) => decode(c) === shown(path)),
    `the path reads back as written: ${JSON.stringify(path)}`,
  );
  // Outside the code elements the path leaves no trace: no raw backtick, <, |, @, ![, ]( ...
  const outside = text.replace(/<code>.*?<\/code>/g, "");
  for (const needle of ["evil", "@admin", "onerror", "injected", "alert(", "&lt;b"])
    assert.ok(!outside.includes(needle), `${needle} outside <code>`);
}

describe("dataset paths in the comment are inert", () => {
  test("codeHtml escapes everything but letters, digits, '/', '-' and space", () => {
    assert.equal(codeHtml("datasets/a-b c.json"), "<code>datasets/a-b c&#46;json</code>");
    assert.equal(
      codeHtml("`![i](u)` @me <b>|&\n"),
      "<code>&#96;&#33;&#91;i&#93;&#40;u&#41;&#96; &#64;me &#60;b&#62;&#124;&#38;&#9226;</code>",
    );
  });

  for (const path of NASTY_PATHS) {
    test(`header, table, problems and summary with ${JSON.stringify(path)}`, () => {
      const c = { ...ctx, datasetPath: path };
      const progress = renderInProgress(c, view("pr", { phase: "Running" }));
      assertInertCode(progress, path);
      // The header is one line: a newline in the path cannot start a heading or a list.
      assert.equal(progress.split("\n")[1]?.startsWith("### LoraForge · <code>"), true);
      assert.equal(progress.split("\n").filter((l) => l.startsWith("#")).length, 1);
      const { text } = renderResult(c, view("pr", succeeded(1.5, 0.42)), undefined, {
        chart: false,
      });
      assertInertCode(text, path);
      const validation = renderValidation([
        {
          path,
          ok: false,
          errors: 1,
          warnings: 1,
          report: {
            file: path,
            format: "json",
            ok: false,
            records: [],
            stats: {
              records: 1,
              rejected: 0,
              usable: 0,
              withInput: 0,
              duplicates: 0,
              chars: {
                instruction: { min: 0, mean: 0, p50: 0, p95: 0, max: 0 },
                input: { min: 0, mean: 0, p50: 0, p95: 0, max: 0 },
                output: { min: 0, mean: 0, p50: 0, p95: 0, max: 0 },
              },
            },
            problems: [
              {
                file: path,
                line: 1,
                record: 0,
                field: path,
                message: "unknown field, ignored",
                severity: "warning",
              },
            ],
          },
        },
      ]);
      const table = validation.split("\n").filter((l) => l.startsWith("| "));
      assert.equal(table.length, 3, "header, separator and one row: the path cannot add rows");
      assert.equal(
        table[2]?.split(" | ").length,
        table[0]?.split(" | ").length,
        "the path cannot add cells",
      );
      assertInertCode(renderInvalid(c, validation), path);
    });
  }
});

describe("sample generations in the comment", () => {
  const sha = (c: string) => c.repeat(64);
  const sample = (d: string, tuned: string) => ({
    promptSha256: sha(d),
    instruction: `Write a story about ${d}.`,
    input: "",
    reference: "Once upon a time.",
    base: "Write a story about Write a story about",
    tuned,
  });

  test("base vs fine-tuned per prompt, and the base branch's answer to the same prompt", () => {
    const pr = view("pr", {
      ...succeeded(1.5, 0.42),
      evaluation: { samples: 6, examples: [sample("a", "PR a"), sample("b", "PR b")] },
    });
    const base = view("base", {
      ...succeeded(1.6, 0.4),
      evaluation: { examples: [sample("b", "main b"), sample("c", "main c")] },
    });
    const text = samplesSection(pr, base, "master");
    assert.match(text, /^<details><summary>Sample generations: base model vs fine-tuned \(2 of 6/);
    assert.ok(text.includes(`fine-tuned, this PR:\n${preHtml("PR a")}`));
    assert.ok(text.includes(`fine-tuned, ${codeHtml("master")}:\n${preHtml("main b")}`));
    assert.ok(!text.includes("main c"), "a prompt the PR run did not sample is not shown");
    assert.equal((text.match(/fine-tuned, <code>/g) ?? []).length, 1, "only the shared prompt");
    assert.ok(!text.includes("input:"), "an empty input is left out");
    const { text: comment } = renderResult(ctx, pr, base, { chart: false });
    assert.ok(comment.includes(text));
    assert.equal(samplesSection(view("x", succeeded(1, 0.1)), undefined, "master"), "");
  });

  test("a sample is inert whatever it holds; <pre> starts its line and keeps line breaks", () => {
    const nasty = [
      "</pre><script>alert(1)</script>",
      "@admin ![x](https://evil.example/p.png) [click](https://evil.example) www.evil.example",
      "| a | b |\n\n### injected heading\n```\n<details>",
      "&lt;b&gt; **bold** _it_ cr\rtab\tnul\u0000",
    ].join("\n");
    const pr = view("pr", {
      ...succeeded(1.5, 0.42),
      evaluation: {
        examples: [
          {
            promptSha256: sha("d"),
            instruction: nasty,
            input: nasty,
            reference: nasty,
            base: nasty,
            tuned: nasty,
          },
        ],
      },
    });
    const text = samplesSection(pr, undefined, "master");
    const outside = text.replace(/^<pre>[\s\S]*?<\/pre>$/gm, "");
    for (const needle of ["evil", "@admin", "script", "injected", "&lt;b", "**bold**", "</pre><"])
      assert.ok(!outside.includes(needle), `${needle} outside <pre>`);
    const blocks = text.match(/^<pre>[\s\S]*?<\/pre>$/gm) ?? [];
    assert.equal(blocks.length, 5);
    for (const b of blocks) {
      const inner = b.slice("<pre>".length, -"</pre>".length);
      const bare = inner.replace(/&#\d+;/g, "");
      assert.ok(!/[<>&@`|*_[\]!#:.]/.test(bare), inner);
      assert.ok(![...bare].some((c) => c < " " && c !== "\n"), "control characters as pictures");
      assert.equal(inner.split("\n").length, nasty.split("\n").length, "line breaks kept");
    }
    assert.equal(preHtml("a\nb<"), "<pre>a\nb&#60;</pre>");
    assert.equal((text.match(/<details/g) ?? []).length, 1);
  });
});
