// The operator with a real Kueue (v0.17, built from its Go module) on the real API server and
// kube-controller-manager, with the admin's Kueue objects as the chart renders them. No node
// runs pods here: Kueue still admits (it unsuspends the Job and writes the flavor's
// nodeSelector and tolerations), the pods stay Pending, and the tests assert on Workloads,
// Jobs and the run's status — nothing plays Kueue, and only the last test plays the kubelet
// (pod status) to show a failed, a queued and a running run side by side in kubectl get.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { durationText } from "@loraforge/crds";
import {
  getTable,
  type RunningKueue,
  renderTable,
  rowOf,
  startCluster,
  startKueue,
  type TestCluster,
} from "@loraforge/test-k8s";
import { z } from "zod";
import { FIELD_MANAGER } from "../../src/naming.ts";
import type { Operator } from "../../src/operator.ts";
import {
  condition,
  type Env,
  eventually,
  getJob,
  getLft,
  installCrd,
  lftPath,
  listJobs,
  podOf,
  podRunning,
  podTerminated,
  startOperator,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";
import { docs, ensureHelm, helmTemplate, type Obj, pathOf } from "../support/helm.ts";

const chart = join(import.meta.dirname, "..", "..", "..", "charts", "loraforge");
const FLAVOR = "v100-32gb";
const PRODUCT = "Tesla-V100-SXM2-32GB";

const Workload = z.object({
  metadata: z.object({
    name: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.object({ priority: z.number().optional() }).passthrough(),
  status: z
    .object({
      conditions: z
        .array(
          z.object({
            type: z.string(),
            status: z.string(),
            reason: z.string(),
            message: z.string(),
          }),
        )
        .optional(),
      admission: z.object({ clusterQueue: z.string() }).passthrough().optional(),
    })
    .passthrough()
    .optional(),
});
type Workload = z.infer<typeof Workload>;
const wlCondition = (w: Workload, type: string) =>
  w.status?.conditions?.find((c) => c.type === type);

describe("the operator with a real Kueue", () => {
  let cluster: TestCluster;
  let kueue: RunningKueue;
  let operator: Operator | undefined;
  const suffix = randomBytes(3).toString("hex");
  const teamA = `team-a-${suffix}`;
  const teamB = `team-b-${suffix}`;
  let envA: Env;
  let envB: Env;

  async function workloadOf(env: Env, run: string): Promise<Workload | undefined> {
    const job = await getJob(env, `${run}-train`);
    if (!job) return undefined;
    const body = z
      .object({ items: z.array(Workload) })
      .parse(
        await env.client.get(
          `/apis/kueue.x-k8s.io/v1beta2/namespaces/${env.ns}/workloads?labelSelector=${encodeURIComponent(`kueue.x-k8s.io/job-uid=${job.metadata.uid}`)}`,
        ),
      );
    return body.items[0];
  }

  const admitted = (env: Env, run: string) =>
    eventually(
      `Kueue to admit ${run}`,
      async () => {
        const wl = await workloadOf(env, run);
        const job = await getJob(env, `${run}-train`);
        if (!wl || wlCondition(wl, "Admitted")?.status !== "True" || job?.spec.suspend !== false)
          throw new Error(
            `workload ${JSON.stringify(wl?.status?.conditions)}; job suspend ${job?.spec.suspend}`,
          );
        return { wl, job };
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );

  async function createRun(env: Env, name: string, queueName: string, priorityClass?: string) {
    await env.client.create(lftPath(env.ns), {
      ...manifest({ name, queueName, ...(priorityClass ? { priorityClass } : {}) }),
      metadata: { name, namespace: env.ns },
    });
  }

  async function deleteRun(env: Env, name: string) {
    await env.client.request("DELETE", lftPath(env.ns, name), {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Foreground",
    });
    await eventually(`${name} and its Job to be gone`, async () => {
      const r = await env.client.request("GET", lftPath(env.ns, name));
      const job = await getJob(env, `${name}-train`);
      return r.status === 404 && !job ? true : undefined;
    });
  }

  before(async () => {
    // A cluster of its own: Kueue's webhooks and cluster-scoped queues would reach into the
    // other suites of a shared cluster.
    cluster = await startCluster({ controllerManager: true });
    kueue = await startKueue(cluster);
    await installCrd(cluster.client);
    for (const ns of [teamA, teamB]) {
      await cluster.client.create("/api/v1/namespaces", {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns },
      });
    }
    envA = { cluster, client: cluster.client, ns: teamA };
    envB = { cluster, client: cluster.client, ns: teamB };

    // The admin's setup exactly as the chart renders it: one flavor, two team queues that
    // lend each other a GPU in one cohort, one queue of its own, two priorities.
    const quota = (gpus: number) => [{ flavor: FLAVOR, gpus, cpu: "16", memory: "64Gi" }];
    const values = {
      enabled: true,
      flavors: [
        {
          name: FLAVOR,
          nodeLabels: { "nvidia.com/gpu.product": PRODUCT },
          tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        },
      ],
      clusterQueues: [
        { name: "solo", quotas: quota(1) },
        { name: "team-a", cohort: "v100-pool", quotas: quota(1) },
        { name: "team-b", cohort: "v100-pool", quotas: quota(1) },
      ],
      localQueues: [
        { name: "solo-queue", namespace: teamA, clusterQueue: "solo" },
        { name: "v100-queue", namespace: teamA, clusterQueue: "team-a" },
        { name: "v100-queue", namespace: teamB, clusterQueue: "team-b" },
      ],
      priorityClasses: [
        { name: "loraforge-high", value: 1000, description: "deadline runs" },
        { name: "loraforge-low", value: 100, description: "background runs" },
      ],
    };
    const objs = docs(
      helmTemplate(ensureHelm(), "kueue-it", chart, teamA, {}, [
        "--kube-version",
        cluster.version,
        "--set-json",
        `kueue=${JSON.stringify(values)}`,
      ]),
    ).filter((o) => o.apiVersion.startsWith("kueue.x-k8s.io/"));
    assert.deepEqual(objs.map((o) => o.kind).sort(), [
      "ClusterQueue",
      "ClusterQueue",
      "ClusterQueue",
      "LocalQueue",
      "LocalQueue",
      "LocalQueue",
      "ResourceFlavor",
      "WorkloadPriorityClass",
      "WorkloadPriorityClass",
    ]);
    // Flavors and priority classes first: queues refer to them.
    const order = ["ResourceFlavor", "WorkloadPriorityClass", "ClusterQueue", "LocalQueue"];
    objs.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
    for (const o of objs) await applyStrict(o);
    await eventually("the ClusterQueues to be active", async () => {
      for (const name of ["solo", "team-a", "team-b"]) {
        const cq = z
          .object({
            status: z
              .object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })) })
              .optional(),
          })
          .parse(await cluster.client.get(`/apis/kueue.x-k8s.io/v1beta2/clusterqueues/${name}`));
        if (!cq.status?.conditions.some((c) => c.type === "Active" && c.status === "True"))
          throw new Error(`ClusterQueue ${name} is not active yet`);
      }
      return true;
    });
    operator = await startOperator(envA, { watchNamespace: "" });
  });

  async function applyStrict(o: Obj) {
    const r = await cluster.client.request(
      "PATCH",
      `${pathOf(o)}?fieldManager=helm-test&force=true&fieldValidation=Strict`,
      o,
      "application/apply-patch+yaml",
    );
    assert.ok(
      r.status === 200 || r.status === 201,
      `${o.kind}/${o.metadata.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`,
    );
  }

  after(async () => {
    await operator?.stop();
    await kueue?.stop();
    await cluster?.stop();
  });

  test("quota for one of two runs: the second is Queued with Kueue's reason, survives an operator restart, and runs when the first is gone", async () => {
    await createRun(envA, "first", "solo-queue");
    const { job: firstJob } = await admitted(envA, "first");
    // Kueue, not the operator, unsuspended the Job and placed it by the flavor.
    const pod = firstJob.spec.template.spec;
    assert.equal(pod.nodeSelector?.["nvidia.com/gpu.product"], PRODUCT);
    assert.ok(pod.tolerations?.some((t: { key?: string }) => t.key === "nvidia.com/gpu"));
    const raw = z
      .object({
        metadata: z.object({
          managedFields: z.array(
            z.object({ manager: z.string(), operation: z.string(), fieldsV1: z.unknown() }),
          ),
        }),
      })
      .parse(await cluster.client.get(`/apis/batch/v1/namespaces/${teamA}/jobs/first-train`));
    const suspendOwners = raw.metadata.managedFields
      .filter((f) => JSON.stringify(f.fieldsV1).includes('"f:suspend"'))
      .map((f) => `${f.manager}/${f.operation}`);
    assert.ok(
      suspendOwners.length > 0 && suspendOwners.every((m) => !m.startsWith(FIELD_MANAGER)),
      `spec.suspend owned by ${suspendOwners.join(", ")}`,
    );
    const first = await waitPhase(envA, "first", "Pending", (l) =>
      /flavor v100-32gb/.test(condition(l, "Admitted")?.message ?? ""),
    );
    // The memory fit, checked against the flavor Kueue chose.
    assert.match(
      condition(first, "Admitted")?.message ?? "",
      /ClusterQueue solo with flavor v100-32gb .*; flavor v100-32gb \(Tesla-V100-SXM2-32GB\): fits, about [\d.]+ of 32 GiB/,
    );
    assert.equal(condition(first, "Admitted")?.status, "True");
    assert.equal(first.status?.queuedSince, undefined);

    await createRun(envA, "second", "solo-queue");
    const second = await waitPhase(envA, "second", "Queued", (l) =>
      /insufficient unused quota for nvidia\.com\/gpu/.test(
        condition(l, "Admitted")?.message ?? "",
      ),
    );
    assert.equal(second.status?.reason, "QueuedByKueue");
    const queuedSince = second.status?.queuedSince;
    assert.ok(typeof queuedSince === "string", "queuedSince is set while queued");
    console.log(`second: ${condition(second, "Admitted")?.message}`);

    // kubectl get lft: the Queue and Waiting columns.
    const table = await getTable(cluster.client, lftPath(teamA));
    const row = rowOf(table, "second");
    assert.equal(row?.Queue, "solo-queue");
    assert.match(String(row?.Waiting), /^\d+s$/);
    console.log(`$ kubectl get lft -n ${teamA}\n${renderTable(table)}`);

    // The operator restarts while a run is queued: no second Job, the same wait.
    const jobsBefore = (await listJobs(envA)).map((j) => `${j.metadata.name}/${j.metadata.uid}`);
    await operator?.stop();
    operator = await startOperator(envA, { watchNamespace: "" });
    await new Promise((r) => setTimeout(r, 3000)); // a few passes of the new operator
    const jobsAfter = (await listJobs(envA)).map((j) => `${j.metadata.name}/${j.metadata.uid}`);
    assert.deepEqual(jobsAfter.sort(), jobsBefore.sort());
    const still = await getLft(envA, "second");
    assert.equal(still.status?.phase, "Queued");
    assert.equal(still.status?.queuedSince, queuedSince, "the wait is not reset by a restart");

    // The first run goes away (its Job with it): Kueue admits the second.
    await deleteRun(envA, "first");
    await admitted(envA, "second");
    const running = await waitPhase(envA, "second", "Pending");
    assert.equal(running.status?.queuedSince, undefined);
    await deleteRun(envA, "second");
  });

  test("Kueue's own webhooks are served: a queued Job created unsuspended is suspended on creation, a bad queue label refused", async () => {
    const job = (name: string, queue: string) => ({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name, namespace: teamB, labels: { "kueue.x-k8s.io/queue-name": queue } },
      spec: {
        suspend: false,
        template: {
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "c", image: "busybox", resources: { requests: { cpu: "1" } } }],
          },
        },
      },
    });
    const created = z
      .object({ spec: z.object({ suspend: z.boolean() }) })
      .parse(
        await cluster.client.create(
          `/apis/batch/v1/namespaces/${teamB}/jobs`,
          job("raw", "v100-queue"),
        ),
      );
    assert.equal(created.spec.suspend, true, "Kueue's mutating webhook suspended it");
    const bad = await cluster.client.request(
      "POST",
      `/apis/batch/v1/namespaces/${teamB}/jobs`,
      job("bad", "Not_A_Name"),
    );
    assert.ok(
      bad.status >= 400 && bad.status < 500 && /queue-name/.test(JSON.stringify(bad.body)),
      `Kueue's validating webhook: ${bad.status} ${JSON.stringify(bad.body).slice(0, 300)}`,
    );
    await cluster.client.request("DELETE", `/apis/batch/v1/namespaces/${teamB}/jobs/raw`, {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Background",
    });
  });

  test("a LocalQueue that does not exist: Queued with a condition that names it", async () => {
    await createRun(envA, "lost", "no-such-queue");
    const lost = await waitPhase(
      envA,
      "lost",
      "Queued",
      (l) => l.status?.reason === "LocalQueueNotFound",
    );
    const admittedCond = condition(lost, "Admitted");
    assert.equal(admittedCond?.status, "False");
    assert.match(admittedCond?.message ?? "", /LocalQueue no-such-queue does not exist/);
    assert.match(admittedCond?.message ?? "", /spec\.queueName/);
    const job = await getJob(envA, "lost-train");
    assert.equal(job?.spec.suspend, true, "never unsuspended");
    await deleteRun(envA, "lost");
  });

  test("suspend: true on a queued run: Suspended, its Job and Workload gone; suspend: false queues it again", async () => {
    await createRun(envA, "holder", "solo-queue");
    await admitted(envA, "holder");
    await createRun(envA, "waiting", "solo-queue");
    await waitPhase(envA, "waiting", "Queued", (l) => l.status?.reason === "QueuedByKueue");
    const queuedJob = await getJob(envA, "waiting-train");
    assert.ok(queuedJob, "the queued run has its (suspended) Job");
    assert.ok(await workloadOf(envA, "waiting"), "and Kueue's Workload for it");

    await envA.client.mergePatch(lftPath(envA.ns, "waiting"), { spec: { suspend: true } });
    const suspended = await waitPhase(envA, "waiting", "Suspended");
    assert.equal(condition(suspended, "Suspended")?.status, "True");
    await eventually("the suspended run's Job and Workload to be gone", async () => {
      if (await getJob(envA, "waiting-train")) return undefined;
      const { items } = await envA.client.list(
        `/apis/kueue.x-k8s.io/v1beta2/namespaces/${envA.ns}/workloads`,
        `kueue.x-k8s.io/job-uid=${queuedJob.metadata.uid}`,
      );
      return items.length === 0 ? true : undefined;
    });
    // the quota it did not hold stays with the running one
    assert.equal((await getLft(envA, "holder")).status?.phase, "Pending");

    await envA.client.mergePatch(lftPath(envA.ns, "waiting"), { spec: { suspend: false } });
    const again = await waitPhase(envA, "waiting", "Queued", (l) =>
      /insufficient unused quota for nvidia\.com\/gpu/.test(
        condition(l, "Admitted")?.message ?? "",
      ),
    );
    assert.equal(again.status?.reason, "QueuedByKueue");
    const newJob = await getJob(envA, "waiting-train");
    assert.ok(newJob && newJob.metadata.uid !== queuedJob.metadata.uid, "a new Job, suspended");
    assert.equal(newJob?.spec.suspend, true);
    await deleteRun(envA, "waiting");
    await deleteRun(envA, "holder");
  });

  test("borrowing within a cohort: team A runs two with one GPU of its own, team B takes its GPU back", async () => {
    await createRun(envA, "a1", "v100-queue");
    await admitted(envA, "a1");
    await createRun(envA, "a2", "v100-queue");
    const { wl } = await admitted(envA, "a2");
    assert.equal(wl.status?.admission?.clusterQueue, "team-a");
    // Kueue writes the ClusterQueue's usage a moment after the admission.
    await eventually(
      "team-a to show one GPU borrowed from the cohort",
      async () => {
        const usage = z
          .object({
            status: z.object({
              flavorsReservation: z
                .array(
                  z.object({
                    name: z.string(),
                    resources: z.array(
                      z.object({
                        name: z.string(),
                        total: z.unknown(),
                        borrowed: z.unknown().optional(),
                      }),
                    ),
                  }),
                )
                .optional(),
            }),
          })
          .parse(await cluster.client.get("/apis/kueue.x-k8s.io/v1beta2/clusterqueues/team-a"));
        const gpu = usage.status.flavorsReservation
          ?.find((f) => f.name === FLAVOR)
          ?.resources.find((r) => r.name === "nvidia.com/gpu");
        if (String(gpu?.total) !== "2" || String(gpu?.borrowed) !== "1")
          throw new Error(`team-a GPU reservation ${JSON.stringify(gpu)}`);
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );

    // Team B wants its GPU: Kueue reclaims it by evicting one of team A's runs.
    await createRun(envB, "b1", "v100-queue");
    await admitted(envB, "b1");
    const evicted = await eventually(
      "one of team A's runs to be evicted",
      async () => {
        for (const name of ["a1", "a2"]) {
          const l = await getLft(envA, name);
          if (l.status?.phase === "Queued" && l.status.reason === "EvictedByKueue") return l;
        }
        throw new Error("no team A run is back in the queue yet");
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    assert.match(
      condition(evicted, "Admitted")?.message ?? "",
      /Kueue evicted the run \(Preempted/,
    );
    console.log(`${evicted.metadata.name}: ${condition(evicted, "Admitted")?.message}`);
    for (const name of ["a1", "a2"]) await deleteRun(envA, name);
    await deleteRun(envB, "b1");
  });

  test("preemption by priority: the low run is evicted, shows why, and runs again after the high one", async () => {
    await createRun(envA, "low", "solo-queue", "loraforge-low");
    const { wl: lowWl } = await admitted(envA, "low");
    assert.equal(lowWl.spec.priority, 100);
    await waitPhase(envA, "low", "Pending");

    await createRun(envA, "high", "solo-queue", "loraforge-high");
    const low = await waitPhase(
      envA,
      "low",
      "Queued",
      (l) => l.status?.reason === "EvictedByKueue",
      60_000,
    );
    const message = condition(low, "Admitted")?.message ?? "";
    assert.match(message, /Kueue evicted the run \(Preempted: .*priorit/i);
    await admitted(envA, "high");
    const lowJob = await getJob(envA, "low-train");
    assert.equal(lowJob?.spec.suspend, true, "Kueue suspended the evicted run's Job");

    // The run's history, from the operator's Events.
    const events = z
      .object({
        items: z.array(z.object({ reason: z.string(), message: z.string(), type: z.string() })),
      })
      .parse(
        await cluster.client.get(
          `/api/v1/namespaces/${teamA}/events?fieldSelector=${encodeURIComponent("involvedObject.name=low")}`,
        ),
      );
    const history = events.items.map((e) => `${e.type} ${e.reason}: ${e.message}`);
    console.log(["low's events:", ...history].join("\n"));
    assert.ok(history.some((h) => h.startsWith("Warning Evicted: Kueue evicted the run")));

    await deleteRun(envA, "high");
    await admitted(envA, "low");
    await waitPhase(envA, "low", "Pending");
    await deleteRun(envA, "low");
    await eventually("no Jobs left", async () =>
      (await listJobs(envA)).length === 0 ? true : undefined,
    );
  });
  test("kubectl get lft -o wide: a failed, a queued and a running run, as the operator and the trainer write them", async () => {
    // What the in-pod reporter patches from the core's step events (cli/src/inpod/reporter.ts).
    const trainerProgress = (name: string, step: number, loss: number, etaSeconds: number) =>
      envA.client.patch(
        `${lftPath(teamA, name)}/status`,
        {
          status: {
            progress: {
              step,
              totalSteps: 400,
              epoch: (3 * step) / 400,
              percent: Math.floor(step / 4),
              summary: `${step}/400 (${Math.floor(step / 4)}%)`,
              loss,
              etaSeconds,
              eta: durationText(etaSeconds),
              updatedAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
            },
          },
        },
        "merge",
      );
    // Kueue admits one run to the solo queue's one GPU; the test plays its pod's kubelet.
    await createRun(envA, "wide-running", "solo-queue");
    const { job } = await admitted(envA, "wide-running");
    await podRunning(envA, (await podOf(envA, job.metadata.name)).metadata.name);
    await waitPhase(envA, "wide-running", "Running");
    await trainerProgress("wide-running", 120, 1.25, 4320);
    // The second waits for that GPU.
    await createRun(envA, "wide-queued", "solo-queue");
    await waitPhase(envA, "wide-queued", "Queued", (l) => l.status?.reason === "QueuedByKueue");
    // A run outside Kueue trains a while, then its trainer exits 4 (NaN loss).
    await envA.client.create(lftPath(teamA), {
      ...manifest({ name: "wide-failed" }),
      metadata: { name: "wide-failed", namespace: teamA },
    });
    const failedJob = await eventually("wide-failed's Job", () =>
      getJob(envA, "wide-failed-train"),
    );
    const failedPod = (await podOf(envA, failedJob.metadata.name)).metadata.name;
    await podRunning(envA, failedPod);
    await waitPhase(envA, "wide-failed", "Running");
    await trainerProgress("wide-failed", 80, 7.9, 9000);
    await podTerminated(envA, failedPod, 4, "Error", "layer 31 down_proj: loss is NaN");
    await waitPhase(envA, "wide-failed", "Failed");

    const names = ["wide-failed", "wide-queued", "wide-running"];
    const table = await getTable(cluster.client, lftPath(teamA));
    const ours = { ...table, rows: table.rows.filter((r) => names.includes(String(r.cells[0]))) };
    const wide = renderTable(ours, { wide: true });
    console.log(`$ kubectl get lft -n ${teamA}\n${renderTable(ours)}`);
    console.log(`$ kubectl get lft -n ${teamA} -o wide\n${wide}`);
    const cells = (name: string, columns: string[]) => {
      const row = rowOf(table, name);
      return columns.map((c) => row?.[c]);
    };
    const columns = ["Phase", "Reason", "Progress", "Loss", "Queue", "Model", "GPU", "ETA"];
    const model = "llama-2-7b-hf";
    const gpu = "1x Tesla-V100-SXM2-32GB";
    assert.deepEqual(cells("wide-failed", columns), [
      "Failed",
      "NaNLoss",
      "80/400 (20%)",
      7.9,
      undefined,
      model,
      gpu,
      undefined, // the trainer's last estimate goes with the failure
    ]);
    assert.deepEqual(cells("wide-queued", columns), [
      "Queued",
      "QueuedByKueue",
      undefined,
      undefined,
      "solo-queue",
      model,
      gpu,
      undefined,
    ]);
    assert.deepEqual(cells("wide-running", columns), [
      "Running",
      "Training",
      "120/400 (30%)",
      1.25,
      "solo-queue",
      model,
      gpu,
      "1h12m",
    ]);
    assert.match(String(rowOf(table, "wide-queued")?.Waiting), /^\d+s$/);
    // Model, GPU and ETA only with -o wide.
    const narrow = renderTable(ours).split("\n")[0] ?? "";
    assert.ok(!/MODEL|GPU|ETA/.test(narrow) && /PHASE +REASON/.test(narrow), narrow);
    assert.match(wide.split("\n")[0] ?? "", /MODEL +GPU +ETA$/);
    for (const name of names) await deleteRun(envA, name);
  });
});
