// Integration: what an admin sees of runs without reading logs — Events on the run (with
// the operator pod as reportingInstance) and the run metrics on /metrics — while runs go
// through their phases against a real API server (the test plays the kubelet and the
// trainer's status writes).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import type { Operator } from "../../src/operator.ts";
import {
  type Env,
  eventually,
  getJob,
  lftPath,
  podOf,
  podRunning,
  podTerminated,
  setup,
  startOperator,
  teardown,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

const POD_NAME = "loraforge-operator-7c9f8d-x4k2p";

const EventList = z.object({
  items: z.array(
    z.object({
      reason: z.string(),
      type: z.string(),
      message: z.string(),
      reportingInstance: z.string().optional(),
      involvedObject: z.object({ name: z.string() }),
    }),
  ),
});

describe("Events and run metrics against a real API server", () => {
  let env: Env;
  let op: Operator;

  before(async () => {
    env = await setup("observe");
    op = await startOperator(env, { podName: POD_NAME });
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const eventsOf = async (name: string) =>
    EventList.parse(await env.client.get(`/api/v1/namespaces/${env.ns}/events`)).items.filter(
      (e) => e.involvedObject.name === name,
    );
  const scrape = async () => (await fetch(`http://127.0.0.1:${op.httpPort}/metrics`)).text();
  const value = (text: string, series: string) =>
    Number(
      text
        .split("\n")
        .find((l) => l.startsWith(`${series} `))
        ?.split(" ")[1],
    );

  test("a run's Events: JobCreated, TrainingStarted, CheckpointSaved, Evaluating, Succeeded", async () => {
    await env.client.create(lftPath(env.ns), manifest({ name: "happy" }));
    const job = await eventually("the Job", () => getJob(env, "happy-train"));
    const pod = await podOf(env, job.metadata.name);
    await podRunning(env, pod.metadata.name);
    await waitPhase(env, "happy", "Running");
    // The trainer's writes: a checkpoint, then training done (→ Evaluating).
    const status = `${lftPath(env.ns, "happy")}/status`;
    await env.client.patch(
      status,
      {
        status: {
          progress: { step: 200, totalSteps: 400, summary: "200/400 (50%)", loss: 1.3 },
          checkpoints: [
            { step: 200, path: "/mnt/pvc/runs/happy/checkpoints/checkpoint-200", trainLoss: 1.3 },
          ],
        },
      },
      "merge",
    );
    await eventually("CheckpointSaved", async () =>
      (await eventsOf("happy")).some((e) => e.reason === "CheckpointSaved") ? true : undefined,
    );
    await env.client.patch(
      status,
      { status: { progress: { step: 400, totalSteps: 400, summary: "400/400 (100%)" } } },
      "merge",
    );
    await waitPhase(env, "happy", "Evaluating");
    await podTerminated(env, pod.metadata.name, 0);
    await waitPhase(env, "happy", "Succeeded");

    const events = await eventually("the Succeeded event", async () => {
      const all = await eventsOf("happy");
      return all.some((e) => e.reason === "Succeeded") ? all : undefined;
    });
    // Each once (Event times have one-second resolution, so the order is not compared).
    assert.deepEqual(events.map((e) => e.reason).sort(), [
      "CheckpointSaved",
      "Evaluating",
      "JobCreated",
      "Succeeded",
      "TrainingStarted",
    ]);
    const checkpoint = events.find((e) => e.reason === "CheckpointSaved");
    assert.equal(
      checkpoint?.message,
      "step 200: /mnt/pvc/runs/happy/checkpoints/checkpoint-200 (train loss 1.3000)",
    );
    for (const e of events) {
      assert.equal(e.reportingInstance, POD_NAME, `${e.reason}: reportingInstance is the pod`);
      assert.equal(e.type, "Normal");
    }
  });

  test("failures are Warning 'Failed' events and count in loraforge_runs_failed_total{reason}", async () => {
    const before = await scrape();
    assert.equal(value(before, 'loraforge_runs_failed_total{reason="NaNLoss"}'), 0);
    // Trainer exit 4 (NaN) …
    await env.client.create(lftPath(env.ns), manifest({ name: "nan" }));
    const job = await eventually("the Job", () => getJob(env, "nan-train"));
    const pod = await podOf(env, job.metadata.name);
    await podTerminated(env, pod.metadata.name, 4, "Error", "layer 31 down_proj: loss is NaN");
    await waitPhase(env, "nan", "Failed");
    // … and a spec the cluster refuses (bf16 on a V100) before any Job exists.
    await env.client.create(
      lftPath(env.ns),
      manifest({
        name: "bf16",
        training: { precision: "bf16" },
        resources: {
          gpuProduct: undefined,
          nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB" },
        },
      }),
    );
    await waitPhase(env, "bf16", "Failed");

    const text = await eventually("the failure counters", async () => {
      const t = await scrape();
      return value(t, 'loraforge_runs_failed_total{reason="PrecisionUnsupported"}') === 1
        ? t
        : undefined;
    });
    assert.equal(value(text, 'loraforge_runs_failed_total{reason="NaNLoss"}'), 1);
    assert.equal(value(text, 'loraforge_runs_failed_total{reason="OOMKilled"}'), 0);
    const [failed] = (await eventsOf("nan")).filter((e) => e.reason === "Failed");
    assert.equal(failed?.type, "Warning");
    assert.match(failed?.message ?? "", /^NaNLoss: pod nan-train-\w+: trainer exited with code 4/);
    assert.equal(failed?.reportingInstance, POD_NAME);
  });

  test("/metrics: run duration and queue wait histograms, runs by phase", async () => {
    const text = await scrape();
    // happy waited from creation to its first Running; nan never ran.
    assert.equal(value(text, "loraforge_run_queue_wait_seconds_count"), 1);
    // Seconds here (no queue, a free "node"); 300 s leaves room for a busy test machine.
    assert.ok(value(text, "loraforge_run_queue_wait_seconds_sum") < 300);
    assert.equal(value(text, 'loraforge_run_queue_wait_seconds_bucket{le="300"}'), 1);
    assert.equal(value(text, 'loraforge_run_queue_wait_seconds_bucket{le="+Inf"}'), 1);
    assert.equal(value(text, 'loraforge_run_duration_seconds_count{phase="Succeeded"}'), 1);
    assert.equal(
      value(text, 'loraforge_run_duration_seconds_bucket{le="300",phase="Succeeded"}'),
      1,
    );
    // nan's Job started (startTime) and failed; bf16 never started: no duration.
    assert.equal(value(text, 'loraforge_run_duration_seconds_count{phase="Failed"}'), 1);
    assert.equal(value(text, 'loraforge_runs{phase="Succeeded"}'), 1);
    assert.equal(value(text, 'loraforge_runs{phase="Failed"}'), 2);
    assert.equal(value(text, 'loraforge_runs{phase="Running"}'), 0);
    assert.match(text, /# HELP loraforge_run_queue_wait_seconds /);
    assert.match(text, /# TYPE loraforge_run_duration_seconds histogram/);
  });
});
