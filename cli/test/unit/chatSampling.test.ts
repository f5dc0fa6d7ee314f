// The chat page's sampler (ONNX Runtime gives it logits) against transformers' processors: the
// rows that native/golden/make_gen_golden.py wrote for the core's own check (test_generate.cpp),
// so the page and `loraforge-core generate` process logits the same way.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  chooseToken,
  processLogits,
  SamplingSchema,
  seededRandom,
} from "../../src/chat/sampling.ts";
import { readSafetensorsHeader, toFloat32 } from "../../src/safetensors/safetensors.ts";
import { REPO_ROOT } from "../support/helpers.ts";

const GEN_GOLDEN = join(REPO_ROOT, "native", "tests", "golden", "gen-v1");
const CONFIGS = ["stories260k", "gqa_bf16_sharded", "llama3_rope", "mha_untied_all7"];

async function tensor(file: string, name: string): Promise<Float32Array> {
  const e = (await readSafetensorsHeader(file)).get(name);
  assert.ok(e, `${file}: no tensor ${name}`);
  return toFloat32((await readFile(file)).subarray(e.begin, e.end), e.dtype, name);
}

describe("chat sampling = transformers' processors", () => {
  for (const cfg of CONFIGS)
    test(`${cfg}: penalty, temperature, top-k, top-p give transformers' scores exactly`, async () => {
      const dir = join(GEN_GOLDEN, cfg);
      const g = JSON.parse(await readFile(join(dir, "gen_golden.json"), "utf8")).processors as {
        context: number[];
        repetition_penalty: number;
        temperature: number;
        top_k: number;
        top_p: number;
      };
      const file = join(dir, "gen_golden.safetensors");
      const input = await tensor(file, "processors.input");
      const want = await tensor(file, "processors.output");
      const s = SamplingSchema.parse({
        temperature: g.temperature,
        topK: g.top_k,
        topP: g.top_p,
        repetitionPenalty: g.repetition_penalty,
      });
      const got = processLogits(input, new Set(g.context), s);
      const differ = [...got.keys()].filter((i) => !Object.is(got[i], want[i]));
      assert.deepEqual(
        differ.slice(0, 5).map((i) => `token ${i}: ours ${got[i]}, transformers ${want[i]}`),
        [],
        `${differ.length} of ${got.length} scores differ`,
      );
      // the row exercises each filter: some tokens kept, some removed, fewer than top_k left
      const kept = got.filter((v) => v !== Number.NEGATIVE_INFINITY).length;
      assert.ok(kept > 1 && kept < g.top_k, `${kept} kept`);
      // and a draw only ever picks a kept token
      const rnd = seededRandom(3);
      for (let i = 0; i < 50; i++) {
        const t = chooseToken(input, new Set(g.context), s, rnd);
        assert.notEqual(got[t], Number.NEGATIVE_INFINITY, `drew removed token ${t}`);
      }
    });

  test("top-k keeps the tokens tied with the k-th; greedy is the first argmax", () => {
    const logits = Float32Array.from([1, 3, 3, 2]);
    const topK1 = SamplingSchema.parse({ temperature: 1, topK: 1 });
    assert.deepEqual(
      [...processLogits(logits, new Set(), topK1)],
      [Number.NEGATIVE_INFINITY, 3, 3, Number.NEGATIVE_INFINITY],
    );
    assert.equal(chooseToken(logits, new Set(), SamplingSchema.parse({}), Math.random), 1);
  });
});
