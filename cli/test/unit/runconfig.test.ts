import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseLoraFineTune } from "@loraforge/crds";
import { buildRunJson, RunConfigError } from "../../src/train/runConfig.ts";

const spec = (over: Record<string, unknown> = {}, dataset: Record<string, unknown> = {}) =>
  parseLoraFineTune({
    apiVersion: "loraforge.dev/v1alpha1",
    kind: "LoraFineTune",
    metadata: { name: "x" },
    spec: {
      baseModel: { source: { pvc: { claimName: "m", path: "llama" } } },
      dataset: { source: { pvc: { claimName: "d", path: "a.json" } }, ...dataset },
      training: over,
      output: { pvc: { claimName: "r", path: "o" } },
    },
  }).spec;

const input = (s: ReturnType<typeof spec>, backend: "cpu" | "cuda" = "cpu") => ({
  spec: s,
  modelDir: "/m",
  trainShard: "/o/data/train.lfs",
  valShard: "/o/data/val.lfs",
  outDir: "/o",
  backend,
  threads: 0,
  baseModelName: "llama",
});

describe("spec -> run.json (contract §2)", () => {
  test("alpaca-lora's defaults, in the core's snake_case", () => {
    const r = buildRunJson(input(spec()));
    assert.equal(r.version, 1);
    assert.deepEqual(r.lora, {
      r: 16,
      alpha: 16,
      dropout: 0.05,
      target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"],
      use_rslora: false,
    });
    assert.equal(r.training.learning_rate, 3e-4);
    assert.equal(r.training.batch_size, 128);
    assert.equal(r.training.micro_batch_size, 4);
    assert.equal(r.training.epochs, 3);
    assert.equal(r.training.warmup_steps, 100);
    assert.equal(r.training.precision, "fp32", "auto is fp32 on cpu");
    assert.equal(r.training.group_by_length, false);
    assert.deepEqual(r.intervals, {
      log_steps: 1,
      eval_steps: 200,
      save_steps: 200,
      save_total_limit: 3,
    });
    assert.deepEqual(r.val_shards, ["/o/data/val.lfs"]);
  });
  test("groupByLength reaches the core", () => {
    assert.equal(
      buildRunJson(input(spec({}, { groupByLength: true }))).training.group_by_length,
      true,
    );
  });
  test("fp16 and quantization are refused on the cpu backend, naming the field", () => {
    assert.throws(
      () => buildRunJson(input(spec({ precision: "fp16" }))),
      (e: unknown) => e instanceof RunConfigError && e.field === "training.precision",
    );
    assert.throws(
      () => buildRunJson(input(spec({ quantization: "nf4" }))),
      (e: unknown) => e instanceof RunConfigError && e.field === "training.quantization",
    );
    assert.equal(
      buildRunJson(input(spec({ precision: "fp16" }), "cuda")).training.precision,
      "fp16",
    );
  });
});
