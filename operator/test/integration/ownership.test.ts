// Integration: the operator never takes over an object it did not create. A ServiceAccount,
// Role, RoleBinding, ConfigMap or Job that has a run's child name but is not controlled by
// that run is left exactly as it was; the run fails with ObjectConflict (condition and a
// Warning event), and deleting the run garbage-collects none of them. A child the API
// server refuses outright (422) fails the run with the server's message instead of leaving
// it Pending while the operator retries forever.

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
  setup,
  startOperator,
  teardown,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

const Meta = z
  .object({
    metadata: z
      .object({
        name: z.string(),
        uid: z.string(),
        resourceVersion: z.string(),
        ownerReferences: z.array(z.object({ uid: z.string() }).passthrough()).optional(),
        labels: z.record(z.string(), z.string()).optional(),
        managedFields: z.unknown().optional(),
      })
      .passthrough(),
  })
  .passthrough();

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

describe("objects the run does not control are refused, never taken over", () => {
  let env: Env;
  let op: Operator;
  before(async () => {
    env = await setup("ownership");
    op = await startOperator(env);
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const at = {
    sa: (name = "") => `/api/v1/namespaces/${env.ns}/serviceaccounts${name && `/${name}`}`,
    role: (name = "") =>
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/roles${name && `/${name}`}`,
    rb: (name = "") =>
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/rolebindings${name && `/${name}`}`,
    cm: (name = "") => `/api/v1/namespaces/${env.ns}/configmaps${name && `/${name}`}`,
    job: (name = "") => `/apis/batch/v1/namespaces/${env.ns}/jobs${name && `/${name}`}`,
  };

  /** Pre-creates the four per-run objects of `run`, with `owners` as their owner references. */
  async function squat(run: string, owners: unknown[]) {
    const meta = (name: string) => ({
      name,
      namespace: env.ns,
      labels: { squatter: "yes" },
      ...(owners.length > 0 ? { ownerReferences: owners } : {}),
    });
    const account = `${run}-trainer`;
    const made = [
      await env.client.create(at.sa(), {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: meta(account),
      }),
      await env.client.create(at.role(), {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: meta(account),
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }],
      }),
      await env.client.create(at.rb(), {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: meta(account),
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: account },
        subjects: [{ kind: "ServiceAccount", name: "default", namespace: env.ns }],
      }),
      await env.client.create(at.cm(), {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: meta(`${run}-spec`),
        data: { "spec.yaml": "not yours" },
      }),
    ];
    return made.map((o) => Meta.parse(o));
  }

  const paths = (run: string) => [
    at.sa(`${run}-trainer`),
    at.role(`${run}-trainer`),
    at.rb(`${run}-trainer`),
    at.cm(`${run}-spec`),
  ];

  async function expectUntouched(run: string, before: z.infer<typeof Meta>[], lftUid: string) {
    for (const [i, path] of paths(run).entries()) {
      const now = Meta.parse(await env.client.get(path));
      assert.equal(
        now.metadata.resourceVersion,
        before[i]?.metadata.resourceVersion,
        `${path} was changed`,
      );
      assert.ok(
        !(now.metadata.ownerReferences ?? []).some((r) => r.uid === lftUid),
        `${path} got an owner reference to the run`,
      );
    }
  }

  async function expectConflict(run: string) {
    const l = await waitPhase(env, run, "Failed");
    assert.equal(l.status?.failure?.reason, Reason.ObjectConflict);
    assert.match(
      l.status?.failure?.message ?? "",
      /already exists and is not controlled by this LoraFineTune/,
    );
    assert.equal(condition(l, "Failed")?.reason, Reason.ObjectConflict);
    assert.equal(condition(l, "Admitted")?.status, "False");
    await eventually("the ObjectConflict event", async () => {
      const items = Events.parse(await env.client.get(`/api/v1/namespaces/${env.ns}/events`)).items;
      return items.find(
        (e) =>
          e.involvedObject.name === run &&
          e.type === "Warning" &&
          e.reason === "Failed" &&
          e.message.startsWith(`${Reason.ObjectConflict}: `),
      );
    });
    assert.equal(await getJob(env, `${run}-train`), undefined, "no Job for a refused run");
    return l;
  }

  test("objects with no owner: Failed ObjectConflict, untouched, and not collected with the run", async () => {
    const before = await squat("orphans", []);
    await env.client.create(lftPath(env.ns), manifest({ name: "orphans" }));
    const l = await expectConflict("orphans");
    await expectUntouched("orphans", before, l.metadata.uid);

    // Deleting the run must not garbage-collect them.
    await env.client.delete(lftPath(env.ns, "orphans"));
    await eventually("the run to be gone", async () => {
      const r = await env.client.request("GET", lftPath(env.ns, "orphans"));
      return r.status === 404 ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 3000)); // give the garbage collector its chance
    await expectUntouched("orphans", before, l.metadata.uid);
  });

  test("objects controlled by another object: refused, untouched", async () => {
    const owner = Meta.parse(
      await env.client.create(at.cm(), {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "someone-elses", namespace: env.ns },
      }),
    );
    const before = await squat("borrowed", [
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        name: "someone-elses",
        uid: owner.metadata.uid,
        controller: true,
      },
    ]);
    await env.client.create(lftPath(env.ns), manifest({ name: "borrowed" }));
    const l = await expectConflict("borrowed");
    assert.match(l.status?.failure?.message ?? "", /ConfigMap someone-elses/);
    await expectUntouched("borrowed", before, l.metadata.uid);
  });

  test("an unlabelled Job with the run's Job name: refused, untouched", async () => {
    const job = Meta.parse(
      await env.client.create(at.job(), {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "jobless-train", namespace: env.ns },
        spec: {
          suspend: true,
          template: {
            spec: {
              restartPolicy: "Never",
              containers: [{ name: "c", image: "busybox:1.36", command: ["true"] }],
            },
          },
        },
      }),
    );
    await env.client.create(lftPath(env.ns), manifest({ name: "jobless" }));
    const l = await waitPhase(env, "jobless", "Failed");
    assert.equal(l.status?.failure?.reason, Reason.ObjectConflict);
    assert.match(l.status?.failure?.message ?? "", /Job .*jobless-train already exists/);
    // The Job controller writes its status, so compare what the operator could have set.
    const now = Meta.parse(await env.client.get(at.job("jobless-train")));
    assert.equal(now.metadata.uid, job.metadata.uid);
    assert.equal(now.metadata.ownerReferences, undefined);
    assert.equal(now.metadata.labels?.["app.kubernetes.io/managed-by"], undefined);
    const managers = z
      .array(z.object({ manager: z.string() }).passthrough())
      .parse(now.metadata.managedFields);
    assert.ok(!managers.some((m) => m.manager === "loraforge-operator"), JSON.stringify(managers));
  });

  test("a run whose objects it controls still converges (the normal case)", async () => {
    await env.client.create(lftPath(env.ns), manifest({ name: "normal" }));
    const job = await eventually("the Job", () => getJob(env, "normal-train"));
    const l = await getLft(env, "normal");
    assert.equal(job.metadata.ownerReferences?.[0]?.uid, l.metadata.uid);
    // A Role drifted by hand is put back (the run controls it, so it is applied over).
    await env.client.patch(
      at.role("normal-trainer"),
      { rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }] },
      "merge",
    );
    await op.stop();
    op = await startOperator(env); // a fresh process re-ensures every run's children
    await eventually("the Role to be put back", async () => {
      const role = z
        .object({ rules: z.array(z.object({ resources: z.array(z.string()) })) })
        .parse(await env.client.get(at.role("normal-trainer")));
      return role.rules[0]?.resources[0] === "lorafinetunes/status" ? true : undefined;
    });
    assert.notEqual((await getLft(env, "normal")).status?.phase, "Failed");
  });

  test("a Job the API server refuses (422) → Failed RejectedByAPIServer with its message", async () => {
    await env.client.create(
      lftPath(env.ns),
      manifest({
        name: "refused",
        resources: {
          // Accepted by the CRD (affinity passes through), refused by the Job's validation.
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] },
            },
          },
        },
      }),
    );
    const l = await waitPhase(env, "refused", "Failed", () => true, 30_000);
    assert.equal(l.status?.failure?.reason, Reason.RejectedByAPIServer);
    assert.match(
      l.status?.failure?.message ?? "",
      /the API server refused Job .*refused-train \(422 Invalid\): .*nodeSelectorTerms/,
    );
    assert.equal(condition(l, "Admitted")?.reason, Reason.RejectedByAPIServer);
    assert.equal(await getJob(env, "refused-train"), undefined);
  });
});
