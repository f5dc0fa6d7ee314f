// loraforge eval through the built loraforge-core (generate and score): needs native/build.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LoraFineTuneStatusSchema, parseLoraFineTune } from "@loraforge/crds";
import type { EvalResult } from "../../src/eval/run.ts";
import { cliPipeline } from "../../src/inpod/cliPipeline.ts";
import { main } from "../../src/main.ts";
import { resolveLocalPaths } from "../../src/train/resolve.ts";
import { runTraining } from "../../src/train/run.ts";
import { storiesWorkspace, tempDir } from "../support/helpers.ts";

describe("evaluation through loraforge-core generate and score", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let specFile: string;
  const spec = {
    apiVersion: "loraforge.dev/v1alpha1",
    kind: "LoraFineTune",
    metadata: { name: "e" },
    spec: {
      baseModel: { source: { pvc: { claimName: "models", path: "stories260K" } } },
      dataset: {
        source: { pvc: { claimName: "data", path: "stories.jsonl" } },
        promptTemplate: "alpaca_short",
        valSetSize: 6,
        cutoffLen: 160,
      },
      lora: { r: 4, alpha: 8, dropout: 0 },
      training: {
        epochs: 1,
        maxSteps: 8,
        learningRate: 3e-3,
        batchSize: 4,
        microBatchSize: 4,
        warmupSteps: 1,
        evalSteps: 4,
        saveSteps: 4,
      },
      checkpointSelection: "last",
      evaluation: { samples: 6, maxNewTokens: 24 },
      resources: { gpus: 0 },
      output: { pvc: { claimName: "runs", path: "e" } },
    },
  };
  before(async () => {
    tmp = await tempDir();
    await storiesWorkspace(tmp.dir, 40);
    specFile = join(tmp.dir, "spec.json");
    await writeFile(specFile, JSON.stringify(spec));
  });
  after(() => tmp.cleanup());

  const volumes = () => [
    "--volume",
    `models=${join(tmp.dir, "models")}`,
    "--volume",
    `data=${join(tmp.dir, "data")}`,
    "--out",
    join(tmp.dir, "run"),
  ];
  const capture = () => {
    const lines: string[] = [];
    return {
      out: { info: (l: string) => lines.push(l), error: (l: string) => lines.push(l) },
      lines,
    };
  };

  test("train ends with eval.json; its eval losses are the trainer's validation losses", async () => {
    const c = capture();
    assert.equal(
      await main(["train", specFile, "--quiet", "--threads", "1", ...volumes()], c.out),
      0,
      c.lines.join("\n"),
    );
    const text = c.lines.join("\n");
    assert.match(text, /metric\s+base\s+fine-tuned\s+change/);
    assert.match(text, /eval\.json\s+\S+eval\.json/);
    const run = join(tmp.dir, "run");
    const summary = JSON.parse(await readFile(join(run, "summary.json"), "utf8"));
    const r = JSON.parse(await readFile(join(run, "eval.json"), "utf8")) as EvalResult;
    assert.equal(summary.evaluation.path, join(run, "eval.json"));
    assert.equal(summary.evaluation.samples, 6);
    assert.deepEqual(Object.keys(summary.evaluation.tuned).sort(), [
      "evalLoss",
      "exactMatch",
      "promptRepetition",
      "rougeL",
    ]);
    // Scoring the whole validation split with `score` gives the trainer's validation loss:
    // the same tokens and mask, summed in another order (float32 sums: 1e-5 relative).
    const close = (a: number | null, b: number | null) =>
      a !== null && b !== null && Math.abs(a - b) <= 1e-5 * Math.abs(b);
    assert.ok(
      close(r.metrics.base.evalLoss, summary.valLoss.before),
      `${r.metrics.base.evalLoss} vs ${summary.valLoss.before}`,
    );
    assert.ok(
      close(r.metrics.tuned?.evalLoss ?? null, summary.valLoss.after),
      `${r.metrics.tuned?.evalLoss} vs ${summary.valLoss.after}`,
    );
    const manifest = JSON.parse(await readFile(join(run, "data", "manifest.json"), "utf8"));
    assert.equal(r.data.digest, manifest.digest);
    assert.equal(r.data.split, "validation");
    assert.deepEqual(r.settings.stopTokens, [1]);
    assert.equal(r.settings.maxNewTokens, 24);
    assert.equal(r.samples.length, 6);
    for (const s of r.samples) {
      assert.ok(s.tuned, "tuned answer");
      assert.ok(s.base.tokens <= 24 && (s.tuned?.tokens ?? 99) <= 24);
      assert.equal(s.base.stop === "max_new_tokens", s.base.tokens === 24);
    }
    assert.ok(r.core.version !== "unknown");
  });

  test("loraforge eval on the finished run gives the same numbers (greedy is deterministic)", async () => {
    const run = join(tmp.dir, "run");
    const first = JSON.parse(await readFile(join(run, "eval.json"), "utf8")) as EvalResult;
    const c = capture();
    assert.equal(
      await main(
        ["eval", specFile, "--batch-size", "3", "--threads", "1", "--show", "1", ...volumes()],
        c.out,
      ),
      0,
      c.lines.join("\n"),
    );
    const again = JSON.parse(await readFile(join(run, "eval.json"), "utf8")) as EvalResult;
    assert.deepEqual(again.metrics.base, first.metrics.base);
    assert.deepEqual(
      again.samples.map((s) => [s.base.text, s.tuned?.text]),
      first.samples.map((s) => [s.base.text, s.tuned?.text]),
    );
    assert.equal(c.lines.filter((l) => l.includes("reference:")).length, 1);
  });

  test("the trainer Job's pipeline puts the eval.json summary into status.evaluation", async () => {
    const run = join(tmp.dir, "job");
    const result = await cliPipeline(() => {})({
      lft: parseLoraFineTune(spec),
      modelDir: join(tmp.dir, "models", "stories260K"),
      datasetPath: join(tmp.dir, "data", "stories.jsonl"),
      outputDir: run,
      onEvent: () => {},
      signal: new AbortController().signal,
    });
    const r = JSON.parse(await readFile(join(run, "eval.json"), "utf8")) as EvalResult;
    assert.deepEqual(result.evaluation, {
      path: join(run, "eval.json"),
      samples: 6,
      base: {
        evalLoss: r.metrics.base.evalLoss,
        exactMatch: r.metrics.base.exactMatch,
        rougeL: r.metrics.base.rougeL,
        promptRepetition: r.metrics.base.promptRepetition,
      },
      tuned: {
        evalLoss: r.metrics.tuned?.evalLoss,
        exactMatch: r.metrics.tuned?.exactMatch,
        rougeL: r.metrics.tuned?.rougeL,
        promptRepetition: r.metrics.tuned?.promptRepetition,
      },
      // The 3 samples with the smallest digests of their prompts, texts whole (all are short).
      examples: r.samples
        .map((x) => ({
          promptSha256: createHash("sha256")
            .update(JSON.stringify([x.instruction, x.input]))
            .digest("hex"),
          instruction: x.instruction,
          input: x.input,
          reference: x.reference,
          base: x.base.text,
          tuned: x.tuned?.text,
        }))
        .sort((a, b) => a.promptSha256.localeCompare(b.promptSha256))
        .slice(0, 3),
    });
    // what the status accepts
    LoraFineTuneStatusSchema.parse({ evaluation: result.evaluation });
  });

  test("checkpointSelection bestEvalScore: every candidate generates; the best scoreMetric wins", async () => {
    const lft = parseLoraFineTune({
      ...spec,
      spec: { ...spec.spec, checkpointSelection: "bestEvalScore" },
    });
    const paths = resolveLocalPaths(lft.spec, {
      specFile,
      volumes: { models: join(tmp.dir, "models"), data: join(tmp.dir, "data") },
      outDir: join(tmp.dir, "best"),
    });
    const s = await runTraining(lft.spec, { paths, threads: 1 });
    assert.equal(s.status, "done");
    const sel = JSON.parse(await readFile(join(tmp.dir, "best", "selection.json"), "utf8"));
    assert.equal(sel.applied, "bestEvalScore");
    const scores = sel.candidates.map((c: { evalScore: number }) => c.evalScore);
    assert.equal(scores.length, 2);
    assert.ok(scores.every((v: unknown) => typeof v === "number"));
    assert.equal(sel.selected.evalScore, Math.max(...scores));
    // the selected adapter, evaluated afterwards on the same examples, scores the same (rougeL)
    assert.equal(s.evaluation?.tuned?.rougeL, sel.selected.evalScore);
    const inAdapter = JSON.parse(
      await readFile(join(tmp.dir, "best", "adapter", "selection.json"), "utf8"),
    );
    assert.equal(inAdapter.score_metric, "rougeL");
    assert.equal(inAdapter.eval_score, sel.selected.evalScore);
  });

  test("an eval file, base model only", async () => {
    const evalFile = join(tmp.dir, "held-out.json");
    await writeFile(
      evalFile,
      JSON.stringify([
        { instruction: "Write a story about Tom and a cat.", output: "Tom had a cat." },
      ]),
    );
    const out = join(tmp.dir, "base-only");
    const c = capture();
    const code = await main(
      [
        "eval",
        "--model",
        join(tmp.dir, "models", "stories260K"),
        "--eval-file",
        evalFile,
        "--out",
        out,
        "--template",
        "alpaca_short",
        "--max-new-tokens",
        "8",
      ],
      c.out,
    );
    assert.equal(code, 0, c.lines.join("\n"));
    const r = JSON.parse(await readFile(join(out, "eval.json"), "utf8")) as EvalResult;
    assert.equal(r.adapter, null);
    assert.equal(r.metrics.tuned, undefined);
    assert.equal(r.data.split, "file");
    assert.equal(r.samples.length, 1);
  });

  test("sampling options reach the core: a seed repeats its answers at another batch size; another seed differs", async () => {
    const run = join(tmp.dir, "run");
    const read = async () =>
      JSON.parse(await readFile(join(run, "eval.json"), "utf8")) as EvalResult;
    const greedy = await read();
    const sampled = async (seed: number, batchSize: number) => {
      const c = capture();
      const args = ["eval", specFile, "--threads", "1", "--batch-size", String(batchSize)];
      args.push("--temperature", "0.9", "--top-k", "40", "--top-p", "0.95");
      args.push("--repetition-penalty", "1.1", "--sampling-seed", String(seed));
      assert.equal(await main([...args, ...volumes()], c.out), 0, c.lines.join("\n"));
      return read();
    };
    const a = await sampled(7, 8);
    const again = await sampled(7, 2);
    const other = await sampled(8, 8);
    const { temperature, topK, topP, repetitionPenalty, seed } = a.settings;
    assert.deepEqual(
      { temperature, topK, topP, repetitionPenalty, seed },
      { temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.1, seed: 7 },
    );
    const texts = (r: EvalResult) => r.samples.map((s) => [s.base.text, s.tuned?.text]);
    assert.deepEqual(texts(again), texts(a), "seed 7 at batch 8 and at batch 2");
    assert.notDeepEqual(texts(other), texts(a), "seed 8 samples other answers");
    assert.notDeepEqual(texts(a), texts(greedy), "sampling is not greedy decoding");
    // scoring does not sample: the eval losses are the greedy run's
    assert.equal(a.metrics.base.evalLoss, greedy.metrics.base.evalLoss);
    assert.equal(a.metrics.tuned?.evalLoss, greedy.metrics.tuned?.evalLoss);
  });
});
