import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readConfig } from "../../src/llama2c/checkpoint.ts";
import { importLlama2c } from "../../src/llama2c/import.ts";
import { decodeSafetensors } from "../../src/safetensors/safetensors.ts";
import { loadModelTokenizer } from "../../src/tokenizer/tokenizer.ts";
import { ASSETS, GOLDEN, tempDir } from "../support/helpers.ts";

const S = join(ASSETS, "stories260K");

describe("import llama2c: stories260K", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let fromModel: string;
  let fromBin: string;
  before(async () => {
    tmp = await tempDir();
    fromModel = join(tmp.dir, "from-model");
    fromBin = join(tmp.dir, "from-bin");
    await importLlama2c({
      checkpoint: join(S, "stories260K.bin"),
      tokenizer: join(S, "tok512.model"),
      outDir: fromModel,
    });
    await importLlama2c({
      checkpoint: join(S, "stories260K.bin"),
      tokenizer: join(S, "tok512.bin"),
      outDir: fromBin,
    });
  });
  after(() => tmp.cleanup());

  test("config.json is FORMAT.md's Hugging Face config", async () => {
    const c = JSON.parse(await readFile(join(fromModel, "config.json"), "utf8"));
    assert.deepEqual(
      [
        c.hidden_size,
        c.intermediate_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.vocab_size,
      ],
      [64, 172, 5, 8, 4, 512],
    );
    assert.equal(c.tie_word_embeddings, true);
    assert.equal(c.rms_norm_eps, 1e-5);
    assert.equal(c.rope_theta, 10000);
    assert.equal(c.bos_token_id, 1);
    assert.equal(c.eos_token_id, 2);
  });

  test("tensors: names, shapes, values; q/k rows permuted to rotate_half", async () => {
    const raw = await readFile(join(S, "stories260K.bin"));
    const tensors = decodeSafetensors(await readFile(join(fromModel, "model.safetensors")));
    assert.equal(tensors.size, 2 + 9 * 5);
    assert.equal(tensors.has("lm_head.weight"), false, "tied: no separate lm_head");
    const f = (i: number) => raw.readFloatLE(28 + 4 * i);
    const embed = tensors.get("model.embed_tokens.weight");
    assert.deepEqual(embed?.shape, [512, 64]);
    assert.equal(embed?.data[12345], Math.fround(f(12345)));
    // wq starts after embed (512*64) and rms_att (5*64); row r of head h in HF layout is row
    // 2i (first half) or 2i+1 (second half) of llama2.c's interleaved pairs.
    const wq0 = 512 * 64 + 5 * 64;
    const q = tensors.get("model.layers.0.self_attn.q_proj.weight");
    assert.deepEqual(q?.shape, [64, 64]);
    const headSize = 8;
    for (const [h, i, j] of [
      [0, 0, 0],
      [0, 3, 1],
      [5, 2, 0],
      [7, 3, 1],
    ] as const) {
      const srcRow = h * headSize + 2 * i + j;
      const dstRow = h * headSize + j * (headSize / 2) + i;
      for (const col of [0, 17, 63])
        assert.equal(q?.data[dstRow * 64 + col], Math.fround(f(wq0 + srcRow * 64 + col)));
    }
    const k = tensors.get("model.layers.4.self_attn.k_proj.weight");
    assert.deepEqual(k?.shape, [32, 64]);
    assert.deepEqual(tensors.get("model.layers.2.mlp.down_proj.weight")?.shape, [64, 172]);
  });

  test("tokenizer.json from tok512.model and from tok512.bin are the same", async () => {
    assert.equal(
      await readFile(join(fromModel, "tokenizer.json"), "utf8"),
      await readFile(join(fromBin, "tokenizer.json"), "utf8"),
    );
  });

  test("encodes like sentencepiece on every golden string, and 'Once upon a time' as in expected_greedy.json", async () => {
    const tok = await loadModelTokenizer(fromModel);
    const expected = JSON.parse(await readFile(join(S, "expected_greedy.json"), "utf8"));
    assert.deepEqual(tok.encode("Once upon a time"), expected.encode_once_upon_a_time_with_bos);
    const golden = JSON.parse(
      await readFile(join(GOLDEN, "stories260k_sentencepiece.json"), "utf8"),
    ) as {
      strings: string[];
      ids: number[][];
    };
    assert.ok(golden.strings.length >= 500);
    const bad = golden.strings.filter(
      (s, i) => tok.encoder.encode(s).join() !== (golden.ids[i] as number[]).join(),
    );
    assert.deepEqual(bad, []);
    assert.equal(
      tok.encoder.decode(tok.encoder.encode("Lily had a red ball.")),
      "Lily had a red ball.",
    );
  });

  test("importing the same files again is a no-op; another directory in the way is refused", async () => {
    const again = await importLlama2c({
      checkpoint: join(S, "stories260K.bin"),
      tokenizer: join(S, "tok512.model"),
      outDir: fromModel,
    });
    assert.equal(again.written, false);
    const other = join(tmp.dir, "other");
    await import("node:fs/promises").then((fs) => fs.mkdir(other));
    await assert.rejects(
      importLlama2c({
        checkpoint: join(S, "stories260K.bin"),
        tokenizer: join(S, "tok512.model"),
        outDir: other,
      }),
      /already exists and is not an imported model/,
    );
  });

  test("a truncated checkpoint is refused with its sizes, and nothing is written", async () => {
    const raw = await readFile(join(S, "stories260K.bin"));
    const cut = join(tmp.dir, "cut.bin");
    await writeFile(cut, raw.subarray(0, raw.length - 100));
    const out = join(tmp.dir, "cut-model");
    await assert.rejects(
      importLlama2c({ checkpoint: cut, tokenizer: join(S, "tok512.model"), outDir: out }),
      /cut\.bin: size 1056440 bytes does not match its header .* expected 1056540/,
    );
    assert.equal(existsSync(out), false);
  });

  test("a tokenizer of another size is refused", async () => {
    const tb = await readFile(join(S, "tok512.bin"));
    const cut = join(tmp.dir, "tok-cut.bin");
    await writeFile(cut, tb.subarray(0, 3000));
    await assert.rejects(
      importLlama2c({
        checkpoint: join(S, "stories260K.bin"),
        tokenizer: cut,
        outDir: join(tmp.dir, "x"),
      }),
      /tok-cut\.bin: ends after \d+ of 512 tokens/,
    );
  });

  test("a file that is not a checkpoint has an implausible header", () => {
    assert.throws(
      () => readConfig(Buffer.from("this is not a llama2.c checkpoint at all"), "t.bin"),
      /t\.bin: implausible header/,
    );
  });
});
