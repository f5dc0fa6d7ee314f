import assert from "node:assert/strict";
import { test } from "node:test";
import { Reason } from "@loraforge/crds";
import { flavorFit, GiB } from "../../src/memoryFit.ts";
import type { Workload } from "../../src/objects.ts";
import { admissionSummary, admittedFlavor, queuedState } from "../../src/workload.ts";

const workload = (conditions: object[], admission?: object): Workload =>
  ({ metadata: { name: "job-x-1" }, status: { conditions, admission } }) as Workload;

test("a queued run waits with Kueue's quota message, in words", () => {
  const q = queuedState(
    "v100-queue",
    "r-train",
    workload([
      {
        type: "QuotaReserved",
        status: "False",
        reason: "Pending",
        message:
          "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor v100-32gb, 1 more needed",
      },
    ]),
  );
  assert.equal(q.reason, Reason.QueuedByKueue);
  assert.equal(
    q.message,
    "waiting in LocalQueue v100-queue: couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor v100-32gb, 1 more needed",
  );
  assert.match(queuedState("q", "r-train", undefined).message, /waits for Kueue/);
});

test("a missing LocalQueue and an eviction have reasons of their own", () => {
  const lost = queuedState(
    "nope",
    "r-train",
    workload([
      {
        type: "QuotaReserved",
        status: "False",
        reason: "Inadmissible",
        message: "LocalQueue nope doesn't exist",
      },
    ]),
  );
  assert.equal(lost.reason, Reason.LocalQueueNotFound);
  assert.match(lost.message, /^spec\.queueName: LocalQueue nope does not exist/);
  const evicted = queuedState(
    "q",
    "r-train",
    workload([
      {
        type: "Evicted",
        status: "True",
        reason: "Preempted",
        message: "Preempted to accommodate a workload due to prioritization in the ClusterQueue",
      },
      { type: "Requeued", status: "True", reason: "Preempted" },
    ]),
  );
  assert.equal(evicted.reason, Reason.EvictedByKueue);
  assert.match(
    evicted.message,
    /^Kueue evicted the run \(Preempted: Preempted to accommodate .*\); back in the queue in LocalQueue q/,
  );
});

test("the admission names the ClusterQueue and flavor, and the fit is checked against the flavor's GPU", () => {
  const wl = workload([], {
    clusterQueue: "v100",
    podSetAssignments: [{ flavors: { "nvidia.com/gpu": "v100-32gb", memory: "v100-32gb" } }],
  });
  assert.equal(
    admissionSummary(wl),
    "Kueue admitted it to ClusterQueue v100 with flavor v100-32gb (nvidia.com/gpu, memory)",
  );
  assert.equal(admittedFlavor(wl, "nvidia.com/gpu"), "v100-32gb");
  assert.equal(admissionSummary(workload([])), undefined);
  assert.equal(
    flavorFit("v100-16gb", "Tesla-V100-SXM2-16GB", 20 * GiB),
    "flavor v100-16gb (Tesla-V100-SXM2-16GB): does NOT fit, about 20.0 of 16 GiB",
  );
  assert.equal(
    flavorFit("v100-32gb", "Tesla-V100-SXM2-32GB", 20 * GiB),
    "flavor v100-32gb (Tesla-V100-SXM2-32GB): fits, about 20.0 of 32 GiB",
  );
  assert.match(flavorFit("cpu-pool", undefined, 1), /names no GPU product/);
});

test("right after a preemption Kueue's message is said once, then what the run waits for", () => {
  const preempted =
    "Preempted to accommodate a workload (UID: u, JobUID: j) due to prioritization in the ClusterQueue";
  const evicted = { type: "Evicted", status: "True", reason: "Preempted", message: preempted };
  const requeued = { type: "Requeued", status: "True", reason: "Preempted" };
  const justNow = queuedState(
    "q",
    "r-train",
    workload([
      evicted,
      requeued,
      { type: "QuotaReserved", status: "False", reason: "Preempted", message: preempted },
    ]),
  );
  assert.equal(
    justNow.message,
    `Kueue evicted the run (Preempted: ${preempted}); back in the queue in LocalQueue q`,
  );
  const waiting = queuedState(
    "q",
    "r-train",
    workload([
      evicted,
      requeued,
      {
        type: "QuotaReserved",
        status: "False",
        reason: "Pending",
        message:
          "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor f, 1 more needed",
      },
    ]),
  );
  assert.match(
    waiting.message,
    /; back in the queue in LocalQueue q: couldn't assign flavors .* 1 more needed$/,
  );
});
