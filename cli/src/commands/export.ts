import { parseArgs } from "node:util";
import { z } from "zod";
import { exportOnnx } from "../export/exportOnnx.ts";
import { findCore } from "../train/core.ts";
import { fmtInt, type Out, UsageError } from "./output.ts";

const Threshold = z.coerce.number().int().nonnegative();

export async function exportCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      adapter: { type: "string" },
      out: { type: "string" },
      dtype: { type: "string", default: "fp32" },
      force: { type: "boolean" },
      // hidden: lets a test put a small model's weights in model.onnx.data
      "external-data-threshold": { type: "string" },
    },
  });
  if (positionals[0] !== "onnx")
    throw new UsageError(`export knows one format, onnx (got "${positionals[0] ?? ""}")`, "export");
  if (positionals.length !== 2)
    throw new UsageError("export onnx takes one model directory", "export");
  const modelDir = (positionals[1] as string).replace(/\/+$/, "");
  if (values.dtype !== "fp32" && values.dtype !== "fp16")
    throw new UsageError(`--dtype must be fp32 or fp16 (got "${values.dtype}")`, "export");
  let externalThreshold: number | undefined;
  if (values["external-data-threshold"] !== undefined) {
    const t = Threshold.safeParse(values["external-data-threshold"]);
    if (!t.success)
      throw new UsageError(
        `--external-data-threshold must be a byte count (got "${values["external-data-threshold"]}")`,
        "export",
      );
    externalThreshold = t.data;
  }
  const outDir = values.out ?? `${(values.adapter ?? modelDir).replace(/\/+$/, "")}-onnx`;
  const r = await exportOnnx({
    modelDir,
    ...(values.adapter ? { adapterDir: values.adapter } : {}),
    outDir,
    dtype: values.dtype,
    ...(externalThreshold !== undefined ? { externalThreshold } : {}),
    ...(values.force ? { force: true } : {}),
    corePath: values.adapter ? findCore() : "",
    onLog: (line) => out.info(line),
  });
  const c = r.config;
  out.info(
    `exported ${r.outDir}: ${r.files.join(", ")} (${values.dtype} weights, ${fmtInt(r.weightBytes)} bytes${r.externalData ? " in model.onnx.data" : ""}; ${c.layers} layers, ${c.heads} heads / ${c.kvHeads} kv heads of ${c.headDim}, vocab ${c.vocab}, context ${c.maxPositions})`,
  );
  return 0;
}
