import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  loadModelTokenizer,
  type ModelTokenizer,
  TokenizerError,
} from "../../src/tokenizer/tokenizer.ts";
import { GOLDEN, llama2TokenizerDir, tempDir } from "../support/helpers.ts";

describe("Llama-2 tokenizer.json vs the Rust tokenizers library", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let tok: ModelTokenizer;
  before(async () => {
    tmp = await tempDir();
    tok = await loadModelTokenizer(await llama2TokenizerDir(tmp.dir));
  });
  after(() => tmp.cleanup());

  test("special ids come from the model", () => {
    assert.equal(tok.bosId, 1);
    assert.equal(tok.eosId, 2);
    assert.equal(tok.padId, 0);
    assert.equal(tok.addBos, true);
    assert.equal(tok.encoder.preSplit, true);
  });

  test("at least 500 strings encode to the same ids as Python tokenizers", async () => {
    const golden = JSON.parse(await readFile(join(GOLDEN, "llama2_tokenizer.json"), "utf8")) as {
      strings: string[];
      ids: number[][];
    };
    assert.ok(golden.strings.length >= 500, `only ${golden.strings.length} golden strings`);
    const mismatches: string[] = [];
    golden.strings.forEach((s, i) => {
      const ours = tok.encode(s);
      const theirs = golden.ids[i] as number[];
      if (ours.join(",") !== theirs.join(","))
        mismatches.push(
          `#${i} ${JSON.stringify(s.slice(0, 60))}: ours [${ours.slice(0, 12)}] python [${theirs.slice(0, 12)}]`,
        );
    });
    assert.deepEqual(mismatches, []);
  });
});

describe("special-token checks", () => {
  test("bos equal to eos is refused (the decapoda failure)", async () => {
    const tmp = await tempDir();
    try {
      const dir = await llama2TokenizerDir(tmp.dir);
      const tc = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8"));
      tc.eos_token = "<s>";
      await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(tc));
      await writeFile(
        join(dir, "config.json"),
        JSON.stringify({ vocab_size: 32000, bos_token_id: 1, eos_token_id: 1 }),
      );
      await assert.rejects(loadModelTokenizer(dir), (e: unknown) => {
        assert.ok(e instanceof TokenizerError);
        assert.match(e.message, /bos and eos are the same token/);
        return true;
      });
    } finally {
      await tmp.cleanup();
    }
  });

  test("config.json and tokenizer_config.json that disagree are refused, naming the field", async () => {
    const tmp = await tempDir();
    try {
      const dir = await llama2TokenizerDir(tmp.dir);
      await writeFile(
        join(dir, "config.json"),
        JSON.stringify({ vocab_size: 32000, bos_token_id: 0, eos_token_id: 2 }),
      );
      await assert.rejects(loadModelTokenizer(dir), /bos_token_id.*disagree/s);
    } finally {
      await tmp.cleanup();
    }
  });

  test("a tokenizer larger than the model's vocabulary is refused", async () => {
    const tmp = await tempDir();
    try {
      const dir = await llama2TokenizerDir(tmp.dir);
      await writeFile(
        join(dir, "config.json"),
        JSON.stringify({ vocab_size: 512, bos_token_id: 1, eos_token_id: 2 }),
      );
      await assert.rejects(loadModelTokenizer(dir), /32000 ids but the model's vocab_size is 512/);
    } finally {
      await tmp.cleanup();
    }
  });

  test("a missing tokenizer.json names the file", async () => {
    const tmp = await tempDir();
    try {
      await assert.rejects(loadModelTokenizer(tmp.dir), /tokenizer\.json: cannot read/);
    } finally {
      await tmp.cleanup();
    }
  });
});
