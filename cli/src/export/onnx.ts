/**
 * The ONNX messages a decoder graph needs (onnx/onnx.proto field numbers), a small graph builder,
 * and the model encoder. Tensors either carry their bytes (raw_data, little-endian) or point into
 * an external data file (docs/ExternalData.md of onnx: location, offset, length).
 */
import { type Encoded, MessageWriter } from "./protobuf.ts";

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** A numeric dimension, or a symbolic one such as "batch_size". */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: DataTypeCode;
  shape: Dim[];
}

export interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
}

export interface Tensor {
  name: string;
  dataType: DataTypeCode;
  dims: number[];
  /** raw_data bytes, or where they are in the external data file */
  data: Uint8Array | ExternalLocation;
}

export type Attribute =
  | { int: number }
  | { float: number }
  | { ints: number[] }
  | { string: string }
  | { tensor: Tensor };

export interface Node {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Tensor[];
}

export interface ModelInfo {
  irVersion: number;
  /** ai.onnx opset version */
  opset: number;
  producerName: string;
  producerVersion: string;
  metadata: Record<string, string>;
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_INTS = 7;
const DATA_LOCATION_EXTERNAL = 1;

export function encodeTensor(t: Tensor): Encoded {
  const w = new MessageWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.data instanceof Uint8Array) {
    w.bytes(9, t.data);
  } else {
    const entry = (k: string, v: string) => new MessageWriter().string(1, k).string(2, v).finish();
    w.message(13, entry("location", t.data.location));
    w.message(13, entry("offset", String(t.data.offset)));
    w.message(13, entry("length", String(t.data.length)));
    w.int(14, DATA_LOCATION_EXTERNAL);
  }
  return w.finish();
}

function encodeAttribute(name: string, a: Attribute): Encoded {
  const w = new MessageWriter().string(1, name);
  if ("int" in a) w.int(3, a.int).int(20, ATTR_INT);
  else if ("float" in a) w.float(2, a.float).int(20, ATTR_FLOAT);
  else if ("ints" in a) {
    for (const v of a.ints) w.int(8, v);
    w.int(20, ATTR_INTS);
  } else if ("string" in a) w.string(4, a.string).int(20, ATTR_STRING);
  else w.message(5, encodeTensor(a.tensor)).int(20, ATTR_TENSOR);
  return w.finish();
}

function encodeNode(n: Node): Encoded {
  const w = new MessageWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const [k, a] of Object.entries(n.attributes)) w.message(5, encodeAttribute(k, a));
  return w.finish();
}

function encodeValueInfo(v: ValueInfo): Encoded {
  const shape = new MessageWriter();
  for (const d of v.shape) {
    const dim = new MessageWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim.finish());
  }
  const tensorType = new MessageWriter().int(1, v.elemType).message(2, shape.finish()).finish();
  const type = new MessageWriter().message(1, tensorType).finish();
  return new MessageWriter().string(1, v.name).message(2, type).finish();
}

function encodeGraph(g: Graph): Encoded {
  const w = new MessageWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const i of g.inputs) w.message(11, encodeValueInfo(i));
  for (const o of g.outputs) w.message(12, encodeValueInfo(o));
  return w.finish();
}

export function encodeModel(g: Graph, info: ModelInfo): Encoded {
  const w = new MessageWriter()
    .int(1, info.irVersion)
    .string(2, info.producerName)
    .string(3, info.producerVersion)
    .message(7, encodeGraph(g))
    .message(8, new MessageWriter().string(1, "").int(2, info.opset).finish());
  for (const [k, v] of Object.entries(info.metadata))
    w.message(14, new MessageWriter().string(1, k).string(2, v).finish());
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Graph builder: nodes get unique names and outputs; constants become initializers.

export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly constants: Tensor[] = [];
  private counter = 0;

  /** Adds a node and returns its output names (`outputs` of them). */
  op(
    opType: string,
    inputs: string[],
    attributes: Record<string, Attribute> = {},
    outputs: number | string[] = 1,
  ): string[] {
    const id = this.counter++;
    const outs =
      typeof outputs === "number"
        ? Array.from({ length: outputs }, (_, k) => `/${opType}_${id}/out${k}`)
        : outputs;
    this.nodes.push({ opType, name: `/${opType}_${id}`, inputs, outputs: outs, attributes });
    return outs;
  }

  /** One-output node. */
  op1(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}): string {
    return this.op(opType, inputs, attributes, 1)[0] as string;
  }

  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.constants.push({ name, dataType: DataType.INT64, dims, data: bytesOf(data) });
    return name;
  }

  float(name: string, values: ArrayLike<number>, dims: number[] = [values.length]): string {
    this.constants.push({
      name,
      dataType: DataType.FLOAT,
      dims,
      data: bytesOf(Float32Array.from(values)),
    });
    return name;
  }
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian bytes of a typed array (raw_data layout). */
export function bytesOf(a: Float32Array | BigInt64Array | Uint16Array | Int32Array): Uint8Array {
  if (!isLittleEndian) throw new Error("ONNX export needs a little-endian machine");
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
