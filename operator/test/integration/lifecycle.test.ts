// Integration: a LoraFineTune becomes the right Job; the Job controller and the test (as
// kubelet) drive pods, and status follows: phases, conditions, failure reasons, events.

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
  getLft,
  lftPath,
  podOf,
  podRunning,
  podTerminated,
  podWaiting,
  setPodStatus,
  setup,
  startOperator,
  teardown,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

describe("operator lifecycle against a real API server", () => {
  let env: Env;
  let op: Operator;

  before(async () => {
    env = await setup("lifecycle");
    op = await startOperator(env, { jobBackoffLimit: 1 });
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const create = (o: Parameters<typeof manifest>[0]) =>
    env.client.create(lftPath(env.ns), manifest(o));

  test("create → a Job with the right spec, applied by our field manager, and Pending", async () => {
    await create({
      name: "create",
      resources: {
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
      },
    });
    const job = await eventually("the Job", () => getJob(env, "create-train"));
    const lft = await getLft(env, "create");
    assert.equal(job.metadata.ownerReferences?.[0]?.uid, lft.metadata.uid);
    assert.ok(
      job.metadata.managedFields?.some(
        (m) => m.manager === "loraforge-operator" && m.operation === "Apply",
      ),
    );
    const pod = job.spec.template.spec;
    assert.equal(pod.containers[0].image, "ghcr.io/loraforge/trainer:test");
    assert.deepEqual(pod.containers[0].command, [
      "loraforge",
      "job",
      "--spec",
      "/etc/loraforge/spec.yaml",
    ]);
    assert.equal(pod.containers[0].resources.limits["nvidia.com/gpu"], "1");
    assert.equal(pod.nodeSelector["nvidia.com/gpu.product"], "Tesla-V100-SXM2-32GB");
    assert.equal(pod.tolerations[0].key, "nvidia.com/gpu");
    assert.equal(job.spec.podFailurePolicy.rules[0].onExitCodes.values.join(","), "2,3,4,5");
    assert.equal(job.spec.backoffLimit, 1);
    // the spec file, the per-run identity
    for (const path of [
      `/api/v1/namespaces/${env.ns}/configmaps/create-spec`,
      `/api/v1/namespaces/${env.ns}/serviceaccounts/create-trainer`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/roles/create-trainer`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/rolebindings/create-trainer`,
    ]) {
      assert.ok(await env.client.get(path), path);
    }
    const l = await waitPhase(
      env,
      "create",
      "Pending",
      (x) => condition(x, "Admitted")?.status === "True",
    );
    assert.equal(l.status?.jobName, "create-train");
    assert.equal(condition(l, "Validated")?.status, "True");
    assert.equal(condition(l, "Validated")?.observedGeneration, 1);
    assert.equal(l.status?.observedGeneration, 1);
  });

  test("pod running → Running with a start time; pod succeeded → Succeeded", async () => {
    await create({ name: "happy" });
    const job = await eventually("the Job", () => getJob(env, "happy-train"));
    const pod = await podOf(env, job.metadata.name);
    await podRunning(env, pod.metadata.name);
    const running = await waitPhase(env, "happy", "Running");
    assert.equal(condition(running, "Progressing")?.reason, Reason.Training);
    await eventually("startTime", async () => (await getLft(env, "happy")).status?.startTime);
    await podTerminated(env, pod.metadata.name, 0);
    const done = await waitPhase(env, "happy", "Succeeded");
    assert.equal(condition(done, "Succeeded")?.reason, Reason.AdapterReady);
    assert.ok(done.status?.completionTime);
  });

  for (const [name, exit, termReason, reason] of [
    ["nan", 4, "Error", Reason.NaNLoss],
    ["badinput", 3, "Error", Reason.InvalidInput],
  ] as const) {
    test(`trainer exit ${exit} → Failed ${reason} at once (podFailurePolicy), message from the pod`, async () => {
      await create({ name });
      const job = await eventually("the Job", () => getJob(env, `${name}-train`));
      const pod = await podOf(env, job.metadata.name);
      await podRunning(env, pod.metadata.name);
      await podTerminated(
        env,
        pod.metadata.name,
        exit,
        termReason,
        "layer 31 down_proj: loss is NaN",
      );
      const l = await waitPhase(env, name, "Failed");
      assert.equal(l.status?.failure?.reason, reason);
      assert.equal(l.status?.failure?.exitCode, exit);
      assert.match(l.status?.failure?.message ?? "", /layer 31 down_proj: loss is NaN/);
      assert.equal(condition(l, "Failed")?.reason, reason);
      const j = await getJob(env, `${name}-train`);
      assert.equal(j?.status?.failed, 1, "no retry for a non-retryable exit code");
    });
  }

  test("OOMKilled is retried (backoffLimit) and reported as OOMKilled", async () => {
    await create({ name: "oom" });
    const job = await eventually("the Job", () => getJob(env, "oom-train"));
    const seen: string[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const pod = await podOf(env, job.metadata.name, seen);
      seen.push(pod.metadata.name);
      await podRunning(env, pod.metadata.name);
      if (attempt === 0) await waitPhase(env, "oom", "Running");
      await podTerminated(env, pod.metadata.name, 137, "OOMKilled");
    }
    const l = await waitPhase(env, "oom", "Failed", undefined, 90_000);
    assert.equal(l.status?.failure?.reason, Reason.OOMKilled);
    assert.match(l.status?.failure?.message ?? "", /memory limit/);
    assert.equal(seen.length, 2, "backoffLimit 1 → a retry, then failure");
  });

  test("a pod lost to disruption is retried without counting against backoffLimit", async () => {
    await create({ name: "preempted" });
    const job = await eventually("the Job", () => getJob(env, "preempted-train"));
    const first = await podOf(env, job.metadata.name);
    await podRunning(env, first.metadata.name);
    await setPodStatus(env, first.metadata.name, {
      phase: "Failed",
      conditions: [
        {
          type: "DisruptionTarget",
          status: "True",
          reason: "PreemptionByScheduler",
          lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
        },
      ],
      containerStatuses: [
        {
          name: "trainer",
          ready: false,
          restartCount: 0,
          image: "ghcr.io/loraforge/trainer:test",
          imageID: "",
          state: { terminated: { exitCode: 137, reason: "Error" } },
        },
      ],
    });
    const second = await podOf(env, job.metadata.name, [first.metadata.name]);
    assert.notEqual(second.metadata.name, first.metadata.name);
    const j = await getJob(env, "preempted-train");
    assert.equal(j?.status?.failed ?? 0, 0, "the disrupted pod is not counted as a failure");
    assert.notEqual((await getLft(env, "preempted")).status?.phase, "Failed");
  });

  test("ImagePullBackOff → Failed ImagePullFailed and the Job is removed to free the GPU", async () => {
    await create({ name: "pull" });
    const job = await eventually("the Job", () => getJob(env, "pull-train"));
    const pod = await podOf(env, job.metadata.name);
    await podWaiting(
      env,
      pod.metadata.name,
      "ImagePullBackOff",
      'Back-off pulling image "ghcr.io/loraforge/trainer:test"',
    );
    const l = await waitPhase(env, "pull", "Failed");
    assert.equal(l.status?.failure?.reason, Reason.ImagePullFailed);
    assert.match(l.status?.failure?.message ?? "", /Back-off pulling image/);
    await eventually("the Job to be gone", async () =>
      (await getJob(env, "pull-train")) ? undefined : true,
    );
    // and the failure stays: no new Job
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await getJob(env, "pull-train"), undefined);
    assert.equal((await getLft(env, "pull")).status?.phase, "Failed");
  });

  test("transitions are recorded as Events", async () => {
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
    const events = await eventually("events for nan", async () => {
      const all = Events.parse(
        await env.client.get(`/api/v1/namespaces/${env.ns}/events`),
      ).items.filter((e) => e.involvedObject.name === "nan");
      return all.some((e) => e.reason === "Failed") ? all : undefined;
    });
    assert.ok(events.some((e) => e.reason === "JobCreated" && e.type === "Normal"));
    assert.ok(
      events.some(
        (e) =>
          e.reason === "Failed" && e.type === "Warning" && e.message.startsWith(Reason.NaNLoss),
      ),
    );
    assert.ok(!events.some((e) => e.reason === "Pending"), "reasons say what happened");
  });

  test("concurrent conflicting updates: trainer progress and user edits never lose the operator's status", async () => {
    await create({ name: "busy" });
    const job = await eventually("the Job", () => getJob(env, "busy-train"));
    const pod = await podOf(env, job.metadata.name);
    // The trainer patches progress 40 times and a user edits labels 20 times, racing
    // with the operator's status writes (which carry resourceVersion preconditions).
    const trainer = (async () => {
      for (let i = 1; i <= 40; i++) {
        await env.client.patch(
          `${lftPath(env.ns, "busy")}/status`,
          { status: { progress: { step: i, totalSteps: 1000 } } },
          "merge",
        );
        if (i === 10) await podRunning(env, pod.metadata.name);
      }
    })();
    const user = (async () => {
      for (let i = 1; i <= 20; i++)
        await env.client.patch(
          lftPath(env.ns, "busy"),
          { metadata: { labels: { edit: String(i) } } },
          "merge",
        );
    })();
    await Promise.all([trainer, user]);
    const l = await waitPhase(env, "busy", "Running");
    assert.equal(
      l.status?.progress?.step,
      40,
      "the trainer's last progress survived every operator write",
    );
    assert.equal((l.metadata as { labels?: Record<string, string> }).labels?.edit, "20");
    assert.equal(condition(l, "Admitted")?.status, "True");
    assert.equal(condition(l, "Progressing")?.status, "True");
    assert.equal(l.status?.jobName, "busy-train");
  });

  test("/metrics serves reconciles, queue depth and runs by phase; /readyz is ready", async () => {
    const base = `http://127.0.0.1:${op.httpPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /loraforge_reconciles_total\{result="success"\} [1-9]/);
    assert.match(text, /loraforge_workqueue_depth \d+/);
    assert.match(text, /loraforge_runs\{phase="Failed"\} [1-9]/);
    assert.match(text, /loraforge_runs\{phase="Succeeded"\} [1-9]/);
  });
});
