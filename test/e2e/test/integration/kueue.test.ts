// GPU pools through Kueue on the real node: a real Kueue (v0.17, test/k8s/src/kueue.ts), the
// admin's Kueue setup rendered by the chart and applied as an admin would, and trainer pods that
// request nvidia.com/gpu. The node has no GPU: it advertises two as an extended resource (a PATCH
// of its status, the documented mechanism) with the product label the ResourceFlavor selects, and
// the operator runs with the chart's TEST-ONLY setting testing.cpuTrainerForGpuRuns, so those
// pods train on the CPU, which every such run's status says. The ClusterQueue has quota for ONE
// GPU, so Kueue, not the node, decides who runs:
//
// - two runs, quota for one: the second is Queued with Kueue's reason, then Running (its
//   trainer reporting) once the first finishes;
// - preemption by priority without lost work: a low run trains, a high run preempts it (SIGTERM,
//   checkpoint, exit 130), the low run shows Queued with Kueue's words, the high one succeeds, the
//   low one is readmitted, resumes from its checkpoint and ends at the uninterrupted run's adapter.
//
// `kubectl get lft -o wide`, the Workloads and the preempted run's status history go to stderr
// with the prefix [e2e]. Needs what stories260k.test.ts needs (docs/TESTING.md).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { advertiseGpus, eventually, nodeGpus } from "@loraforge/test-k8s";
import { z } from "zod";
import { type E2eEnv, log, NS, setUp, storiesRun, tearDown } from "../support/cluster.ts";
import { conditionOf, type Lft, lftPath, Runs } from "../support/runs.ts";

const FLAVOR = "v100-test";
const PRODUCT = "Tesla-V100-SXM2-32GB";
const QUEUE = "gpu-queue";
/** GPUs the node advertises: more than the quota, so the queue (not the node) holds runs back. */
const NODE_GPUS = 2;
const ON_CPU = "training on CPU: test setting testing.cpuTrainerForGpuRuns";

/** The admin's Kueue setup (chart values under `kueue`): one flavor, quota for one GPU. */
const kueueValues = {
  enabled: true,
  flavors: [{ name: FLAVOR, nodeLabels: { "nvidia.com/gpu.product": PRODUCT } }],
  clusterQueues: [
    { name: "gpu", quotas: [{ flavor: FLAVOR, gpus: 1, cpu: "16", memory: "32Gi" }] },
  ],
  localQueues: [{ name: QUEUE, namespace: NS, clusterQueue: "gpu" }],
  priorityClasses: [
    { name: "loraforge-high", value: 1000, description: "deadline runs" },
    { name: "loraforge-low", value: 100, description: "background runs" },
  ],
};

/**
 * The stories260K example as a GPU run through the queue, with the example's checkpoint
 * selection (lowestTrainLoss): a preempted run must deliver the same selected adapter as an
 * uninterrupted one (the checkpoint written at the interruption is only for resuming). No
 * evaluation: the file is about scheduling, and the trainer's eval is tested elsewhere.
 */
function gpuRun(name: string, priorityClass?: string, epochs = 10) {
  const lft = storiesRun(name, (spec) => {
    spec.resources = { gpus: 1, gpuProduct: PRODUCT };
    spec.queueName = QUEUE;
    if (priorityClass) spec.priorityClass = priorityClass;
    spec.evaluation = { enabled: false };
    spec.training.epochs = epochs;
  });
  // the model's size, so the memory fit is checked against the flavor Kueue picks
  lft.metadata.annotations = { "loraforge.dev/model-params": "260K" };
  return lft;
}

let env: E2eEnv;
let runs: Runs;
/** The first run of the quota test: uninterrupted, the preempted run's reference. */
let uninterrupted: Lft | undefined;

const Pods = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string(), deletionTimestamp: z.string().optional() }),
      spec: z.object({ nodeName: z.string().optional() }).passthrough(),
      status: z
        .object({
          phase: z.string().optional(),
          containerStatuses: z
            .array(
              z.object({
                name: z.string(),
                state: z
                  .object({
                    terminated: z
                      .object({ exitCode: z.number(), reason: z.string().optional() })
                      .optional(),
                  })
                  .optional(),
              }),
            )
            .optional(),
        })
        .optional(),
    }),
  ),
});
const podsOf = async (run: string) =>
  Pods.parse(
    await env.cluster.client.get(
      `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(`loraforge.dev/run=${run}`)}`,
    ),
  ).items;

/** Deletes a run and waits until its Job (and so its Workload's quota) is gone. */
async function deleteRun(name: string) {
  await env.cluster.client.request("DELETE", lftPath(name), {
    apiVersion: "v1",
    kind: "DeleteOptions",
    propagationPolicy: "Foreground",
  });
  await eventually(
    `${name} and its Job gone`,
    async () => {
      const r = await env.cluster.client.request("GET", lftPath(name));
      const job = await env.cluster.client.find(
        `/apis/batch/v1/namespaces/${NS}/jobs/${name}-train`,
      );
      return r.status === 404 && job === undefined ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

describe("GPU pools through Kueue on a real node", { timeout: 1_200_000 }, () => {
  let advertiseSeconds = 0;
  const t0 = Date.now();

  before(async () => {
    env = await setUp({
      kueue: true,
      beforeChart: async (cluster) => {
        const node = cluster.node?.name;
        if (!node) throw new Error("the e2e cluster has no node");
        advertiseSeconds = await advertiseGpus(cluster.client, node, NODE_GPUS, PRODUCT);
        log(
          `node ${node} advertises ${NODE_GPUS} nvidia.com/gpu (${PRODUCT}) after ${advertiseSeconds.toFixed(1)} s`,
        );
      },
      chart: {
        values: { "testing.cpuTrainerForGpuRuns": "true" },
        json: { kueue: kueueValues },
      },
    });
    runs = new Runs(env.cluster);
    await eventually(
      "ClusterQueue gpu active",
      async () => {
        const cq = z
          .object({
            status: z
              .object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })) })
              .optional(),
          })
          .parse(await env.cluster.client.get("/apis/kueue.x-k8s.io/v1beta2/clusterqueues/gpu"));
        if (!cq.status?.conditions.some((c) => c.type === "Active" && c.status === "True"))
          throw new Error(`ClusterQueue gpu not active: ${JSON.stringify(cq.status)}`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    log(`set-up with Kueue done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });
  after(async () => {
    log(`file took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    await tearDown();
  });

  test("two GPU runs, quota for one: the second is Queued with Kueue's reason, then Running once the first finishes; both say they train on CPU", async () => {
    const t1 = Date.now();
    await runs.create(gpuRun("first"));
    const firstRunning = await runs.until("first", (l) => l.status?.phase === "Running");
    await runs.create(gpuRun("second"));
    const queued = await runs.until(
      "second",
      (l) =>
        l.status?.phase === "Queued" &&
        /insufficient unused quota for nvidia\.com\/gpu in flavor v100-test/.test(
          conditionOf(l, "Admitted")?.message ?? "",
        ),
      { also: ["first"] },
    );
    assert.equal(queued.status?.reason, "QueuedByKueue");
    log(`second, queued: ${conditionOf(queued, "Admitted")?.message}`);
    await runs.printIfMoved(true);

    // The GPU run trains on the CPU, and says so: the GPU column and the Validated condition.
    assert.equal(firstRunning.status?.gpu, `1x ${PRODUCT}, ${ON_CPU}`);
    assert.match(conditionOf(firstRunning, "Validated")?.message ?? "", new RegExp(`^${ON_CPU}`));
    // Admitted by Kueue to the flavor; the memory fit is named against the flavor's GPU.
    assert.match(
      conditionOf(firstRunning, "Admitted")?.message ?? "",
      new RegExp(
        `ClusterQueue gpu with flavor ${FLAVOR} .*; flavor ${FLAVOR} \\(${PRODUCT}\\): fits, about [\\d.]+ of 32 GiB`,
      ),
    );
    const [firstPod] = await podsOf("first");
    assert.equal(firstPod?.spec.nodeName, env.cluster.node?.name, "the GPU pod runs on the node");

    // The first finishes; Kueue admits the second, whose trainer then reports progress.
    uninterrupted = await runs.until("first", (l) => l.status?.phase === "Succeeded", {
      also: ["second"],
    });
    const running = await runs.until(
      "second",
      (l) => l.status?.phase === "Running" && (l.status.progress?.step ?? 0) > 0,
      { also: ["first"] },
    );
    assert.equal(running.status?.reason, "Training");
    await runs.printIfMoved(true);
    const phases = (runs.history.get("second") ?? []).map((h) => h.phase);
    assert.ok(
      phases.indexOf("Queued") >= 0 && phases.indexOf("Queued") < phases.indexOf("Running"),
      `second: Queued, then Running: ${phases.join(" → ")}`,
    );
    runs.printHistory("second");

    // the trainer's own words (its pod log) that the backend is the CPU, and why
    const logText = String(
      await env.cluster.client.getAs(
        `/api/v1/namespaces/${NS}/pods/${firstPod?.metadata.name}/log?container=trainer`,
        "*/*", // the log is text/plain, which the API server offers only to a wildcard
      ),
    );
    const line = logText.split("\n").find((l) => l.includes("backend cpu"));
    log(`first's trainer log: ${line}`);
    assert.match(
      line ?? "",
      /backend cpu for resources\.gpus 1: training on CPU under the cluster's test-only setting testing\.cpuTrainerForGpuRuns/,
    );

    await deleteRun("second");
    // The node still advertises its GPUs after minutes of kubelet status updates (every 2 s).
    const gpus = await nodeGpus(env.cluster.client, env.cluster.node?.name ?? "");
    log(`node after the runs: ${JSON.stringify(gpus)}`);
    assert.deepEqual(gpus, {
      capacity: String(NODE_GPUS),
      allocatable: String(NODE_GPUS),
      product: PRODUCT,
    });
    log(`quota test ${((Date.now() - t1) / 1000).toFixed(0)} s`);
  });

  test("preemption without lost work: a high run preempts a low one, which checkpoints, waits, resumes and ends at the uninterrupted adapter", async () => {
    assert.ok(uninterrupted?.status?.adapter, "needs the uninterrupted first run");
    const t1 = Date.now();
    await runs.create(gpuRun("low", "loraforge-low"));
    const training = await runs.until("low", (l) => {
      if (l.status?.phase === "Succeeded")
        throw new Error("low finished before the test could preempt it");
      return l.status?.phase === "Running" && Runs.hasCheckpoint(env.volumes.runs, l);
    });
    log(`low has a checkpoint at status step ${training.status?.progress?.step}: creating high`);

    // B, high priority, 2 epochs: Kueue preempts low to admit it.
    await runs.create(gpuRun("high", "loraforge-high", 2));
    const exits = new Map<string, number>();
    const preempted = await runs.until(
      "low",
      (l) => l.status?.phase === "Queued" && l.status.reason === "EvictedByKueue",
      { also: ["high"] },
    );
    const words = conditionOf(preempted, "Admitted")?.message ?? "";
    log(`low, preempted: ${words}`);
    assert.match(words, /^Kueue evicted the run \(Preempted: .*priorit/i);

    // low's pod: SIGTERM, a checkpoint, exit 130 (seen while the pod is still there)
    await eventually(
      "low's trainer stopped",
      async () => {
        let running = 0;
        for (const p of await podsOf("low")) {
          const t = p.status?.containerStatuses?.find((c) => c.name === "trainer")?.state
            ?.terminated;
          if (t) exits.set(p.metadata.name, t.exitCode);
          else running++;
        }
        return running === 0 ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    log(
      `low's pod exit codes seen before it was removed: ${JSON.stringify(Object.fromEntries(exits))}`,
    );
    for (const code of exits.values()) assert.equal(code, 130, "the interrupted exit code");

    const highDone = await runs.until("high", (l) => l.status?.phase === "Succeeded", {
      also: ["low"],
    });
    assert.equal(highDone.status?.gpu, `1x ${PRODUCT}, ${ON_CPU}`);
    // low is admitted again and resumes
    const finished = await runs.until("low", (l) => l.status?.phase === "Succeeded", {
      also: ["high"],
      timeoutMs: 600_000,
    });
    await runs.printIfMoved(true);
    runs.printHistory("low");

    const phases = (runs.history.get("low") ?? []).map((h) => `${h.phase}/${h.reason}`);
    const ran = phases.indexOf("Running/Training");
    const evicted = phases.indexOf("Queued/EvictedByKueue");
    assert.ok(ran >= 0 && evicted > ran, `low ran, then was evicted: ${phases.join(" → ")}`);
    assert.ok(
      phases.slice(evicted).some((p) => p.startsWith("Running")),
      `low ran again after the eviction: ${phases.join(" → ")}`,
    );

    // The core's log on the volume: stopped by SIGTERM after a checkpoint, resumed from it.
    const dir = Runs.runDir(env.volumes.runs, finished);
    const coreLog = readFileSync(join(dir, "core.log"), "utf8");
    // (the cli passes the pod's SIGTERM on to the core as SIGINT)
    const stopped = /stopped by signal \d+ after saving checkpoint-(\d+)/.exec(coreLog);
    const resumed = /resuming from \S+ \(step (\d+)\)/.exec(coreLog);
    log(`low: core.log says "${stopped?.[0]}" and "${resumed?.[0]}"`);
    assert.ok(stopped, `the trainer checkpointed on SIGTERM; core.log:\n${coreLog}`);
    assert.ok(resumed, `the readmitted trainer resumed; core.log:\n${coreLog}`);
    assert.ok(Number(resumed[1]) > 0, "resumed at a step > 0");
    assert.equal(resumed[1], stopped[1], "resumed from the checkpoint written at the preemption");

    // The adapter equals the uninterrupted run's: digest in status, and the bytes on the volume.
    const reference = uninterrupted;
    assert.ok(reference);
    log(
      `low: adapter ${finished.status?.adapter?.digest}; uninterrupted first: ${reference.status?.adapter?.digest}`,
    );
    assert.equal(finished.status?.adapter?.digest, reference.status?.adapter?.digest);
    const bytes = (l: Lft) =>
      readFileSync(join(Runs.runDir(env.volumes.runs, l), "final", "adapter_model.safetensors"));
    assert.ok(bytes(finished).equals(bytes(reference)), "final weights byte-identical");
    log(`preemption test ${((Date.now() - t1) / 1000).toFixed(0)} s`);
  });
});
