import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { decodeShard, encodeShard, ShardError } from "../../src/shards/lfs.ts";

describe(".lfs token shards (contract §3)", () => {
  const records = [
    { ids: [1, 5, 7, 2], mask: [0, 0, 1, 1] },
    { ids: [], mask: [] },
    { ids: [1, 511], mask: [0, 1] },
  ];
  test("byte layout: header, offsets, ids, mask, CRC-32 of everything before", () => {
    const b = encodeShard(records, 512);
    assert.equal(b.toString("ascii", 0, 8), "LFSHARD1");
    assert.equal(b.readUInt32LE(8), 1);
    assert.equal(b.readUInt32LE(12), 512);
    assert.equal(b.readBigUInt64LE(16), 3n);
    assert.equal(b.readBigUInt64LE(24), 6n);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => Number(b.readBigUInt64LE(32 + 8 * i))),
      [0, 4, 4, 6],
    );
    const idsAt = 32 + 8 * 4;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => b.readUInt32LE(idsAt + 4 * i)),
      [1, 5, 7, 2, 1, 511],
    );
    assert.deepEqual([...b.subarray(idsAt + 24, idsAt + 30)], [0, 0, 1, 1, 0, 1]);
    assert.equal(b.length, idsAt + 24 + 6 + 4);
    assert.equal(b.readUInt32LE(b.length - 4), crc32(b.subarray(0, b.length - 4)));
  });
  test("round trip", () => {
    const s = decodeShard(encodeShard(records, 512));
    assert.equal(s.vocabSize, 512);
    assert.deepEqual(
      s.records.map((r) => [Array.from(r.ids), Array.from(r.mask)]),
      records.map((r) => [r.ids, r.mask]),
    );
  });
  test("a flipped byte is caught by the CRC", () => {
    const b = encodeShard(records, 512);
    b[40] = (b[40] as number) ^ 1;
    assert.throws(() => decodeShard(b, "x.lfs"), /x\.lfs: CRC-32 mismatch/);
  });
  test("a truncated shard is refused", () => {
    assert.throws(
      () => decodeShard(encodeShard(records, 512).subarray(0, 50), "x.lfs"),
      /does not match the header/,
    );
  });
  test("ids at or above vocab_size, and masks other than 0/1, are refused when writing", () => {
    assert.throws(
      () => encodeShard([{ ids: [512], mask: [1] }], 512, "t.lfs"),
      (e: unknown) => e instanceof ShardError && /record 0, token 0: id 512/.test(e.message),
    );
    assert.throws(() => encodeShard([{ ids: [1], mask: [2] }], 512), /mask 2/);
    assert.throws(() => encodeShard([{ ids: [1, 2], mask: [1] }], 512), /2 ids but 1 mask/);
  });
});
