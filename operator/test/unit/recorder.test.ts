// Events and run metrics from status transitions, without a cluster: the transitions are
// the operator's own decisions (decideStatus) for a run going through its life.

import assert from "node:assert/strict";
import { hostname } from "node:os";
import { test } from "node:test";
import { type LoraFineTune, type OperatorStatus, Reason } from "@loraforge/crds";
import type { Kube } from "@loraforge/kube";
import { configFromEnv } from "../../src/config.ts";
import { silentLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import type { Job, Pod } from "../../src/objects.ts";
import {
  checkpointEvents,
  EventRecorder,
  RunRecorder,
  type RunTransition,
  runEvents,
} from "../../src/recorder.ts";
import { decideStatus } from "../../src/status.ts";
import { validateForCluster } from "../../src/validate.ts";
import { lft } from "../support/fixtures.ts";

const job = (status: Job["status"] = {}, suspend = false): Job => ({
  metadata: { name: "alpaca-7b-train", uid: "job-uid" },
  spec: { suspend },
  status,
});
const pod = (phase: string, extra: Record<string, unknown> = {}): Pod => ({
  metadata: {
    name: "alpaca-7b-train-abcde",
    creationTimestamp: "2026-12-01T10:00:00Z",
    ownerReferences: [{ uid: "job-uid", kind: "Job", name: "j", controller: true }],
  },
  status: { phase, ...extra },
});

/** The run's life as the operator would decide it, one status per step. */
function life(
  steps: { job?: Job; pods?: Pod[]; run?: LoraFineTune }[],
  base: LoraFineTune = lft(),
): OperatorStatus[] {
  const out: OperatorStatus[] = [];
  for (const s of steps) {
    const run = s.run ?? base;
    const d = decideStatus({
      lft: run,
      generation: 1,
      validation: validateForCluster(run),
      job: s.job,
      pods: s.pods ?? [],
      jobName: "alpaca-7b-train",
      now: "2026-12-01T10:00:00Z",
    });
    out.push(d.status);
  }
  return out;
}

function transition(
  before: OperatorStatus,
  after: OperatorStatus,
  over: Partial<RunTransition> = {},
): RunTransition {
  const run = over.lft ?? lft();
  return {
    target: { name: "alpaca-7b", namespace: "ml", uid: "uid-1" },
    lft: run,
    before,
    after,
    validation: validateForCluster(run),
    observed: undefined,
    createdAt: "2026-12-01T10:00:00Z",
    at: new Date("2026-12-01T10:07:30Z"),
    ...over,
  };
}

/** Reasons of the events of each step of a life, "reason" or "reason!" for a Warning. */
function reasons(statuses: OperatorStatus[], over: Partial<RunTransition> = {}): string[][] {
  const out: string[][] = [];
  let before: OperatorStatus = {};
  for (const after of statuses) {
    out.push(
      runEvents(transition(before, after, over)).map(
        (e) => `${e.reason}${e.type === "Warning" ? "!" : ""}`,
      ),
    );
    before = after;
  }
  return out;
}

test("a run's events say what happened: JobCreated, TrainingStarted, Evaluating, Succeeded", () => {
  const done = lft();
  done.status = { progress: { step: 400, totalSteps: 400 } };
  const statuses = life([
    { job: job({ active: 1 }), pods: [pod("Pending")] },
    { job: job({ active: 1 }), pods: [pod("Running")] },
    { job: job({ active: 1 }), pods: [pod("Running")], run: done },
    { job: job({ conditions: [{ type: "Complete", status: "True" }] }) },
  ]);
  assert.deepEqual(reasons(statuses), [
    ["JobCreated"],
    ["TrainingStarted"],
    ["Evaluating"],
    ["Succeeded"],
  ]);
  const succeeded = runEvents(
    transition(statuses[2] ?? {}, statuses[3] ?? {}, {
      observed: {
        adapter: {
          path: "pvc://runs/alpaca-7b/final",
          digest: `sha256:${"0".repeat(64)}`,
          sizeBytes: 1,
          verified: true,
        },
      },
    }),
  );
  assert.equal(succeeded[0]?.message, "the adapter is ready at pvc://runs/alpaca-7b/final");
});

test("no event says Pending or '(none) → Pending'", () => {
  const [first] = life([{ job: job({ active: 1 }), pods: [pod("Pending")] }]);
  const events = runEvents(transition({}, first ?? {}));
  assert.deepEqual(
    events.map((e) => [e.reason, e.message]),
    [["JobCreated", "created Job alpaca-7b-train"]],
  );
});

test("a failure is a Warning 'Failed' whose message starts with the failure reason", () => {
  const statuses = life([
    { job: job({ active: 1 }), pods: [pod("Running")] },
    {
      job: job({ failed: 1, conditions: [{ type: "Failed", status: "True" }] }),
      pods: [
        pod("Failed", {
          containerStatuses: [
            { name: "trainer", state: { terminated: { exitCode: 4, reason: "Error" } } },
          ],
        }),
      ],
    },
  ]);
  const [, failed] = reasons(statuses);
  assert.deepEqual(failed, ["Failed!"]);
  const e = runEvents(transition(statuses[0] ?? {}, statuses[1] ?? {}))[0];
  assert.match(e?.message ?? "", /^NaNLoss: pod alpaca-7b-train-abcde: trainer exited with code 4/);
});

test("Kueue: Queued, then Admitted and TrainingStarted; a retry is TrainingResumed; suspend and back", () => {
  const queued = lft({ queueName: "v100-queue" });
  const statuses = life(
    [
      { job: job({}, true) },
      { job: job({ active: 1 }), pods: [pod("Running")] },
      { job: job({ active: 1, failed: 1 }), pods: [pod("Pending")] },
      { job: job({ active: 1, failed: 1 }), pods: [pod("Running")] },
    ],
    queued,
  );
  assert.deepEqual(reasons(statuses, { lft: queued }), [
    ["JobCreated", "Queued"],
    ["Admitted", "TrainingStarted"],
    [],
    ["TrainingResumed"],
  ]);
  const suspended = lft({ suspend: true });
  const [s] = life([{ job: job({}, true), run: suspended }]);
  const [r] = life([{ job: job({ active: 1 }), pods: [pod("Running")] }]);
  assert.deepEqual(
    runEvents(transition(s ?? {}, r ?? {})).map((e) => e.reason),
    ["TrainingStarted", "Unsuspended"],
  );
  assert.deepEqual(
    runEvents(transition(r ?? {}, s ?? {}, { lft: suspended })).map((e) => e.reason),
    ["Suspended"],
  );
});

test("checkpoints the trainer reports become CheckpointSaved once each", () => {
  const status = {
    checkpoints: [
      { step: 200, path: "/out/checkpoints/checkpoint-200", trainLoss: 1.23456 },
      { step: 400, path: "/out/checkpoints/checkpoint-400", trainLoss: 1.1, valLoss: 1.3 },
    ],
  };
  const all = checkpointEvents(status, 0);
  assert.equal(all.newest, 400);
  assert.deepEqual(
    all.events.map((e) => e.message),
    [
      "step 200: /out/checkpoints/checkpoint-200 (train loss 1.2346)",
      "step 400: /out/checkpoints/checkpoint-400 (train loss 1.1000, val loss 1.3000)",
    ],
  );
  assert.deepEqual(
    checkpointEvents(status, 200).events.map((e) => e.reason),
    ["CheckpointSaved"],
  );
  assert.equal(checkpointEvents(status, 400).events.length, 0);
});

/** A Kube that records the Events it is asked to create. */
function recordingKube() {
  const created: Record<string, unknown>[] = [];
  const kube = {
    create: async (_path: string, body: unknown) => {
      created.push(body as Record<string, unknown>);
      return body;
    },
  } as unknown as Kube;
  return { kube, created };
}
const settle = () => new Promise((r) => setTimeout(r, 10));

test("the recorder: reportingInstance is the pod; checkpoints seen at first sight are not repeated", async () => {
  const { kube, created } = recordingKube();
  const recorder = new RunRecorder(
    new EventRecorder(kube, silentLogger, "loraforge-operator-5d8c7-x2x9q"),
  );
  const obj = (steps: number[]) => ({
    metadata: { name: "alpaca-7b", namespace: "ml", uid: "uid-1" },
    status: { checkpoints: steps.map((step) => ({ step, path: `/out/checkpoint-${step}` })) },
  });
  recorder.trainerReported(obj([200])); // a restarted operator: 200 was announced before
  recorder.trainerReported(obj([200]));
  recorder.trainerReported(obj([200, 400]));
  await settle();
  assert.deepEqual(
    created.map((e) => [e.reason, e.message, e.reportingInstance, e.reportingComponent]),
    [
      [
        "CheckpointSaved",
        "step 400: /out/checkpoint-400",
        "loraforge-operator-5d8c7-x2x9q",
        "loraforge-operator",
      ],
    ],
  );
  recorder.forget("uid-1");
  recorder.trainerReported(obj([200, 400, 600]));
  await settle();
  assert.equal(created.length, 1, "after forget, the first sight seeds again");
});

const metricLine = (text: string, name: string) =>
  text
    .split("\n")
    .find((l) => l.startsWith(name))
    ?.split(" ")[1];

test("run metrics: failures by reason from zero, duration by final phase, queue wait on the first start", async () => {
  const m = new Metrics(false);
  const recorder = new RunRecorder(new EventRecorder(recordingKube().kube, silentLogger, "op-0"), [
    m,
  ]);
  let text = await m.registry.metrics();
  assert.equal(metricLine(text, 'loraforge_runs_failed_total{reason="NaNLoss"}'), "0");
  assert.equal(metricLine(text, 'loraforge_runs_failed_total{reason="OOMKilled"}'), "0");

  const [pending, running] = life([
    { job: job({ active: 1 }), pods: [pod("Pending")] },
    { job: job({ active: 1, startTime: "2026-12-01T10:05:00Z" }), pods: [pod("Running")] },
  ]);
  recorder.transition(transition({}, pending ?? {}));
  recorder.transition(transition(pending ?? {}, running ?? {})); // waited 7.5 min since creation
  // A retry's Running and a Running the trainer already reported into are not first starts.
  const [resumed] = life([{ job: job({ active: 1, failed: 1 }), pods: [pod("Running")] }]);
  recorder.transition(transition(pending ?? {}, resumed ?? {}));
  recorder.transition(
    transition(pending ?? {}, running ?? {}, {
      observed: { progress: { step: 5, totalSteps: 9 } },
    }),
  );

  const succeeded: OperatorStatus = {
    ...running,
    phase: "Succeeded",
    completionTime: "2026-12-01T12:05:00Z",
  };
  recorder.transition(transition(running ?? {}, succeeded)); // 2 h after the Job started
  recorder.transition(transition(succeeded, succeeded)); // no transition: not counted twice
  const failed: OperatorStatus = {
    ...running,
    phase: "Failed",
    reason: Reason.NaNLoss,
    failure: { reason: Reason.NaNLoss, message: "x" },
    completionTime: "2026-12-01T10:35:00Z",
  };
  recorder.transition(transition(running ?? {}, failed));
  const invalid: OperatorStatus = {
    phase: "Failed",
    failure: { reason: Reason.PrecisionUnsupported, message: "bf16 on a V100" },
  };
  recorder.transition(transition({}, invalid)); // never started: counted, no duration

  text = await m.registry.metrics();
  assert.equal(metricLine(text, 'loraforge_runs_failed_total{reason="NaNLoss"}'), "1");
  assert.equal(metricLine(text, 'loraforge_runs_failed_total{reason="PrecisionUnsupported"}'), "1");
  assert.equal(metricLine(text, "loraforge_run_queue_wait_seconds_count"), "1");
  assert.equal(metricLine(text, "loraforge_run_queue_wait_seconds_sum"), "450");
  assert.equal(metricLine(text, 'loraforge_run_queue_wait_seconds_bucket{le="300"}'), "0");
  assert.equal(metricLine(text, 'loraforge_run_queue_wait_seconds_bucket{le="900"}'), "1");
  assert.equal(metricLine(text, 'loraforge_run_duration_seconds_count{phase="Succeeded"}'), "1");
  assert.equal(metricLine(text, 'loraforge_run_duration_seconds_sum{phase="Succeeded"}'), "7200");
  assert.equal(
    metricLine(text, 'loraforge_run_duration_seconds_bucket{le="3600",phase="Succeeded"}'),
    "0",
  );
  assert.equal(
    metricLine(text, 'loraforge_run_duration_seconds_bucket{le="7200",phase="Succeeded"}'),
    "1",
  );
  assert.equal(metricLine(text, 'loraforge_run_duration_seconds_count{phase="Failed"}'), "1");
  assert.equal(metricLine(text, 'loraforge_run_duration_seconds_sum{phase="Failed"}'), "1800");
});

test("reportingInstance comes from LORAFORGE_POD_NAME (the chart's downward API), else the host name", () => {
  const env = { LORAFORGE_TRAINER_IMAGE: "trainer:1" };
  assert.equal(
    configFromEnv({ ...env, LORAFORGE_POD_NAME: "loraforge-5d8c7-x2x9q" }, "id").podName,
    "loraforge-5d8c7-x2x9q",
  );
  assert.equal(configFromEnv(env, "id").podName, hostname());
});
