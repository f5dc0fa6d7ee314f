import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { printEvaluation } from "../../src/commands/eval.ts";
import { buildEvalExamples, loadEvalRecords } from "../../src/eval/examples.ts";
import { templateMarkers } from "../../src/eval/metrics.ts";
import { answerResult, modelMetrics } from "../../src/eval/report.ts";
import { DEFAULT_GENERATION, type EvalResult, prepareEvaluation } from "../../src/eval/run.ts";
import { main } from "../../src/main.ts";
import { loadTemplate, prepareDataset } from "../../src/prepare/prepare.ts";
import { ALPACA_SHORT } from "../../src/prompt/templates.ts";
import { decodeShard } from "../../src/shards/lfs.ts";
import { loadModelTokenizer } from "../../src/tokenizer/tokenizer.ts";
import { selectCheckpoint } from "../../src/train/select.ts";
import { importStories260K, llama2TokenizerDir, STORIES, tempDir } from "../support/helpers.ts";

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
