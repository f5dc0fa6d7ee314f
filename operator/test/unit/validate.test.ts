import assert from "node:assert/strict";
import { test } from "node:test";
import { Reason } from "@loraforge/crds";
import { estimateMemory, GiB, llamaShape } from "../../src/memoryFit.ts";
import { paramsFromName, parseParamCount } from "../../src/modelSize.ts";
import { validateForCluster } from "../../src/validate.ts";
import { lft } from "../support/fixtures.ts";

test("parameter counts from annotations and model names", () => {
  assert.equal(parseParamCount("7e9"), 7e9);
  assert.equal(parseParamCount("13B"), 13e9);
  assert.equal(parseParamCount("6.7b"), 6.7e9);
  assert.equal(parseParamCount("260K"), 260e3);
  assert.equal(parseParamCount("seven"), undefined);
  assert.equal(paramsFromName("llama-2-13b-hf"), 13e9);
  assert.equal(paramsFromName("hf://huggyllama/llama-7b"), 7e9);
  assert.equal(paramsFromName("stories260K"), undefined); // no separator before the size
  assert.equal(paramsFromName("tiny/stories-260k"), 260e3);
  assert.equal(paramsFromName("models/mistral"), undefined);
});

test("the derived shape of a 7B model is Llama-7B-like", () => {
  const s = llamaShape(7e9);
  assert.ok(s.hidden > 3800 && s.hidden < 4600, `hidden ${s.hidden}`);
  assert.ok(s.layers >= 30 && s.layers <= 36, `layers ${s.layers}`);
});

test("memory: checkpointing, micro-batch and quantization move the estimate the right way", () => {
  const base = lft({ training: { gradientCheckpointing: false, microBatchSize: 4 } }).spec;
  const ckpt = lft({ training: { gradientCheckpointing: true, microBatchSize: 4 } }).spec;
  const mb1 = lft({
    training: { gradientCheckpointing: false, microBatchSize: 1, batchSize: 128 },
  }).spec;
  const int8 = lft({ training: { gradientCheckpointing: true, quantization: "int8" } }).spec;
  const e = (s: typeof base) => estimateMemory(7e9, s, "fp16");
  assert.ok(e(ckpt).activations < e(base).activations / 5);
  assert.ok(e(mb1).activations < e(base).activations);
  assert.ok(Math.abs(e(int8).weights - 7e9) < 1);
  assert.ok(Math.abs(e(ckpt).weights - 14e9) < 1);
  // 7B fp16 weights alone are 13 GiB
  assert.ok(e(ckpt).weights / GiB > 13 && e(ckpt).weights / GiB < 13.1);
  // LoRA r16 on q,k,v,o: 4 modules · 2·r·h per layer
  const s = llamaShape(7e9);
  assert.equal(e(ckpt).trainableParams, s.layers * 4 * 2 * 16 * s.hidden);
});

test("bf16 on a V100 named through the node selector is refused with a clear message", () => {
  const v = validateForCluster(
    lft({
      training: { precision: "bf16" },
      resources: {
        gpuProduct: undefined,
        nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-SXM2-16GB" },
      },
    }),
  );
  assert.equal(v.ok, false);
  assert.equal(v.reason, Reason.PrecisionUnsupported);
  assert.match(v.message, /compute capability >= 8.0.*Tesla-V100-SXM2-16GB.*fp16/);
});

test("bf16 against the pool's default GPU product is refused too", () => {
  const v = validateForCluster(
    lft({ training: { precision: "bf16" }, resources: { gpuProduct: undefined } }),
    { defaultGpuProduct: "Tesla-T4" },
  );
  assert.equal(v.reason, Reason.PrecisionUnsupported);
});

test("13B without checkpointing on a 32 GB V100 is refused and says by how much", () => {
  const v = validateForCluster(
    lft({ modelPath: "llama-2-13b-hf", training: { gradientCheckpointing: false } }),
  );
  assert.equal(v.ok, false);
  assert.equal(v.reason, Reason.InsufficientGPUMemory);
  const m =
    /needs about ([\d.]+) GiB but Tesla-V100-SXM2-32GB has 32 GiB: over by ([\d.]+) GiB/.exec(
      v.message,
    );
  assert.ok(m, v.message);
  assert.ok(Math.abs(Number(m[1]) - 32 - Number(m[2])) < 0.2);
  assert.match(v.message, /gradientCheckpointing: true/);
});

test("13B fp16 with checkpointing fits a 32 GB V100, and says so", () => {
  const v = validateForCluster(lft({ modelPath: "llama-2-13b-hf" }));
  assert.equal(v.ok, true, v.message);
  assert.equal(v.reason, Reason.SpecValid);
  assert.match(v.message, /fits Tesla-V100-SXM2-32GB: about [\d.]+ of 32 GiB/);
});

test("7B fp16 without checkpointing does not fit a 16 GB V100; int8 with checkpointing does", () => {
  const product = { gpuProduct: "Tesla-V100-SXM2-16GB" };
  const refused = validateForCluster(
    lft({ resources: product, training: { gradientCheckpointing: false } }),
  );
  assert.equal(refused.reason, Reason.InsufficientGPUMemory);
  assert.match(refused.message, /over by 1[0-9]\.[0-9] GiB/);
  assert.equal(
    validateForCluster(lft({ resources: product, training: { quantization: "int8" } })).ok,
    true,
  );
});

test("int8 on a V100 for 13B warns but runs", () => {
  const v = validateForCluster(
    lft({ modelPath: "llama-2-13b-hf", training: { quantization: "int8" } }),
  );
  assert.equal(v.ok, true);
  assert.equal(v.reason, Reason.QuantizationWarning);
  assert.equal(v.warnings.length, 1);
  assert.match(v.warnings[0] ?? "", /overflow/);
  assert.equal(
    validateForCluster(lft({ training: { quantization: "int8" } })).reason,
    Reason.SpecValid,
    "7B int8 is fine",
  );
});

test("the annotation overrides the name, and a bad annotation names itself", () => {
  const big = validateForCluster(lft({ annotations: { "loraforge.dev/model-params": "65e9" } }));
  assert.equal(big.reason, Reason.InsufficientGPUMemory);
  assert.match(big.message, /annotation loraforge.dev\/model-params/);
  const bad = validateForCluster(lft({ annotations: { "loraforge.dev/model-params": "huge" } }));
  assert.equal(bad.reason, Reason.InvalidSpec);
  assert.match(bad.message, /loraforge.dev\/model-params.*"huge"/);
});

test("unknown model size or GPU skips the memory check and says why", () => {
  const v = validateForCluster(lft({ modelPath: "my-model" }));
  assert.equal(v.ok, true);
  assert.match(v.message, /model size unknown/);
  const cpu = validateForCluster(
    lft({ training: { precision: "fp32" }, resources: { gpus: 0, gpuProduct: undefined } }),
  );
  assert.equal(cpu.ok, true);
  assert.match(cpu.message, /CPU run/);
});
