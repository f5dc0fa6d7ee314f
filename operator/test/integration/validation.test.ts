// Integration: runs the cluster cannot serve are refused with a condition and no Job.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Reason } from "@loraforge/crds";
import { z } from "zod";
import type { Operator } from "../../src/operator.ts";
import {
  condition,
  type Env,
  eventually,
  getJob,
  lftPath,
  setup,
  startOperator,
  teardown,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

describe("V100 awareness against a real API server", () => {
  let env: Env;
  let op: Operator;
  before(async () => {
    env = await setup("validation");
    op = await startOperator(env, { defaultGpuProduct: "Tesla-V100-SXM2-16GB" });
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const create = (o: Parameters<typeof manifest>[0]) =>
    env.client.create(lftPath(env.ns), manifest(o));

  test("bf16 on a V100 named by node selector → Failed PrecisionUnsupported, no Job", async () => {
    await create({
      name: "bf16-selector",
      training: { precision: "bf16" },
      resources: {
        gpuProduct: undefined,
        nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-PCIE-32GB" },
      },
    });
    const l = await waitPhase(env, "bf16-selector", "Failed");
    const v = condition(l, "Validated");
    assert.equal(v?.status, "False");
    assert.equal(v?.reason, Reason.PrecisionUnsupported);
    assert.match(v?.message ?? "", /bf16 needs compute capability >= 8.0.*Tesla-V100-PCIE-32GB/);
    assert.equal(l.status?.failure?.reason, Reason.PrecisionUnsupported);
    assert.equal(await getJob(env, "bf16-selector-train"), undefined);
  });

  test("bf16 against the pool default (a V100) → refused too", async () => {
    await create({
      name: "bf16-default",
      modelPath: "tiny-260k",
      training: { precision: "bf16" },
      resources: { gpuProduct: undefined },
    });
    const l = await waitPhase(env, "bf16-default", "Failed");
    assert.equal(condition(l, "Validated")?.reason, Reason.PrecisionUnsupported);
    assert.equal(await getJob(env, "bf16-default-train"), undefined);
  });

  test("a 13B run without checkpointing that cannot fit → Failed InsufficientGPUMemory, says by how much", async () => {
    await create({
      name: "too-big",
      modelPath: "llama-2-13b-hf",
      training: { gradientCheckpointing: false },
    });
    const l = await waitPhase(env, "too-big", "Failed");
    const v = condition(l, "Validated");
    assert.equal(v?.reason, Reason.InsufficientGPUMemory);
    assert.match(
      v?.message ?? "",
      /needs about [\d.]+ GiB but Tesla-V100-SXM2-32GB has 32 GiB: over by [\d.]+ GiB/,
    );
    assert.equal(await getJob(env, "too-big-train"), undefined);
  });

  test("the size annotation is honoured: 65B refused on the 16 GB default pool", async () => {
    await create({
      name: "annotated",
      modelPath: "my-model",
      annotations: { "loraforge.dev/model-params": "65e9" },
      resources: { gpuProduct: undefined },
    });
    const l = await waitPhase(env, "annotated", "Failed");
    assert.match(
      condition(l, "Validated")?.message ?? "",
      /Tesla-V100-SXM2-16GB has 16 GiB: over by/,
    );
  });

  test("int8 for 13B on a V100 runs, with a QuantizationWarning condition and a Warning event", async () => {
    await create({
      name: "int8-13b",
      modelPath: "llama-2-13b-hf",
      training: { quantization: "int8" },
    });
    const job = await eventually("the Job", () => getJob(env, "int8-13b-train"));
    assert.ok(job);
    const l = await waitPhase(env, "int8-13b", "Pending");
    const v = condition(l, "Validated");
    assert.equal(v?.status, "True");
    assert.equal(v?.reason, Reason.QuantizationWarning);
    const Events = z.object({
      items: z.array(
        z.object({
          reason: z.string(),
          type: z.string(),
          message: z.string(),
          involvedObject: z.object({ name: z.string() }),
        }),
      ),
    });
    await eventually("the warning event", async () => {
      const items = Events.parse(await env.client.get(`/api/v1/namespaces/${env.ns}/events`)).items;
      return items.find(
        (e) =>
          e.involvedObject.name === "int8-13b" &&
          e.type === "Warning" &&
          e.reason === Reason.QuantizationWarning &&
          /overflow/.test(e.message),
      );
    });
  });
});
