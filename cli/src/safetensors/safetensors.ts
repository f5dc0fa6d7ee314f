/**
 * safetensors files: 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the raw data. Only F32 is written here (what llama2.c holds).
 */
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
