// Integration: suspend and resume, Kueue passthrough, and deletion → garbage collection.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Reason } from "@loraforge/crds";
import type { Operator } from "../../src/operator.ts";
import {
  condition,
  type Env,
  eventually,
  getJob,
  lftPath,
  podOf,
  podRunning,
  setup,
  startOperator,
  teardown,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

describe("suspend, Kueue and garbage collection against a real API server", () => {
  let env: Env;
  let op: Operator;
  before(async () => {
    env = await setup("suspend");
    op = await startOperator(env);
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const create = (o: Parameters<typeof manifest>[0]) =>
    env.client.create(lftPath(env.ns), manifest(o));
  const setSuspend = (name: string, suspend: boolean) =>
    env.client.patch(lftPath(env.ns, name), { spec: { suspend } }, "merge");

  test("suspend suspends the Job (pods go away), resume unsuspends it", async () => {
    await create({ name: "pausable" });
    const job = await eventually("the Job", () => getJob(env, "pausable-train"));
    const pod = await podOf(env, job.metadata.name);
    await podRunning(env, pod.metadata.name);
    await waitPhase(env, "pausable", "Running");
    await setSuspend("pausable", true);
    const s = await waitPhase(env, "pausable", "Suspended");
    assert.equal(condition(s, "Suspended")?.status, "True");
    assert.equal(condition(s, "Suspended")?.observedGeneration, 2);
    assert.equal((await getJob(env, "pausable-train"))?.spec.suspend, true);
    await setSuspend("pausable", false);
    await eventually("the Job to be resumed", async () =>
      (await getJob(env, "pausable-train"))?.spec.suspend === false ? true : undefined,
    );
    const r = await waitPhase(
      env,
      "pausable",
      "Pending",
      (l) => condition(l, "Suspended")?.status === "False",
    );
    assert.equal(r.status?.observedGeneration, 3);
  });

  test("created suspended: the Job exists suspended; resuming starts it", async () => {
    await create({ name: "born-suspended", suspend: true });
    await waitPhase(env, "born-suspended", "Suspended");
    const job = await eventually("the Job", () => getJob(env, "born-suspended-train"));
    assert.equal(job.spec.suspend, true);
    await setSuspend("born-suspended", false);
    await eventually("the Job to run", async () =>
      (await getJob(env, "born-suspended-train"))?.spec.suspend === false ? true : undefined,
    );
  });

  test("Kueue: the queue-name label passes through; the Job is created suspended, nodeSelector and tolerations are not written", async () => {
    await create({
      name: "queued",
      queueName: "v100-queue",
      resources: {
        nodeSelector: { pool: "v100" },
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }],
      },
    });
    const job = await eventually("the Job", () => getJob(env, "queued-train"));
    assert.equal(job.metadata.labels?.["kueue.x-k8s.io/queue-name"], "v100-queue");
    const pod = job.spec.template.spec;
    assert.equal(pod.nodeSelector, undefined);
    assert.equal(pod.tolerations, undefined);
    const terms =
      pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    assert.deepEqual(
      terms[0].matchExpressions.map((e: { key: string }) => e.key),
      ["nvidia.com/gpu.product", "pool"],
    );
    assert.equal(job.spec.suspend, true, "created suspended: only Kueue unsuspends it");
    const managed = JSON.stringify(
      job.metadata.managedFields?.filter((m) => m.manager === "loraforge-operator"),
    );
    assert.doesNotMatch(managed, /f:nodeSelector|f:tolerations/);
    // No Kueue runs here: the run waits (with a real Kueue: it-kueue.test.ts).
    const q = await waitPhase(env, "queued", "Queued");
    assert.equal(condition(q, "Admitted")?.reason, Reason.QueuedByKueue);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await getJob(env, "queued-train"))?.spec.suspend, true);
  });

  test("Kueue: spec.suspend removes the Job, resume creates it again", async () => {
    await create({ name: "queued-pause", queueName: "v100-queue" });
    const first = await eventually("the Job", () => getJob(env, "queued-pause-train"));
    await setSuspend("queued-pause", true);
    await waitPhase(env, "queued-pause", "Suspended");
    await eventually("the Job to be deleted", async () =>
      (await getJob(env, "queued-pause-train")) ? undefined : true,
    );
    await setSuspend("queued-pause", false);
    const second = await eventually("a new Job", () => getJob(env, "queued-pause-train"));
    assert.notEqual(second.metadata.uid, first.metadata.uid);
  });

  test("deleting the LoraFineTune garbage-collects the Job, pods, RBAC and ConfigMap", async () => {
    await create({ name: "doomed" });
    const job = await eventually("the Job", () => getJob(env, "doomed-train"));
    await podOf(env, job.metadata.name);
    await env.client.delete(lftPath(env.ns, "doomed"), "Foreground");
    const children = [
      `/apis/batch/v1/namespaces/${env.ns}/jobs/doomed-train`,
      `/api/v1/namespaces/${env.ns}/configmaps/doomed-spec`,
      `/api/v1/namespaces/${env.ns}/serviceaccounts/doomed-trainer`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/roles/doomed-trainer`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/rolebindings/doomed-trainer`,
    ];
    await eventually(
      "every child to be garbage-collected",
      async () => {
        for (const path of children) {
          const r = await env.client.request("GET", path);
          if (r.status !== 404) throw new Error(`${path} still exists`);
        }
        const pods = (await env.client.get(
          `/api/v1/namespaces/${env.ns}/pods?labelSelector=batch.kubernetes.io/job-name%3Ddoomed-train`,
        )) as { items: unknown[] };
        if (pods.items.length > 0) throw new Error("pods still exist");
        const lft = await env.client.request("GET", lftPath(env.ns, "doomed"));
        return lft.status === 404 ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
  });
});
