import { crc32 } from "node:zlib";
import { CliError } from "../errors.ts";

/**
 * Token shards, `.lfs` version 1 (docs/CONTRACTS.md §3): the file the core trains from.
 *
 *   0   8   magic "LFSHARD1"
 *   8   4   u32 version = 1
 *   12  4   u32 vocab_size
 *   16  8   u64 n_records
 *   24  8   u64 n_tokens
 *   32  8*(n_records+1)  u64 offsets
 *   ..  4*n_tokens  u32 token ids
 *   ..  n_tokens    u8 loss mask
 *   ..  4   u32 CRC-32 (zlib) of every byte before it
 * Little-endian throughout.
 */
export const SHARD_MAGIC = "LFSHARD1";
export const SHARD_VERSION = 1;
const HEADER_BYTES = 32;

export interface ShardRecord {
  ids: ArrayLike<number>;
  mask: ArrayLike<number>;
}

export interface Shard {
  vocabSize: number;
  records: { ids: Uint32Array; mask: Uint8Array }[];
  nTokens: number;
}

export class ShardError extends CliError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "ShardError";
  }
}

/** Serializes records into one shard buffer. Throws on an id >= vocabSize or a mask/ids mismatch. */
export function encodeShard(
  records: readonly ShardRecord[],
  vocabSize: number,
  file = "<shard>",
): Buffer {
  if (!Number.isInteger(vocabSize) || vocabSize <= 0 || vocabSize > 0xffffffff)
    throw new ShardError(file, `invalid vocab_size ${vocabSize}`);
  let nTokens = 0;
  records.forEach((r, i) => {
    if (r.ids.length !== r.mask.length)
      throw new ShardError(
        file,
        `record ${i}: ${r.ids.length} ids but ${r.mask.length} mask entries`,
      );
    nTokens += r.ids.length;
  });
  const n = records.length;
  const idsAt = HEADER_BYTES + 8 * (n + 1);
  const maskAt = idsAt + 4 * nTokens;
  const crcAt = maskAt + nTokens;
  const buf = Buffer.alloc(crcAt + 4);
  buf.write(SHARD_MAGIC, 0, "ascii");
  buf.writeUInt32LE(SHARD_VERSION, 8);
  buf.writeUInt32LE(vocabSize, 12);
  buf.writeBigUInt64LE(BigInt(n), 16);
  buf.writeBigUInt64LE(BigInt(nTokens), 24);
  let offset = 0;
  let t = 0;
  buf.writeBigUInt64LE(0n, HEADER_BYTES);
  for (let i = 0; i < n; i++) {
    const r = records[i] as ShardRecord;
    for (let k = 0; k < r.ids.length; k++) {
      const id = r.ids[k] as number;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new ShardError(
          file,
          `record ${i}, token ${k}: id ${id} is not below vocab_size ${vocabSize}`,
        );
      buf.writeUInt32LE(id, idsAt + 4 * t);
      const m = r.mask[k];
      if (m !== 0 && m !== 1)
        throw new ShardError(file, `record ${i}, token ${k}: mask ${m} is not 0 or 1`);
      buf[maskAt + t] = m;
      t++;
    }
    offset += r.ids.length;
    buf.writeBigUInt64LE(BigInt(offset), HEADER_BYTES + 8 * (i + 1));
  }
  buf.writeUInt32LE(crc32(buf.subarray(0, crcAt)), crcAt);
  return buf;
}

/** Parses and fully checks a shard buffer (the same checks the core makes). */
export function decodeShard(buf: Uint8Array, file = "<shard>"): Shard {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < HEADER_BYTES + 8 + 4)
    throw new ShardError(file, `too short (${b.length} bytes) to be a shard`);
  if (b.toString("ascii", 0, 8) !== SHARD_MAGIC)
    throw new ShardError(file, "bad magic (not an .lfs shard)");
  const version = b.readUInt32LE(8);
  if (version !== SHARD_VERSION) throw new ShardError(file, `unsupported version ${version}`);
  const vocabSize = b.readUInt32LE(12);
  const n64 = b.readBigUInt64LE(16);
  const t64 = b.readBigUInt64LE(24);
  const expected = BigInt(HEADER_BYTES) + 8n * (n64 + 1n) + 5n * t64 + 4n;
  if (expected !== BigInt(b.length))
    throw new ShardError(file, `size ${b.length} does not match the header (expected ${expected})`);
  const n = Number(n64);
  const nTokens = Number(t64);
  const crcAt = b.length - 4;
  const stored = b.readUInt32LE(crcAt);
  const actual = crc32(b.subarray(0, crcAt));
  if (stored !== actual)
    throw new ShardError(
      file,
      `CRC-32 mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)})`,
    );
  const idsAt = HEADER_BYTES + 8 * (n + 1);
  const maskAt = idsAt + 4 * nTokens;
  const records: Shard["records"] = [];
  let prev = 0;
  if (b.readBigUInt64LE(HEADER_BYTES) !== 0n) throw new ShardError(file, "offsets[0] is not 0");
  for (let i = 0; i < n; i++) {
    const end = Number(b.readBigUInt64LE(HEADER_BYTES + 8 * (i + 1)));
    if (end < prev || end > nTokens)
      throw new ShardError(file, `offsets[${i + 1}] = ${end} is out of order`);
    const ids = new Uint32Array(end - prev);
    for (let k = 0; k < ids.length; k++) {
      const id = b.readUInt32LE(idsAt + 4 * (prev + k));
      if (id >= vocabSize)
        throw new ShardError(file, `record ${i}: id ${id} >= vocab_size ${vocabSize}`);
      ids[k] = id;
    }
    const mask = new Uint8Array(b.subarray(maskAt + prev, maskAt + end));
    for (let k = 0; k < mask.length; k++)
      if ((mask[k] as number) > 1)
        throw new ShardError(file, `record ${i}: mask byte ${mask[k]} is not 0 or 1`);
    records.push({ ids, mask });
    prev = end;
  }
  if (prev !== nTokens) throw new ShardError(file, `last offset ${prev} != n_tokens ${nTokens}`);
  return { vocabSize, records, nTokens };
}
