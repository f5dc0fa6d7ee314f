/**
 * safetensors files: 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the raw data. Only F32 is written here (what llama2.c holds).
 */
import { open } from "node:fs/promises";
import { z } from "zod";

export interface F32Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(
  tensors: readonly F32Tensor[],
  metadata: Record<string, string> = {},
): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: "pt", ...metadata } };
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`duplicate tensor name ${t.name}`);
    seen.add(t.name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(
        `tensor ${t.name}: shape [${t.shape}] holds ${count} values but data has ${t.data.length}`,
      );
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (isLittleEndian) bytes.copy(out, at);
    else for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i] as number, at + 4 * i);
    at += bytes.length;
  }
  return out;
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const EntrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});

/** Reads F32 tensors back (for tests and checks). */
export function decodeSafetensors(buf: Buffer, file = "<safetensors>"): Map<string, F32Tensor> {
  if (buf.length < 8) throw new Error(`${file}: too short to be safetensors`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length)
    throw new Error(`${file}: header length ${n} runs past the end of the file`);
  const header = JSON.parse(buf.toString("utf8", 8, 8 + n)) as Record<string, unknown>;
  const base = 8 + n;
  const out = new Map<string, F32Tensor>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const e = EntrySchema.parse(raw);
    if (e.dtype !== "F32")
      throw new Error(`${file}: tensor ${name} is ${e.dtype}, only F32 is read here`);
    const [begin, end] = e.data_offsets;
    const data = new Float32Array((end - begin) / 4);
    for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(base + begin + 4 * i);
    out.set(name, { name, shape: e.shape, data });
  }
  return out;
}

/** A tensor's place in a safetensors file, without its data (for reading one tensor at a time). */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

/** Reads only the header of a safetensors file: name → dtype, shape and byte range. */
export async function readSafetensorsHeader(file: string): Promise<Map<string, SafetensorsEntry>> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(8);
    if (size < 8 || (await fh.read(head, 0, 8, 0)).bytesRead < 8)
      throw new Error(`${file}: too short to be safetensors`);
    const n = Number(head.readBigUInt64LE(0));
    if (8 + n > size) throw new Error(`${file}: header length ${n} runs past the end of the file`);
    const json = Buffer.alloc(n);
    await fh.read(json, 0, n, 8);
    const header = JSON.parse(json.toString("utf8")) as Record<string, unknown>;
    const out = new Map<string, SafetensorsEntry>();
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const parsed = EntrySchema.safeParse(raw);
      if (!parsed.success) throw new Error(`${file}: tensor ${name}: ${parsed.error.message}`);
      const e = parsed.data;
      const [begin, end] = e.data_offsets;
      if (8 + n + end > size || begin > end)
        throw new Error(
          `${file}: tensor ${name} has byte range [${begin}, ${end}) outside the file`,
        );
      out.set(name, {
        name,
        dtype: e.dtype,
        shape: e.shape,
        begin: 8 + n + begin,
        end: 8 + n + end,
      });
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** Widens little-endian F32, F16 or BF16 bytes to float32 (exactly: every value is representable). */
export function toFloat32(bytes: Uint8Array, dtype: string, what: string): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F32") {
    const out = new Float32Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  if (dtype === "BF16") {
    const out = new Float32Array(bytes.length / 2);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
    return out;
  }
  if (dtype === "F16") {
    const out = new Float32Array(bytes.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
    return out;
  }
  throw new Error(`${what} is ${dtype}; only F32, F16 and BF16 weights are read`);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
