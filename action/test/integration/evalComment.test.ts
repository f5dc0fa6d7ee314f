// The comment from REAL runs: the stories260K demo trained and evaluated twice through the
// trainer Job's pipeline (the base branch's dataset, then a pull request's edit of it), the
// status each run's own reporter writes, and the comment rendered from the two statuses. The
// numbers in it must be eval.json's, and the samples must be there and inert. The comment is
// saved as a test artifact ($LORAFORGE_TEST_ARTIFACTS or test-results/artifacts/, beside the
// suites' logs that `npm test` writes in CI) and printed into the test's output.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cliPipeline, importLlama2c, StatusReporter } from "@loraforge/cli";
import {
  type LoraFineTuneStatus,
  LoraFineTuneStatusSchema,
  parseLoraFineTune,
} from "@loraforge/crds";
import type { RunView } from "../../src/k8s.ts";
import { codeHtml, preHtml } from "../../src/markdown.ts";
import { renderResult } from "../../src/render.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const ASSETS = resolve(REPO_ROOT, "..", "shared", "assets");
const ARTIFACTS =
  process.env.LORAFORGE_TEST_ARTIFACTS ?? join(REPO_ROOT, "test-results", "artifacts");

/** eval.json, the parts this test reads (docs/CONTRACTS.md §5). */
interface EvalJson {
  metrics: Record<"base" | "tuned", Record<string, number | null>>;
  samples: {
    instruction: string;
    input: string;
    reference: string;
    base: { text: string };
    tuned: { text: string };
  }[];
}

/** Every instruction carries this: a sample may hold anything, and the comment must stay inert. */
const NASTY =
  " </pre><script>alert(1)</script> @octocat ![x](https://evil.example/p.png) | **bold**";

const spec = {
  apiVersion: "loraforge.dev/v1alpha1",
  kind: "LoraFineTune",
  metadata: { name: "stories" },
  spec: {
    baseModel: { source: { pvc: { claimName: "models", path: "stories260K" } } },
    dataset: {
      source: { pvc: { claimName: "data", path: "stories.jsonl" } },
      promptTemplate: "alpaca_short",
      valSetSize: 6,
      cutoffLen: 192,
    },
    lora: { r: 4, alpha: 8, dropout: 0 },
    training: {
      epochs: 4,
      learningRate: 3e-3,
      batchSize: 4,
      microBatchSize: 4,
      warmupSteps: 1,
      evalSteps: 8,
      saveSteps: 8,
    },
    checkpointSelection: "last",
    evaluation: { samples: 6, maxNewTokens: 48 },
    resources: { gpus: 0 },
    output: { pvc: { claimName: "runs", path: "stories" } },
  },
};

describe("the PR comment from real runs of the stories260K demo", () => {
  let tmp: string;
  const runs: Record<"main" | "pr", { status: LoraFineTuneStatus; evalJson: EvalJson }> =
    Object.create(null);

  /** Trains and evaluates as the trainer Job does; status is what its reporter patches. */
  async function trainAsJob(name: "main" | "pr", records: object[]) {
    const data = join(tmp, `data-${name}`);
    await mkdir(data);
    await writeFile(
      join(data, "stories.jsonl"),
      `${records.map((r) => JSON.stringify(r)).join("\n")}\n`,
    );
    let trainer: LoraFineTuneStatus = {};
    const reporter = new StatusReporter({
      send: async (patch) => {
        trainer = { ...trainer, ...patch };
      },
      intervalMs: 0,
    });
    const out = join(tmp, `run-${name}`);
    const startTime = new Date().toISOString();
    const result = await cliPipeline(() => {})({
      lft: parseLoraFineTune(spec),
      modelDir: join(tmp, "stories260K"),
      datasetPath: join(data, "stories.jsonl"),
      outputDir: out,
      onEvent: (e) => reporter.onEvent(e),
      signal: new AbortController().signal,
    });
    reporter.setResult(result);
    assert.equal(await reporter.close(0, 0), true);
    // The operator's fields beside the trainer's; the API server's schema accepts the whole.
    const status = LoraFineTuneStatusSchema.parse({
      phase: "Succeeded",
      startTime,
      completionTime: new Date().toISOString(),
      ...trainer,
    });
    const evalJson = JSON.parse(await readFile(join(out, "eval.json"), "utf8")) as EvalJson;
    runs[name] = { status, evalJson };
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "lf-evalcomment-"));
    await importLlama2c({
      checkpoint: join(ASSETS, "stories260K", "stories260K.bin"),
      tokenizer: join(ASSETS, "stories260K", "tok512.model"),
      outDir: join(tmp, "stories260K"),
    });
    const lines = (
      await readFile(join(REPO_ROOT, "examples", "stories-instruct", "stories.jsonl"), "utf8")
    )
      .split("\n")
      .slice(0, 40);
    const records = lines.map((l) => {
      const r = JSON.parse(l) as { instruction: string; input: string; output: string };
      return { ...r, instruction: `${r.instruction}${NASTY}` };
    });
    await trainAsJob("main", records);
    // The pull request edits every answer: same records, so the same seeded split (the same
    // evaluation prompts), but other training data and another adapter.
    // (At the start: the end of a long story is past the cutoff.)
    const edited = records.map((r) => ({ ...r, output: `Here is a story. ${r.output}` }));
    await trainAsJob("pr", edited);
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  test("the numbers are eval.json's and the samples are there, inert", async (t) => {
    const ctx = {
      marker: "loraforge",
      datasetPath: "examples/stories-instruct/stories.jsonl",
      namespace: "ml",
      sha: "0123abc",
      baseBranch: "main",
    };
    const view = (name: string, status: LoraFineTuneStatus): RunView => ({
      name,
      namespace: "ml",
      uid: name,
      labels: {},
      annotations: {},
      status,
    });
    const { pr, main } = runs;
    const { text, truncated } = renderResult(
      ctx,
      view("stories-pr-7-0123abc", pr.status),
      view("stories-main-4567def", main.status),
      { chart: true },
    );
    await mkdir(ARTIFACTS, { recursive: true });
    const saved = join(ARTIFACTS, "pr-comment-stories260K.md");
    await writeFile(saved, text);
    t.diagnostic(`the comment: ${saved}`);
    console.log(`----- the pull-request comment (${saved}) -----\n${text}\n----- end -----`);
    assert.equal(truncated, false);

    // The table: the base branch's and this PR's fine-tuned metrics, as eval.json has them.
    const fixed = (v: number | null | undefined) => (v as number).toFixed(4);
    const pct = (v: number | null | undefined) => `${((v as number) * 100).toFixed(1)}%`;
    const rows: [string, string, (v: number | null | undefined) => string][] = [
      ["eval loss", "evalLoss", fixed],
      ["exact match", "exactMatch", pct],
      ["ROUGE-L", "rougeL", fixed],
      ["prompt repetition", "promptRepetition", pct],
    ];
    for (const [label, key, f] of rows) {
      assert.equal(typeof pr.evalJson.metrics.tuned[key], "number");
      const row = `| ${label} | ${f(main.evalJson.metrics.tuned[key])} | ${f(pr.evalJson.metrics.tuned[key])} |`;
      assert.ok(text.includes(row), `${row}\n${text}`);
    }
    const b = pr.evalJson.metrics.base;
    assert.ok(
      text.includes(
        `Base model without the adapter: eval loss ${fixed(b.evalLoss)}, exact match ${pct(b.exactMatch)}, ROUGE-L ${fixed(b.rougeL)}, prompt repetition ${pct(b.promptRepetition)} (6 prompts).`,
      ),
      text,
    );

    // The samples: three prompts, base vs fine-tuned, and the base branch's answer to each.
    const examples = pr.status.evaluation?.examples ?? [];
    assert.equal(examples.length, 3);
    const digest = (s: { instruction: string; input: string }) =>
      createHash("sha256")
        .update(JSON.stringify([s.instruction, s.input]))
        .digest("hex");
    const mainBy = new Map(main.evalJson.samples.map((s) => [digest(s), s]));
    for (const e of examples) {
      const s = pr.evalJson.samples.find((x) => digest(x) === e.promptSha256);
      assert.ok(s, "the example is one of eval.json's samples");
      for (const t of [s.instruction, s.reference, s.base.text, s.tuned.text])
        assert.ok(t.length <= 400, "short enough to be shown whole");
      const onMain = mainBy.get(e.promptSha256);
      assert.ok(onMain, "the same split: the base branch's run has the prompt");
      const block = [
        preHtml(s.instruction),
        "reference answer:",
        preHtml(s.reference),
        "base model:",
        preHtml(s.base.text),
        "fine-tuned, this PR:",
        preHtml(s.tuned.text),
        `fine-tuned, ${codeHtml("main")}:`,
        preHtml(onMain.tuned.text),
      ].join("\n");
      assert.ok(text.includes(block), `${block}\n---\n${text}`);
    }
    for (const raw of ["<script>", "@octocat", "](https://", "</pre><", "**bold**"])
      assert.ok(!text.includes(raw), `${raw} is escaped`);
  });
});
