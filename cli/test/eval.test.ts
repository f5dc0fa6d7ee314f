import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LoraFineTuneStatusSchema, parseLoraFineTune } from "@loraforge/crds";
import { printEvaluation } from "../src/commands/eval.ts";
import { buildEvalExamples, loadEvalRecords } from "../src/eval/examples.ts";
import { templateMarkers } from "../src/eval/metrics.ts";
import { answerResult, modelMetrics } from "../src/eval/report.ts";
import { DEFAULT_GENERATION, type EvalResult, prepareEvaluation } from "../src/eval/run.ts";
import { cliPipeline } from "../src/inpod/cliPipeline.ts";
import { main } from "../src/main.ts";
import { loadTemplate, prepareDataset } from "../src/prepare/prepare.ts";
import { ALPACA_SHORT } from "../src/prompt/templates.ts";
import { decodeShard } from "../src/shards/lfs.ts";
import { loadModelTokenizer } from "../src/tokenizer/tokenizer.ts";
import { resolveLocalPaths } from "../src/train/resolve.ts";
import { runTraining } from "../src/train/run.ts";
import { selectCheckpoint } from "../src/train/select.ts";
import {
  importStories260K,
  llama2TokenizerDir,
  STORIES,
  storiesWorkspace,
  tempDir,
} from "./helpers.ts";

describe("evaluation examples", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let model: string;
  before(async () => {
    tmp = await tempDir();
    model = join(tmp.dir, "stories260K");
    await importStories260K(model);
  });
  after(() => tmp.cleanup());

  test("the validation split and its tokens are exactly the ones training validated on", async () => {
    const settings = { cutoffLen: 96, addEos: true, valSetSize: 48, seed: 42 };
    const prepared = await prepareDataset({
      datasetFile: STORIES,
      modelDir: model,
      template: { name: "alpaca_short" },
      trainOnInputs: false,
      dataDir: join(tmp.dir, "data"),
      ...settings,
    });
    const val = decodeShard(await readFile(prepared.valShard as string));
    const recs = await loadEvalRecords({
      datasetFile: STORIES,
      split: { valSetSize: 48, seed: 42 },
      samples: 1000,
    });
    assert.equal(recs.split, "validation");
    assert.equal(recs.records.length, 48);
    const tok = await loadModelTokenizer(model);
    const template = await loadTemplate({ name: "alpaca_short" });
    const { examples, skipped } = buildEvalExamples(recs.records, template, tok, {
      cutoffLen: 96,
      addEos: true,
    });
    // every validation record here is longer than the cutoff's prompt part: none skipped
    assert.equal(skipped, 0);
    assert.equal(examples.length, val.records.length);
    examples.forEach((ex, i) => {
      const r = val.records[i] as { ids: number[] | Uint32Array; mask: Uint8Array };
      assert.deepEqual([...ex.scorePrompt, ...ex.scoreTarget], [...r.ids], `example ${i}`);
      // the scored target is exactly what training's loss mask covers
      assert.equal(ex.scorePrompt.length, r.mask.indexOf(1));
      // the generation prompt ends with the template's "### Response:\n" and starts with BOS
      assert.equal(ex.prompt[0], tok.bosId);
      assert.ok(tok.encoder.decode(ex.prompt).endsWith("### Response:\n"));
    });
    const few = await loadEvalRecords({
      datasetFile: STORIES,
      split: { valSetSize: 48, seed: 42 },
      samples: 5,
    });
    assert.deepEqual(few.records, recs.records.slice(0, 5));
    assert.equal(few.available, 48);
  });

  test("an eval file is taken whole; an empty split is refused, naming the file", async () => {
    const whole = await loadEvalRecords({ datasetFile: STORIES, samples: 10_000 });
    assert.equal(whole.split, "file");
    assert.equal(whole.records.length, 384);
    await assert.rejects(
      loadEvalRecords({ datasetFile: STORIES, split: { valSetSize: 0, seed: 1 }, samples: 5 }),
      (e: Error) =>
        e.message.includes("stories.jsonl") && e.message.includes("validation split is empty"),
    );
  });

  test("stop tokens: generation_config.json's eos_token_id (BOS for a llama2.c import), else EOS", async () => {
    const r = await prepareEvaluation({
      modelDir: model,
      template: await loadTemplate({ name: "alpaca_short" }),
      records: { datasetFile: STORIES, split: { valSetSize: 48, seed: 42 }, samples: 2 },
      cutoffLen: 256,
      addEos: true,
      generation: DEFAULT_GENERATION,
      corePath: "unused",
    });
    assert.deepEqual(r.sampling.stopTokens, [1]);
    assert.equal(r.stopTokensWhy, "eos_token_id of generation_config.json");
    // scoring targets end with the token generation stops on, as training's do
    for (const ex of r.examples) assert.equal(ex.scoreTarget.at(-1), 1);
    const llama2 = join(tmp.dir, "llama2");
    await mkdir(llama2);
    await llama2TokenizerDir(llama2);
    const tok = await loadModelTokenizer(llama2);
    assert.deepEqual(tok.stopIds, [2]);
    assert.equal(tok.stopSource, "the tokenizer's eos");
  });
});

describe("per-model metrics", () => {
  const ex = (id: string, reference: string) => ({
    id,
    line: 1,
    instruction: "Write a story about Lily and a red ball in the park.",
    input: "",
    reference,
    prompt: [1],
    scorePrompt: [1],
    scoreTarget: [2],
  });
  const markers = templateMarkers(ALPACA_SHORT);

  test("means over answers; eval loss is token-weighted as the trainer's validation loss", () => {
    const a = answerResult(
      ex("0", "Lily played."),
      { text: "Lily played!", tokens: 4, stop: "stop_token" },
      { targetTokens: 2, lossSum: 3 },
      markers,
    );
    const b = answerResult(
      ex("1", "The ball was red."),
      { text: "### Instruction:\nWrite", tokens: 10, stop: "max_new_tokens" },
      { targetTokens: 6, lossSum: 1 },
      markers,
    );
    assert.equal(a.exactMatch, 1);
    assert.equal(a.loss, 1.5);
    assert.equal(b.repeatsPrompt, true);
    const m = modelMetrics(
      [a, b],
      [
        { targetTokens: 2, lossSum: 3 },
        { targetTokens: 6, lossSum: 1 },
      ],
    );
    assert.equal(m.evalLoss, 4 / 8);
    assert.equal(m.perplexity, Math.exp(0.5));
    assert.equal(m.exactMatch, 0.5);
    assert.equal(m.promptRepetition, 0.5);
    assert.equal(m.stopped, 0.5);
    assert.equal(m.meanLength, 7);
    assert.equal(modelMetrics([a], []).evalLoss, null);
  });

  test("the table prints base, fine-tuned and the change, then samples side by side", () => {
    const lines: string[] = [];
    const metrics = (r: number) => ({
      evalLoss: 2,
      perplexity: Math.exp(2),
      exactMatch: 0,
      tokenF1: r,
      rougeL: r,
      promptRepetition: 0.1,
      stopped: 1,
      meanLength: 12,
    });
    const answer = {
      text: "Lily ran.",
      tokens: 3,
      stop: "stop_token" as const,
      exactMatch: 0,
      tokenF1: 0,
      rougeL: 0,
      repeatsPrompt: false,
      loss: 1,
    };
    const r = {
      data: { examples: 2, split: "validation" },
      settings: { temperature: 0, maxNewTokens: 64, stopTokens: [2, 1] },
      metrics: { base: metrics(0.1), tuned: metrics(0.35) },
      samples: [
        {
          id: "7",
          line: 8,
          instruction: "Write a story.",
          input: "",
          reference: "Once\nupon.",
          base: { ...answer, text: "" },
          tuned: answer,
        },
      ],
      files: { evalJson: "/x/eval.json" },
    } as unknown as EvalResult;
    printEvaluation({ info: (l) => lines.push(l), error: (l) => lines.push(l) }, r, 3);
    const text = lines.join("\n");
    assert.match(text, /metric\s+base\s+fine-tuned\s+change/);
    assert.match(text, /ROUGE-L \(higher is better\)\s+10\.0%\s+35\.0%\s+\+25\.0 pts/);
    assert.match(text, /eval loss \(lower is better\)\s+2\.0000\s+2\.0000\s+±0\.0000/);
    assert.match(text, /reference:\s+Once \/ upon\./);
    assert.match(text, /base:\s+\(empty\)/);
    assert.match(text, /fine-tuned:\s+Lily ran\./);
    assert.match(text, /eval\.json\s+\/x\/eval\.json/);
  });
});

describe("bestEvalScore selection", () => {
  const c = (step: number, trainLoss: number) => ({
    step,
    dir: `/c/${step}`,
    trainLoss,
    valLoss: null,
    kind: "checkpoint" as const,
  });
  const candidates = [c(2, 0.5), c(4, 0.2), c(6, 0.3)];
  test("picks the highest score, ties to the later candidate", () => {
    const s = selectCheckpoint(
      "bestEvalScore",
      candidates,
      new Map([
        [2, 0.4],
        [4, 0.1],
        [6, 0.4],
      ]),
    );
    assert.equal(s.applied, "bestEvalScore");
    assert.equal(s.selected.step, 6);
    assert.deepEqual(
      s.candidates.map((x) => x.evalScore),
      [0.4, 0.1, 0.4],
    );
    assert.equal(
      selectCheckpoint("bestEvalScore", candidates, new Map([[2, 0.9]])).selected.step,
      2,
    );
  });
  test("without scores it falls back to the train loss and says why", () => {
    const s = selectCheckpoint("bestEvalScore", candidates);
    assert.equal(s.applied, "lowestTrainLoss");
    assert.equal(s.selected.step, 4);
    assert.match(s.note ?? "", /no candidate has an evaluation score/);
  });
});

describe("loraforge eval: the command line", () => {
  const run = async (args: string[]) => {
    const lines: string[] = [];
    const code = await main(["eval", ...args], {
      info: (l) => lines.push(l),
      error: (l) => lines.push(l),
    });
    return { code, text: lines.join("\n") };
  };
  test("needs a spec or --model, --data and --out", async () => {
    const r = await run(["--model", "/m"]);
    assert.equal(r.code, 2);
    assert.match(r.text, /--model DIR --data FILE/);
  });
  test("bad numbers are usage errors naming the flag", async () => {
    const r = await run(["--model", "/m", "--data", "/d", "--out", "/o", "--temperature", "hot"]);
    assert.equal(r.code, 2);
    assert.match(r.text, /--temperature must be a number/);
  });
  test("a missing dataset is invalid input naming the file", async () => {
    const tmp = await tempDir();
    try {
      const model = await llama2TokenizerDir(tmp.dir);
      const r = await run([
        "--model",
        model,
        "--data",
        join(tmp.dir, "nope.json"),
        "--out",
        tmp.dir,
      ]);
      assert.equal(r.code, 3);
      assert.match(r.text, /nope\.json/);
    } finally {
      await tmp.cleanup();
    }
  });
});

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
});
