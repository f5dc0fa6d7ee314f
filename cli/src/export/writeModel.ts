/**
 * Writes model.onnx (and model.onnx.data when the weights are too large for one protobuf, which
 * is limited to 2 GB) into a directory. Weights are loaded one at a time; with external data each
 * goes straight to the data file at a 4 KiB-aligned offset (mmap-friendly), so memory stays at
 * about one tensor.
 */
import { open } from "node:fs/promises";
import { join } from "node:path";
import { toHalf } from "./fp16.ts";
import type { LlamaGraph, WeightDtype } from "./llamaGraph.ts";
import { bytesOf, DataType, encodeModel, type ModelInfo, type Tensor } from "./onnx.ts";

export const MODEL_FILE = "model.onnx";
export const DATA_FILE = "model.onnx.data";
/** protobuf's hard limit is 2 GiB; keep a margin for the graph itself */
export const DEFAULT_EXTERNAL_THRESHOLD = 2 ** 31 - 64 * 2 ** 20;
const ALIGN = 4096;

export interface WrittenModel {
  externalData: boolean;
  weightBytes: number;
  files: string[];
}

export async function writeModel(
  dir: string,
  built: LlamaGraph,
  dtype: WeightDtype,
  info: ModelInfo,
  externalThreshold = DEFAULT_EXTERNAL_THRESHOLD,
): Promise<WrittenModel> {
  const elemBytes = dtype === "fp16" ? 2 : 4;
  const weightBytes = built.weights.reduce(
    (sum, w) => sum + w.dims.reduce((a, b) => a * b, 1) * elemBytes,
    0,
  );
  // the RoPE tables and shape constants stay in the protobuf: count them against its limit too
  const constantBytes = built.constants.reduce(
    (sum, t) => sum + (t.data instanceof Uint8Array ? t.data.length : 0),
    0,
  );
  const external = weightBytes + constantBytes > externalThreshold;
  const encode = async (w: LlamaGraph["weights"][number]): Promise<Uint8Array> => {
    const values = await w.load();
    return dtype === "fp16" ? bytesOf(toHalf(values, `tensor ${w.name}`)) : bytesOf(values);
  };
  const dataType = dtype === "fp16" ? DataType.FLOAT16 : DataType.FLOAT;
  const tensors: Tensor[] = [];
  if (external) {
    const fh = await open(join(dir, DATA_FILE), "w");
    try {
      let offset = 0;
      for (const w of built.weights) {
        const bytes = await encode(w);
        offset = Math.ceil(offset / ALIGN) * ALIGN;
        await fh.write(bytes, 0, bytes.length, offset);
        tensors.push({
          name: w.name,
          dataType,
          dims: w.dims,
          data: { location: DATA_FILE, offset, length: bytes.length },
        });
        offset += bytes.length;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  } else {
    for (const w of built.weights)
      tensors.push({ name: w.name, dataType, dims: w.dims, data: await encode(w) });
  }
  const encoded = encodeModel(
    { ...built.graph, initializers: [...built.constants, ...tensors] },
    info,
  );
  const fh = await open(join(dir, MODEL_FILE), "w");
  try {
    // writev takes at most IOV_MAX buffers per call
    for (let i = 0; i < encoded.chunks.length; i += 1024)
      await fh.writev(encoded.chunks.slice(i, i + 1024));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return {
    externalData: external,
    weightBytes,
    files: external ? [MODEL_FILE, DATA_FILE] : [MODEL_FILE],
  };
}
