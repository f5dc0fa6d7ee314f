/**
 * The end token: what training appends to each response is a token generation stops on. For the
 * Llama-2 tokenizer that is EOS (the masking goldens); for a model imported from llama2.c it is BOS,
 * which separated its training stories (it never saw EOS).
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { prepareDataset } from "../../src/prepare/prepare.ts";
import { decodeShard } from "../../src/shards/lfs.ts";
import { loadModelTokenizer, TokenizerError } from "../../src/tokenizer/tokenizer.ts";
import { importStories260K, llama2TokenizerDir, STORIES, tempDir } from "../support/helpers.ts";

async function lastTokens(modelDir: string, dataDir: string) {
  const prepared = await prepareDataset({
    datasetFile: STORIES,
    modelDir,
    template: { name: "alpaca_short" },
    cutoffLen: 512,
    trainOnInputs: false,
    addEos: true,
    valSetSize: 4,
    seed: 42,
    dataDir,
  });
  const shard = decodeShard(await readFile(prepared.trainShard));
  const ends = shard.records.map((r) => ({
    id: r.ids[r.ids.length - 1] as number,
    trained: r.mask[r.mask.length - 1] as number,
  }));
  return { manifest: prepared.manifest, ends };
}

describe("the end token: what training appends and generation stops on", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let stories: string;
  let llama2: string;
  before(async () => {
    tmp = await tempDir();
    stories = join(tmp.dir, "stories260K");
    await importStories260K(stories);
    llama2 = join(tmp.dir, "llama2");
    await mkdir(llama2);
    await llama2TokenizerDir(llama2);
  });
  after(() => tmp.cleanup());

  test("import llama2c: generation ends on BOS; config.json and the tokenizer keep EOS 2", async () => {
    const gen = JSON.parse(await readFile(join(stories, "generation_config.json"), "utf8"));
    assert.deepEqual(gen, { bos_token_id: 1, eos_token_id: 1 });
    const cfg = JSON.parse(await readFile(join(stories, "config.json"), "utf8"));
    assert.equal(cfg.eos_token_id, 2);
    const tok = await loadModelTokenizer(stories);
    assert.equal(tok.eosId, 2);
    assert.equal(tok.endId, 1);
    assert.deepEqual(tok.stopIds, [1]);
  });

  test("prepare ends every response of a llama2.c import with BOS, trained on", async () => {
    const { manifest, ends } = await lastTokens(stories, join(tmp.dir, "data-stories"));
    assert.equal(ends.length, 380);
    assert.ok(
      ends.every((e) => e.id === 1 && e.trained === 1),
      "every example ends with a trained BOS",
    );
    assert.equal(manifest.special.end, 1);
    assert.equal(manifest.inputs.endId, 1);
  });

  test("prepare ends every response with EOS 2 for the Llama-2 tokenizer", async () => {
    const tok = await loadModelTokenizer(llama2);
    assert.equal(tok.endId, 2);
    assert.deepEqual(tok.stopIds, [2]);
    const { manifest, ends } = await lastTokens(llama2, join(tmp.dir, "data-llama2"));
    assert.ok(ends.every((e) => e.id === 2 && e.trained === 1));
    assert.equal(manifest.special.end, 2);
  });

  test("the end token is part of the prepared data's digest", async () => {
    const dir = join(tmp.dir, "llama2-stops-13");
    await mkdir(dir);
    await llama2TokenizerDir(dir);
    const before = await lastTokens(dir, join(tmp.dir, "data-13"));
    await writeFile(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: 13 }));
    const after = await lastTokens(dir, join(tmp.dir, "data-13"));
    assert.notEqual(after.manifest.digest, before.manifest.digest);
    assert.ok(after.ends.every((e) => e.id === 13));
  });

  test("generation_config.json: EOS stays the end token when generation also stops on it", async () => {
    const dir = join(tmp.dir, "llama2-gen");
    await mkdir(dir);
    await llama2TokenizerDir(dir);
    const gen = join(dir, "generation_config.json");
    // Llama-3-Instruct style: several stop tokens, the tokenizer's EOS among them
    await writeFile(gen, JSON.stringify({ eos_token_id: [13, 2] }));
    let tok = await loadModelTokenizer(dir);
    assert.deepEqual([tok.endId, tok.stopIds], [2, [13, 2]]);
    assert.equal(tok.stopSource, "eos_token_id of generation_config.json");
    // null (as transformers writes an unset field): the tokenizer's EOS
    await writeFile(gen, JSON.stringify({ eos_token_id: null, temperature: 0.6 }));
    tok = await loadModelTokenizer(dir);
    assert.deepEqual([tok.endId, tok.stopIds, tok.stopSource], [2, [2], "the tokenizer's eos"]);
  });

  test("a bad generation_config.json eos_token_id is refused, naming the file and field", async () => {
    const dir = join(tmp.dir, "llama2-bad");
    await mkdir(dir);
    await llama2TokenizerDir(dir);
    const gen = join(dir, "generation_config.json");
    const refused = async (value: unknown, message: RegExp) => {
      await writeFile(gen, JSON.stringify({ eos_token_id: value }));
      await assert.rejects(loadModelTokenizer(dir), (e: unknown) => {
        assert.ok(e instanceof TokenizerError);
        assert.equal(e.problems[0]?.file, gen);
        assert.equal(e.problems[0]?.field, "eos_token_id");
        assert.match(e.message, message);
        return true;
      });
    };
    await refused(40000, /id 40000 is outside the model's vocabulary \(vocab_size 32000\)/);
    await refused([], /lists no token/);
    await refused("</s>", /eos_token_id/);
    await writeFile(gen, "{");
    await assert.rejects(loadModelTokenizer(dir), /generation_config\.json: invalid JSON/);
  });
});
