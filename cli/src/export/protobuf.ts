/**
 * The few protobuf wire-format pieces ONNX needs (varints, length-delimited fields, fixed32),
 * written as a list of chunks so that large tensor bytes are never copied while nesting.
 */

/** An encoded message: its chunks in order and their total length. */
export interface Encoded {
  chunks: Uint8Array[];
  length: number;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

function varint(value: bigint): Uint8Array {
  // negative int64 values are sent as their two's complement (10 bytes), as protobuf does
  let v = value < 0n ? value + (1n << 64n) : value;
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

export class MessageWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private tag(field: number, wire: number): void {
    this.push(varint(BigInt((field << 3) | wire)));
  }

  /** int32, int64, enum and bool fields. */
  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.push(varint(BigInt(value)));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.push(varint(BigInt(value.length)));
    if (value.length > 0) this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Encoded): this {
    this.tag(field, WIRE_LEN);
    this.push(varint(BigInt(value.length)));
    for (const c of value.chunks) this.chunks.push(c);
    this.length += value.length;
    return this;
  }

  finish(): Encoded {
    return { chunks: this.chunks, length: this.length };
  }
}

/** One contiguous buffer (for files that must be a single write, or tests). */
export function concatEncoded(e: Encoded): Uint8Array {
  const out = new Uint8Array(e.length);
  let at = 0;
  for (const c of e.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
