// Integration: the admin's placement policy. A run that asks for a taint, a node label or a
// model image outside it is refused before any child object exists: phase Failed, reason
// PolicyViolation in the Validated condition, and a Warning Event, each naming the field and
// the policy setting. Runs inside the policy get a Job with the admin's pod settings.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Reason } from "@loraforge/crds";
import { z } from "zod";
import type { Operator } from "../../src/operator.ts";
import { DEFAULT_POLICY } from "../../src/policy.ts";
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

describe("admin placement policy against a real API server", () => {
  let env: Env;
  let op: Operator | undefined;
  before(async () => {
    env = await setup("policy");
    op = await startOperator(env, {
      policy: {
        allowedTolerationKeys: ["nvidia.com/gpu"],
        allowedNodeSelector: { "nvidia.com/gpu.product": ["*"], pool: ["v100"] },
        allowedImageRegistries: ["registry.internal/models"],
        allowPodAffinity: false,
        allowedSourceNetworks: [],
      },
      trainer: {
        terminationGracePeriodSeconds: 240,
        defaultMemory: undefined,
        tmpSizeLimit: "2Gi",
        outputSizeLimit: "3Gi",
        imagePullSecrets: ["trainer-pull"],
      },
    });
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const create = (o: Parameters<typeof manifest>[0]) =>
    env.client.create(lftPath(env.ns), manifest(o));

  async function refused(name: string, pattern: RegExp) {
    const l = await waitPhase(env, name, "Failed");
    const v = condition(l, "Validated");
    assert.equal(v?.status, "False");
    assert.equal(v?.reason, Reason.PolicyViolation);
    assert.match(v?.message ?? "", pattern);
    assert.equal(l.status?.failure?.reason, Reason.PolicyViolation);
    assert.equal(await getJob(env, `${name}-train`), undefined, "no Job for a refused run");
    const sa = await env.client.request(
      "GET",
      `/api/v1/namespaces/${env.ns}/serviceaccounts/${name}-trainer`,
    );
    assert.equal(sa.status, 404, "no ServiceAccount for a refused run");
    await eventually(`the PolicyViolation event of ${name}`, async () => {
      const items = Events.parse(await env.client.get(`/api/v1/namespaces/${env.ns}/events`)).items;
      return items.find(
        (e) =>
          e.involvedObject.name === name &&
          e.type === "Warning" &&
          e.reason === "Failed" &&
          e.message.startsWith(`${Reason.PolicyViolation}: `) &&
          pattern.test(e.message),
      );
    });
  }

  test("a toleration of the control-plane taint → Failed PolicyViolation, no children", async () => {
    await create({
      name: "tolerate-cp",
      resources: {
        memory: "16Gi",
        tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists" }],
      },
    });
    await refused(
      "tolerate-cp",
      /spec\.resources\.tolerations\[0\]\.key "node-role\.kubernetes\.io\/control-plane" is not in the admin policy policy\.allowedTolerationKeys/,
    );
  });

  test("a toleration without a key is refused by the API server itself (CEL)", async () => {
    const r = await env.client.request("POST", lftPath(env.ns), {
      ...manifest({ name: "tolerate-all", resources: { tolerations: [{ operator: "Exists" }] } }),
    });
    assert.equal(r.status, 422);
    assert.match(
      JSON.stringify(r.body),
      /spec\.resources\.tolerations.*every toleration needs a key/,
    );
  });

  test("a node selector outside the policy → Failed PolicyViolation", async () => {
    await create({
      name: "hostname",
      resources: { memory: "16Gi", nodeSelector: { "kubernetes.io/hostname": "master-0" } },
    });
    await refused(
      "hostname",
      /spec\.resources\.nodeSelector "kubernetes\.io\/hostname: master-0" is outside the admin policy policy\.allowedNodeSelector/,
    );
  });

  test("a model image from a registry the admin did not list → Failed PolicyViolation", async () => {
    const m = manifest({ name: "foreign-image", resources: { memory: "16Gi" } });
    m.spec.baseModel.source = {
      image: { reference: "docker.io/someone/llama:7b", path: "llama-2-7b-hf" },
    } as never;
    await env.client.create(lftPath(env.ns), m);
    await refused(
      "foreign-image",
      /spec\.baseModel\.source\.image\.reference "docker\.io\/someone\/llama:7b".*policy\.allowedImageRegistries \[registry\.internal\/models\]/,
    );
  });

  test("no memory limit and no admin default → Failed InvalidSpec naming the setting", async () => {
    await create({ name: "no-memory" });
    const l = await waitPhase(env, "no-memory", "Failed");
    assert.equal(condition(l, "Validated")?.reason, Reason.InvalidSpec);
    assert.match(
      condition(l, "Validated")?.message ?? "",
      /spec\.resources\.memory is required.*trainer\.defaultMemory/,
    );
    assert.equal(await getJob(env, "no-memory-train"), undefined);
  });

  test("a run inside the policy gets its Job, with the admin's pod settings", async () => {
    const m = manifest({
      name: "inside",
      resources: {
        memory: "16Gi",
        nodeSelector: { pool: "v100" },
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
      },
    });
    m.spec.output = { uri: "s3://runs/inside" } as never;
    await env.client.create(lftPath(env.ns), m);
    const job = await eventually("the Job", () => getJob(env, "inside-train"));
    const pod = job.spec.template.spec;
    assert.equal(pod.terminationGracePeriodSeconds, 240);
    assert.deepEqual(pod.imagePullSecrets, [{ name: "trainer-pull" }]);
    assert.equal(pod.containers[0].resources.limits.memory, "16Gi");
    const sizes = Object.fromEntries(
      pod.volumes
        .filter((v: { emptyDir?: unknown }) => v.emptyDir)
        .map((v: { name: string; emptyDir: { sizeLimit: string } }) => [
          v.name,
          v.emptyDir.sizeLimit,
        ]),
    );
    assert.deepEqual(sizes, { dshm: "1Gi", tmp: "2Gi", output: "3Gi" });
  });

  test("spec.resources.terminationGracePeriodSeconds overrides the admin default", async () => {
    await create({
      name: "grace",
      resources: { memory: "16Gi", terminationGracePeriodSeconds: 900 },
    });
    const job = await eventually("the Job", () => getJob(env, "grace-train"));
    assert.equal(job.spec.template.spec.terminationGracePeriodSeconds, 900);
  });
  test("a stricter policy later does not fail a run that already has its Job", async () => {
    // "inside" (above) selected pool: v100 and got its Job. The admin now drops `pool`.
    await op?.stop();
    op = await startOperator(env, {
      policy: DEFAULT_POLICY,
      trainer: {
        terminationGracePeriodSeconds: 240,
        defaultMemory: "4Gi",
        tmpSizeLimit: "2Gi",
        outputSizeLimit: "3Gi",
        imagePullSecrets: [],
      },
    });
    await env.client.patch(
      lftPath(env.ns, "inside"),
      { metadata: { annotations: { touched: "yes" } } },
      "merge",
    );
    // A new run with the same selector is refused: the new operator is at work.
    await create({ name: "inside-late", resources: { nodeSelector: { pool: "v100" } } });
    await refused("inside-late", /nodeSelector "pool: v100" is outside the admin policy/);
    const l = await waitPhase(env, "inside", "Pending");
    assert.equal(condition(l, "Validated")?.status, "True");
    assert.ok(await getJob(env, "inside-train"));
  });
});
