/**
 * `loraforge chat` end to end in headless Chromium: the page loads, an instruction is typed,
 * tokens stream in over server-sent events from the inference worker, and the finished page is
 * saved as a screenshot (test artifact: $LORAFORGE_TEST_ARTIFACTS or test-results/artifacts).
 * Also: greedy generation on the exported model picks the core's greedy tokens, and the sampler.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { OnnxDecoder } from "../../src/chat/decoder.ts";
import { chooseToken, SamplingSchema, seededRandom } from "../../src/chat/sampling.ts";
import { startChat } from "../../src/chat/start.ts";
import { exportOnnx } from "../../src/export/exportOnnx.ts";
import { ExportError } from "../../src/export/hfModel.ts";
import { findCore } from "../../src/train/core.ts";
import { importStories260K, REPO_ROOT, tempDir } from "../support/helpers.ts";
import { randomAdapter } from "../support/loraFixture.ts";

const ARTIFACTS = resolve(
  process.env.LORAFORGE_TEST_ARTIFACTS ?? join(REPO_ROOT, "test-results", "artifacts"),
);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const core = findCore();
/** page code, as a string: this package is compiled without the DOM types */
const DONE = `document.getElementById("status").textContent.startsWith("done")`;

let tmp: Awaited<ReturnType<typeof tempDir>>;
let model: string;
before(async () => {
  tmp = await tempDir("lf-chat-");
  model = join(tmp.dir, "stories260K");
  await importStories260K(model);
});
after(() => tmp.cleanup());

describe("chat: generation on the exported model", () => {
  test("greedy tokens equal loraforge-core generate's", async () => {
    const e = await exportOnnx({
      modelDir: model,
      outDir: join(tmp.dir, "onnx"),
      dtype: "fp32",
      corePath: core,
    });
    const decoder = await OnnxDecoder.load(join(e.outDir, "model.onnx"));
    const prompt = [1, 403, 281, 9, 77, 310];
    const s = SamplingSchema.parse({ maxNewTokens: 20 });
    const got: number[] = [];
    const gen = decoder.generate(prompt, s, new Set());
    for (let r = await gen.next(); !r.done; r = await gen.next()) got.push(r.value);
    await decoder.release();
    const prompts = join(tmp.dir, "prompts.jsonl");
    await writeFile(prompts, `${JSON.stringify({ id: "p", tokens: prompt })}\n`);
    const r = spawnSync(
      core,
      [
        "generate",
        "--model",
        model,
        "--prompts",
        prompts,
        "--max-new-tokens",
        "20",
        "--stop-tokens",
        "",
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const seq = r.stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l))
      .find((ev) => ev.event === "sequence");
    assert.deepEqual(got, seq.tokens);
  });

  test("sampling: temperature 0 is argmax after the penalty; top-k 1 is greedy; a seed repeats", () => {
    const logits = Float32Array.from([1, 3, 2.9, -1]);
    const greedy = SamplingSchema.parse({});
    assert.equal(chooseToken(logits, new Set(), greedy, Math.random), 1);
    const penalized = SamplingSchema.parse({ repetitionPenalty: 1.2 });
    assert.equal(chooseToken(logits, new Set([1]), penalized, Math.random), 2, "3/1.2 < 2.9");
    const topK1 = SamplingSchema.parse({ temperature: 1, topK: 1 });
    for (let i = 0; i < 20; i++)
      assert.equal(chooseToken(logits, new Set(), topK1, Math.random), 1);
    const topP = SamplingSchema.parse({ temperature: 1, topP: 0.4 });
    for (let i = 0; i < 20; i++) assert.equal(chooseToken(logits, new Set(), topP, Math.random), 1);
    const hot = SamplingSchema.parse({ temperature: 2 });
    const draw = (seed: number) => {
      const rnd = seededRandom(seed);
      return Array.from({ length: 30 }, () => chooseToken(logits, new Set(), hot, rnd));
    };
    assert.deepEqual(draw(7), draw(7));
    assert.ok(new Set(draw(7)).size > 1, "sampling at temperature 2 varies");
  });
});

describe("chat: the page in headless Chromium", () => {
  test("type an instruction, tokens stream in, base/tuned switch, screenshot", async (t) => {
    const adapter = await randomAdapter(model, join(tmp.dir, "adapter"), 0.1);
    const chat = await startChat({
      modelDir: model,
      adapterDir: adapter,
      host: "127.0.0.1",
      port: 0,
      template: { name: "alpaca_short" },
      threads: 1,
      corePath: core,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 640 } });
      await page.goto(chat.url);
      await page.waitForSelector('input[name="variant"][value="tuned"]');
      assert.equal(await page.isChecked('input[name="variant"][value="tuned"]'), true);
      await page.fill("#instruction", "Write a story about Lily and a cat.");
      await page.fill("#maxNewTokens", "60");
      // count the token events as the page receives them
      await page.evaluate(`
        window.streamed = [];
        new MutationObserver(() => window.streamed.push(document.getElementById("output").textContent.length))
          .observe(document.getElementById("output"), { childList: true, characterData: true, subtree: true });
      `);
      await page.click("#generate");
      await page.waitForFunction(DONE, null, { timeout: 60_000 });
      const tuned = await page.textContent("#output");
      const status = await page.textContent("#status");
      const lengths = (await page.evaluate("window.streamed")) as number[];
      assert.ok(tuned && tuned.trim().length > 0, "a response was shown");
      assert.ok(new Set(lengths.filter((n) => n > 0)).size > 3, `text grew in steps: ${lengths}`);
      assert.match(status ?? "", /done: \d+ tokens/);
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "chat.png") });
      t.diagnostic(`screenshot: ${join(ARTIFACTS, "chat.png")}; ${lengths.length} text updates`);
      // the base model answers the same instruction differently
      await page.check('input[name="variant"][value="base"]');
      await page.click("#generate");
      await page.waitForFunction(DONE, null, { timeout: 60_000 });
      assert.notEqual(await page.textContent("#output"), tuned);
      const bad = await page.request.get(`${chat.url}api/generate?instruction=&variant=base`);
      assert.equal(bad.status(), 400);
      assert.match(await bad.text(), /instruction: is empty/);
    } finally {
      await browser.close();
      await chat.close();
    }
  });
});

describe("chat --onnx: an exported tuned model", () => {
  /** The whole server-sent event stream of one greedy answer. */
  async function answer(url: string, variant: string): Promise<string> {
    const q = new URLSearchParams({
      instruction: "Write a story about Lily and a cat.",
      variant,
      temperature: "0",
      maxNewTokens: "30",
    });
    const res = await fetch(`${url}api/generate?${q}`);
    assert.equal(res.status, 200, await res.clone().text());
    return res.text();
  }

  test("is the tuned variant and answers as --adapter does; an export of another model is refused", async () => {
    const adapter = await randomAdapter(model, join(tmp.dir, "adapter-onnx"), 0.1);
    const e = await exportOnnx({
      modelDir: model,
      adapterDir: adapter,
      outDir: join(tmp.dir, "tuned-onnx"),
      dtype: "fp32",
      corePath: core,
    });
    const common = {
      host: "127.0.0.1",
      port: 0,
      template: { name: "alpaca_short" as const },
      threads: 1,
    };
    const fromFile = await startChat({
      ...common,
      modelDir: model,
      onnxFile: join(e.outDir, "model.onnx"),
      corePath: "",
    });
    const merged = await startChat({
      ...common,
      modelDir: model,
      adapterDir: adapter,
      corePath: core,
    });
    try {
      const info = (await (await fetch(`${fromFile.url}api/info`)).json()) as {
        variants: { name: string; label: string }[];
      };
      assert.deepEqual(info.variants, [
        { name: "base", label: "base (stories260K)" },
        { name: "tuned", label: "tuned (tuned-onnx)" },
      ]);
      const tuned = await answer(fromFile.url, "tuned");
      assert.match(tuned, /event: token\n[\s\S]*event: done\n/);
      assert.equal(tuned, await answer(merged.url, "tuned"), "the same tokens as --adapter");
      assert.notEqual(tuned, await answer(fromFile.url, "base"), "the adapter is in the file");
    } finally {
      await fromFile.close();
      await merged.close();
    }
    // an export of another model: the page would tokenize with stories260K's 512-token vocabulary
    const other = await exportOnnx({
      modelDir: join(REPO_ROOT, "native", "tests", "golden", "v1", "gqa_bf16_sharded", "model"),
      outDir: join(tmp.dir, "other-onnx"),
      dtype: "fp32",
      corePath: "",
    });
    // (a page that starts anyway is closed, so a failure here cannot leave the test hanging)
    const refused = await startChat({
      ...common,
      modelDir: model,
      onnxFile: join(other.outDir, "model.onnx"),
      corePath: "",
    }).then(
      (started) => started.close(),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof ExportError, `refused with an ExportError, got ${refused}`);
    assert.match(
      refused.message,
      /other-onnx\/config\.json: field 'vocab_size': \d+, but the model's .*stories260K\/config\.json has 512: --onnx must be an export of/,
    );
  });
});
