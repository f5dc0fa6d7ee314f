import assert from "node:assert/strict";
import { test } from "node:test";
import { Reason } from "@loraforge/crds";
import type { Job, Pod } from "../../src/objects.ts";
import { decideStatus, mergeConditions, type Observation } from "../../src/status.ts";
import { validateForCluster } from "../../src/validate.ts";
import { lft } from "../support/fixtures.ts";

const NOW = "2026-11-27T20:00:00Z";
const job = (status: Job["status"] = {}, suspend = false): Job => ({
  metadata: { name: "alpaca-7b-train", uid: "job-uid" },
  spec: { suspend },
  status,
});
const pod = (name: string, created: string, status: Pod["status"]): Pod => ({
  metadata: {
    name,
    creationTimestamp: created,
    ownerReferences: [{ uid: "job-uid", kind: "Job", name: "j", controller: true }],
  },
  status,
});
const terminated = (exitCode: number, reason = "Error", message?: string) => ({
  phase: "Failed",
  containerStatuses: [
    {
      name: "trainer",
      state: { terminated: { exitCode, reason, ...(message ? { message } : {}) } },
    },
  ],
});

function observe(
  over: Partial<Observation> & { opts?: Parameters<typeof lft>[0] } = {},
): Observation {
  const l = over.lft ?? lft(over.opts);
  return {
    lft: l,
    generation: 1,
    validation: validateForCluster(l),
    job: undefined,
    pods: [],
    jobName: "alpaca-7b-train",
    now: NOW,
    ...over,
  };
}
const cond = (s: ReturnType<typeof decideStatus>, type: string) =>
  s.status.conditions?.find((c) => c.type === type);

test("a new Job with a pending pod is Pending; a running pod makes it Running", () => {
  const pending = decideStatus(
    observe({ job: job({ active: 1 }), pods: [pod("p", "1", { phase: "Pending" })] }),
  );
  assert.equal(pending.status.phase, "Pending");
  assert.equal(cond(pending, "Admitted")?.status, "True");
  assert.equal(cond(pending, "Progressing")?.reason, Reason.PodPending);
  const running = decideStatus(
    observe({
      job: job({ active: 1, startTime: "2026-11-27T19:00:00Z" }),
      pods: [pod("p", "1", { phase: "Running" })],
    }),
  );
  assert.equal(running.status.phase, "Running");
  assert.equal(running.status.startTime, "2026-11-27T19:00:00Z");
  assert.equal(cond(running, "Progressing")?.reason, Reason.Training);
  assert.equal(cond(running, "Validated")?.observedGeneration, 1);
});

test("training done with evaluation enabled is Evaluating; a retry is Resumed", () => {
  const l = lft();
  l.status = { progress: { step: 300, totalSteps: 300 } };
  const ev = decideStatus(
    observe({ lft: l, job: job({ active: 1 }), pods: [pod("p", "1", { phase: "Running" })] }),
  );
  assert.equal(ev.status.phase, "Evaluating");
  const retry = decideStatus(
    observe({ job: job({ active: 1, failed: 1 }), pods: [pod("p", "1", { phase: "Running" })] }),
  );
  assert.equal(cond(retry, "Progressing")?.reason, Reason.Resumed);
});

test("a pod that succeeded before the Job is Complete keeps the run Evaluating, never Pending; SuccessCriteriaMet is Succeeded", () => {
  // seen on the real node (test/e2e): Evaluating → Pending/PodPending → Succeeded
  const l = lft();
  l.status = { phase: "Evaluating", progress: { step: 300, totalSteps: 300 } };
  const finishing = decideStatus(
    observe({ lft: l, job: job({ active: 0 }), pods: [pod("p", "1", { phase: "Succeeded" })] }),
  );
  assert.equal(finishing.status.phase, "Evaluating");
  const met = decideStatus(
    observe({
      lft: l,
      job: job({ succeeded: 1, conditions: [{ type: "SuccessCriteriaMet", status: "True" }] }),
      pods: [pod("p", "1", { phase: "Succeeded" })],
    }),
  );
  assert.equal(met.status.phase, "Succeeded");
});

test("a complete Job is Succeeded with its completion time", () => {
  const d = decideStatus(
    observe({
      job: job({
        succeeded: 1,
        completionTime: "2026-11-27T21:00:00Z",
        conditions: [{ type: "Complete", status: "True" }],
      }),
    }),
  );
  assert.equal(d.status.phase, "Succeeded");
  assert.equal(d.status.completionTime, "2026-11-27T21:00:00Z");
  assert.equal(cond(d, "Succeeded")?.reason, Reason.AdapterReady);
});

for (const [exit, reason, termReason] of [
  [3, Reason.InvalidInput, "Error"],
  [4, Reason.NaNLoss, "Error"],
  [5, Reason.AdapterCheckFailed, "Error"],
  [137, Reason.OOMKilled, "OOMKilled"],
] as const) {
  test(`a failed Job whose trainer exited ${exit} (${termReason}) fails with ${reason}`, () => {
    const failedJob = job({
      failed: 1,
      conditions: [{ type: "Failed", status: "True", reason: "PodFailurePolicy" }],
    });
    const d = decideStatus(
      observe({
        job: failedJob,
        pods: [
          pod("p1", "2026-11-27T19:00:00Z", terminated(exit, termReason, "layer 31 q_proj: NaN")),
        ],
      }),
    );
    assert.equal(d.status.phase, "Failed");
    assert.equal(d.status.failure?.reason, reason);
    assert.equal(d.status.failure?.exitCode, exit);
    assert.match(d.status.failure?.message ?? "", /pod p1/);
    assert.match(d.status.failure?.message ?? "", /layer 31 q_proj: NaN/);
    assert.equal(cond(d, "Failed")?.reason, reason);
  });
}

test("the newest failed pod decides; BackoffLimitExceeded with generic errors", () => {
  const failedJob = job({
    failed: 2,
    conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }],
  });
  const d = decideStatus(
    observe({
      job: failedJob,
      pods: [
        pod("old", "2026-11-27T19:00:00Z", terminated(4)),
        pod("new", "2026-11-27T19:30:00Z", terminated(1)),
      ],
    }),
  );
  assert.equal(d.status.failure?.reason, Reason.BackoffLimitExceeded);
  assert.match(d.status.failure?.message ?? "", /pod new/);
});

test("an image that cannot be pulled fails the run and stops the Job", () => {
  const d = decideStatus(
    observe({
      job: job({ active: 1 }),
      pods: [
        pod("p", "1", {
          phase: "Pending",
          containerStatuses: [
            {
              name: "trainer",
              state: {
                waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "x"' },
              },
            },
          ],
        }),
      ],
    }),
  );
  assert.equal(d.status.phase, "Failed");
  assert.equal(d.status.failure?.reason, Reason.ImagePullFailed);
  assert.equal(d.stopJob, true);
});

test("invalid spec: Failed, Validated False, no Job", () => {
  const l = lft({
    training: { precision: "bf16" },
    resources: {
      gpuProduct: undefined,
      nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-PCIE-16GB" },
    },
  });
  const d = decideStatus(observe({ lft: l }));
  assert.equal(d.status.phase, "Failed");
  assert.equal(cond(d, "Validated")?.status, "False");
  assert.equal(cond(d, "Validated")?.reason, Reason.PrecisionUnsupported);
  assert.equal(d.status.jobName, undefined);
});

test("suspended: by spec (own Job), queued by Kueue, and no Job while suspended under Kueue", () => {
  const s = decideStatus(observe({ opts: { suspend: true }, job: job({}, true) }));
  assert.equal(s.status.phase, "Suspended");
  assert.equal(cond(s, "Suspended")?.status, "True");
  const q = decideStatus(observe({ opts: { queueName: "v100" }, job: job({}, true) }));
  assert.equal(q.status.phase, "Queued");
  assert.equal(cond(q, "Admitted")?.reason, Reason.QueuedByKueue);
  const k = decideStatus(observe({ opts: { queueName: "v100", suspend: true } }));
  assert.equal(k.status.phase, "Suspended");
});

test("a finished run keeps its result when its Job is gone", () => {
  const l = lft();
  l.status = {
    phase: "Failed",
    failure: { reason: "ImagePullFailed", message: "x" },
    jobName: "alpaca-7b-train",
  };
  const d = decideStatus(observe({ lft: l }));
  assert.equal(d.status.phase, "Failed");
  assert.equal(d.status.failure?.reason, "ImagePullFailed");
  assert.equal(d.status.reason, "ImagePullFailed", "finished before status.reason existed");
});

test("lastTransitionTime changes only when a condition's status changes", () => {
  const first = mergeConditions(
    undefined,
    { Validated: { status: "True", reason: "SpecValid", message: "" } },
    1,
    "t1",
  );
  const same = mergeConditions(
    first,
    { Validated: { status: "True", reason: "SpecValid", message: "new text" } },
    2,
    "t2",
  );
  assert.equal(same[0]?.lastTransitionTime, "t1");
  assert.equal(same[0]?.observedGeneration, 2);
  const flipped = mergeConditions(
    first,
    { Validated: { status: "False", reason: "InvalidSpec", message: "" } },
    2,
    "t3",
  );
  assert.equal(flipped[0]?.lastTransitionTime, "t3");
});

test("status.reason (the Reason column) says why the run is in its phase", () => {
  const reasonOf = (over: Parameters<typeof observe>[0]) => {
    const d = decideStatus(observe(over)).status;
    return `${d.phase}/${d.reason}`;
  };
  assert.equal(reasonOf({}), "Pending/JobCreated");
  assert.equal(
    reasonOf({ opts: { queueName: "v100" }, job: job({}, true) }),
    "Queued/QueuedByKueue",
  );
  assert.equal(
    reasonOf({ job: job({ active: 1 }), pods: [pod("p", "1", { phase: "Pending" })] }),
    "Pending/PodPending",
  );
  assert.equal(
    reasonOf({ job: job({ active: 1 }), pods: [pod("p", "1", { phase: "Running" })] }),
    "Running/Training",
  );
  assert.equal(
    reasonOf({ job: job({ active: 1, failed: 1 }), pods: [pod("p", "1", { phase: "Running" })] }),
    "Running/Resumed",
  );
  assert.equal(
    reasonOf({ opts: { suspend: true }, job: job({}, true) }),
    "Suspended/SuspendedBySpec",
  );
  assert.equal(
    reasonOf({ job: job({ conditions: [{ type: "Complete", status: "True" }] }) }),
    "Succeeded/AdapterReady",
  );
  assert.equal(
    reasonOf({
      job: job({ failed: 1, conditions: [{ type: "Failed", status: "True" }] }),
      pods: [pod("p1", "2026-11-27T19:00:00Z", terminated(4))],
    }),
    "Failed/NaNLoss",
  );
  assert.equal(
    reasonOf({
      opts: {
        training: { precision: "bf16" },
        resources: {
          gpuProduct: undefined,
          nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-PCIE-16GB" },
        },
      },
    }),
    "Failed/PrecisionUnsupported",
  );
});

test("status.model and status.gpu (the wide columns) come from the spec and the resolved GPU product", () => {
  const d = decideStatus(observe({})).status;
  assert.equal(d.model, "llama-2-7b-hf");
  assert.equal(d.gpu, "1x Tesla-V100-SXM2-32GB");
  const byDefault = lft({ resources: { gpuProduct: undefined, gpus: 2 } });
  const pool = decideStatus(
    observe({
      lft: byDefault,
      validation: validateForCluster(byDefault, { defaultGpuProduct: "NVIDIA-A100-SXM4-80GB" }),
    }),
  ).status;
  assert.equal(pool.gpu, "2x NVIDIA-A100-SXM4-80GB", "the operator's default pool counts");
  const cpu = decideStatus(
    observe({
      opts: { resources: { gpus: 0, gpuProduct: undefined }, training: { precision: "fp32" } },
    }),
  ).status;
  assert.equal(cpu.gpu, "cpu");
});

test("a GPU run under the test-only CPU trainer setting says so in the GPU column and the Validated condition; off, it does not", () => {
  const l = lft();
  const on = decideStatus(
    observe({ lft: l, validation: validateForCluster(l, { cpuTrainerForGpuRuns: true }) }),
  );
  assert.equal(
    on.status.gpu,
    "1x Tesla-V100-SXM2-32GB, training on CPU: test setting testing.cpuTrainerForGpuRuns",
  );
  assert.equal(cond(on, "Validated")?.status, "True");
  assert.match(
    cond(on, "Validated")?.message ?? "",
    /^training on CPU: test setting testing\.cpuTrainerForGpuRuns \(the pod requests 1 nvidia\.com\/gpu but runs the CPU backend; never set on a real GPU pool\); /,
  );
  const off = decideStatus(observe({ lft: l }));
  assert.equal(off.status.gpu, "1x Tesla-V100-SXM2-32GB");
  assert.doesNotMatch(cond(off, "Validated")?.message ?? "", /CPU/);
  // a CPU run is a CPU run: the setting adds nothing
  const cpuRun = lft({
    resources: { gpus: 0, gpuProduct: undefined },
    training: { precision: "fp32" },
  });
  const cpu = decideStatus(
    observe({
      lft: cpuRun,
      validation: validateForCluster(cpuRun, { cpuTrainerForGpuRuns: true }),
    }),
  );
  assert.equal(cpu.status.gpu, "cpu");
  assert.equal(cond(cpu, "Validated")?.message, "CPU run: no GPU checks apply");
  // an invalid GPU run still fails for its own reason
  const bf16 = lft({
    training: { precision: "bf16" },
    resources: {
      gpuProduct: undefined,
      nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-PCIE-16GB" },
    },
  });
  const refused = validateForCluster(bf16, { cpuTrainerForGpuRuns: true });
  assert.equal(refused.ok, false);
  assert.equal(refused.trainsOnCpu, undefined);
});
