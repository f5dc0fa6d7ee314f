import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildExample } from "../../src/prepare/example.ts";
import { BUILTIN_TEMPLATES, CompiledTemplate } from "../../src/prompt/templates.ts";
import { loadModelTokenizer, type ModelTokenizer } from "../../src/tokenizer/tokenizer.ts";
import { GOLDEN, llama2TokenizerDir, tempDir } from "../support/helpers.ts";

interface GoldenConfig {
  template: "alpaca" | "alpaca_short";
  cutoff_len: number;
  train_on_inputs: boolean;
  records: { instruction: string; input: string; output: string }[];
  input_ids: number[][];
  labels: number[][];
}

describe("masking and truncation vs alpaca-lora's generate_and_tokenize_prompt (Python)", async () => {
  const golden = JSON.parse(await readFile(join(GOLDEN, "alpaca_lora_masking.json"), "utf8")) as {
    configs: GoldenConfig[];
  };
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let tok: ModelTokenizer;
  before(async () => {
    tmp = await tempDir();
    tok = await loadModelTokenizer(await llama2TokenizerDir(tmp.dir));
  });
  after(() => tmp.cleanup());

  test("the golden covers 200 records, both masking modes and truncation", () => {
    assert.equal(golden.configs[0]?.records.length, 200);
    assert.ok(golden.configs.some((c) => c.train_on_inputs));
    assert.ok(golden.configs.some((c) => c.input_ids.some((ids) => ids.length === c.cutoff_len)));
  });

  for (const c of golden.configs) {
    test(`${c.template}, cutoff ${c.cutoff_len}, trainOnInputs ${c.train_on_inputs}: same ids, same masks`, () => {
      const template = CompiledTemplate.compile(BUILTIN_TEMPLATES[c.template]);
      c.records.forEach((r, i) => {
        const ex = buildExample(r, template, tok, {
          cutoffLen: c.cutoff_len,
          trainOnInputs: c.train_on_inputs,
          addEos: true,
        });
        assert.deepEqual(ex.ids, c.input_ids[i], `record ${i}: ids`);
        const labels = (c.labels[i] as number[]).map((l) => (l === -100 ? 0 : 1));
        assert.deepEqual(Array.from(ex.mask), labels, `record ${i}: mask`);
      });
    });
  }

  test("EOS is appended when it fits and not when the cutoff is reached", () => {
    const template = CompiledTemplate.compile(BUILTIN_TEMPLATES.alpaca);
    const r = { instruction: "Say hi.", input: "", output: "Hi!" };
    const ex = buildExample(r, template, tok, {
      cutoffLen: 512,
      trainOnInputs: false,
      addEos: true,
    });
    assert.equal(ex.ids[0], tok.bosId);
    assert.equal(ex.ids[ex.ids.length - 1], tok.eosId);
    assert.equal(ex.mask[ex.mask.length - 1], 1, "EOS is a training target");
    const prompt = tok.encode(template.render(r.instruction, r.input));
    assert.equal(ex.promptLength, prompt.length);
    assert.ok(Array.from(ex.mask.subarray(0, prompt.length)).every((m) => m === 0));
    assert.ok(Array.from(ex.mask.subarray(prompt.length)).every((m) => m === 1));
    const cut = buildExample(r, template, tok, {
      cutoffLen: ex.ids.length - 1,
      trainOnInputs: false,
      addEos: true,
    });
    assert.equal(cut.ids.length, ex.ids.length - 1);
    assert.notEqual(cut.ids[cut.ids.length - 1], tok.eosId);
    assert.equal(cut.truncated, true);
    const noEos = buildExample(r, template, tok, {
      cutoffLen: 512,
      trainOnInputs: false,
      addEos: false,
    });
    assert.deepEqual(noEos.ids, ex.ids.slice(0, -1));
  });
});
