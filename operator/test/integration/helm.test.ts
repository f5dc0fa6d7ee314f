// The Helm chart, rendered by real helm and applied to the real API server; then the
// operator runs with nothing but the chart's ServiceAccount token and does its job —
// which shows the chart's RBAC is enough — while being refused what it does not need.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KubeClient, renderKubeconfig } from "@loraforge/test-k8s";
import { z } from "zod";
import { createLogger, silentLogger } from "../../src/log.ts";
import { Operator } from "../../src/operator.ts";
import {
  CRD_FILE,
  condition,
  type Env,
  eventually,
  getJob,
  lftPath,
  setup,
  teardown,
  testConfig,
  waitPhase,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";
import {
  docs,
  ensureHelm,
  type Obj,
  pathOf,
  helmTemplate as renderChart,
} from "../support/helm.ts";
import { KUEUE_SAMPLE_CRDS, KUEUE_VERSION, kueueCrds } from "../support/kueue.ts";
import { installCrds } from "../support/upstreamCrds.ts";

const chart = join(import.meta.dirname, "..", "..", "..", "charts", "loraforge");
/** Renders for the test cluster's Kubernetes version (helm's default is far older). */
function helmTemplate(
  helm: string,
  release: string,
  chartDir: string,
  ns: string,
  sets: Record<string, string>,
  extra: string[] = [],
) {
  return renderChart(helm, release, chartDir, ns, sets, ["--kube-version", kubeVersion, ...extra]);
}
let kubeVersion = "";

describe("Helm chart rendered by helm and applied to a real API server", () => {
  let env: Env;
  let helm: string;
  let release: string;
  let rendered: Obj[];
  let op: Operator | undefined;
  let asOperator: KubeClient;
  let kubeconfigPath: string;
  const kueueObjects: Obj[] = [];

  before(async () => {
    env = await setup("helm");
    helm = ensureHelm();
    kubeVersion = env.cluster.version;
    release = `lf-${randomBytes(2).toString("hex")}`;
    rendered = docs(
      helmTemplate(
        helm,
        release,
        chart,
        env.ns,
        {
          "trainer.image": "ghcr.io/loraforge/trainer:chart",
          // Short, and within requestTimeout (1) < renewDeadline < leaseDuration, which the chart enforces.
          "leaderElection.leaseDurationSeconds": "3",
          "leaderElection.renewDeadlineSeconds": "2",
          "leaderElection.retryPeriodSeconds": "1",
        },
        ["--include-crds"],
      ),
    );
  });
  after(async () => {
    await op?.stop();
    if (env) {
      for (const o of kueueObjects) await env.client.request("DELETE", pathOf(o));
      for (const o of rendered ?? []) {
        if (!o.metadata.namespace && o.kind !== "CustomResourceDefinition")
          await env.client.request("DELETE", pathOf(o));
      }
    }
    await teardown(env);
  });

  test("the chart renders the CRD unchanged from crds/ (no drift)", () => {
    const crd = rendered.find((o) => o.kind === "CustomResourceDefinition");
    const fromCrds = docs(readFileSync(CRD_FILE, "utf8"))[0];
    assert.deepEqual(crd, fromCrds);
  });

  test("every rendered object applies to the API server (strict field validation)", async () => {
    for (const o of rendered) {
      const r = await env.client.request(
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
    const dep = z
      .object({
        spec: z.object({
          template: z.object({
            spec: z.object({
              containers: z.array(
                z.object({
                  env: z.array(z.object({ name: z.string(), value: z.string().optional() })),
                  securityContext: z.object({ readOnlyRootFilesystem: z.boolean() }),
                }),
              ),
            }),
          }),
        }),
      })
      .parse(
        await env.client.get(`/apis/apps/v1/namespaces/${env.ns}/deployments/${release}-loraforge`),
      );
    const c = dep.spec.template.spec.containers[0];
    assert.equal(c?.securityContext.readOnlyRootFilesystem, true);
    assert.equal(
      c?.env.find((e) => e.name === "LORAFORGE_TRAINER_IMAGE")?.value,
      "ghcr.io/loraforge/trainer:chart",
    );
  });

  test("the Kueue V100 samples use the API version Kueue stores, and Kueue's own CRDs accept them", async () => {
    const objs = docs(
      helmTemplate(helm, release, chart, env.ns, { "kueue.enabled": "true" }, [
        "--set-json",
        `kueue.flavors=${JSON.stringify([
          {
            name: `${release}-v100`,
            nodeLabels: { "nvidia.com/gpu.product": "Tesla-V100-SXM2-16GB" },
            tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
          },
        ])}`,
        "--set-json",
        `kueue.clusterQueues=${JSON.stringify([
          {
            name: `${release}-cq`,
            quotas: [{ flavor: `${release}-v100`, gpus: 8, cpu: "64", memory: "512Gi" }],
          },
        ])}`,
        "--set-json",
        `kueue.localQueues=${JSON.stringify([
          { name: "v100-queue", namespace: env.ns, clusterQueue: `${release}-cq` },
        ])}`,
        "--set-json",
        `kueue.priorityClasses=${JSON.stringify([{ name: `${release}-high`, value: 1000 }])}`,
      ]),
    ).filter((o) => o.apiVersion.startsWith("kueue.x-k8s.io/"));
    assert.deepEqual(objs.map((o) => o.kind).sort(), Object.keys(KUEUE_SAMPLE_CRDS).sort());
    const crds = kueueCrds();
    for (const o of objs) {
      const crd = crds.find((c) => c.spec.names.kind === o.kind);
      const version = crd?.spec.versions.find(
        (v) => `${crd.spec.group}/${v.name}` === o.apiVersion,
      );
      assert.ok(
        version?.served,
        `${o.kind}: ${o.apiVersion} is not served by Kueue ${KUEUE_VERSION}`,
      );
      assert.ok(
        version.storage && !version.deprecated,
        `${o.kind}: ${o.apiVersion} is not Kueue ${KUEUE_VERSION}'s storage version (deprecated: ${version.deprecated ?? false})`,
      );
    }
    // Applied with strict field validation: an unknown or renamed field, a wrong type or a
    // failed CEL rule of Kueue's schema is an error, not a silently dropped field.
    await installCrds(env.client, crds);
    for (const o of objs) {
      const r = await env.client.request(
        "PATCH",
        `${pathOf(o)}?fieldManager=helm-test&force=true&fieldValidation=Strict`,
        o,
        "application/apply-patch+yaml",
      );
      assert.ok(
        r.status === 200 || r.status === 201,
        `${o.kind}/${o.metadata.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`,
      );
      kueueObjects.push(o);
    }
    const flavor = z
      .object({
        spec: z.object({
          nodeLabels: z.record(z.string(), z.string()),
          tolerations: z.array(z.object({ key: z.string() })),
        }),
      })
      .parse(await env.client.get(pathOf(objs.find((o) => o.kind === "ResourceFlavor") as Obj)));
    assert.equal(flavor.spec.nodeLabels["nvidia.com/gpu.product"], "Tesla-V100-SXM2-16GB");
    assert.deepEqual(
      flavor.spec.tolerations.map((t) => t.key),
      ["nvidia.com/gpu"],
    );
    const cq = z
      .object({
        spec: z.object({
          resourceGroups: z.array(
            z.object({
              flavors: z.array(
                z.object({
                  name: z.string(),
                  resources: z.array(z.object({ name: z.string(), nominalQuota: z.unknown() })),
                }),
              ),
            }),
          ),
        }),
      })
      .parse(await env.client.get(pathOf(objs.find((o) => o.kind === "ClusterQueue") as Obj)));
    assert.deepEqual(
      cq.spec.resourceGroups[0]?.flavors[0]?.resources.map((r) => [r.name, r.nominalQuota]),
      [
        ["nvidia.com/gpu", 8],
        ["cpu", "64"],
        ["memory", "512Gi"],
      ],
    );
    const lq = z
      .object({ spec: z.object({ clusterQueue: z.string() }) })
      .parse(await env.client.get(pathOf(objs.find((o) => o.kind === "LocalQueue") as Obj)));
    assert.equal(lq.spec.clusterQueue, `${release}-cq`);
    assert.equal(
      docs(helmTemplate(helm, release, chart, env.ns, {})).filter((o) =>
        o.apiVersion.startsWith("kueue.x-k8s.io/"),
      ).length,
      0,
      "off by default",
    );
    // The samples values.yaml ships (kueue.enabled=true and nothing else) pass the same
    // schemas: a dry run, so the cluster-wide queues of the example are not created.
    const samples = docs(
      helmTemplate(helm, release, chart, env.ns, { "kueue.enabled": "true" }),
    ).filter((o) => o.apiVersion.startsWith("kueue.x-k8s.io/"));
    assert.deepEqual(
      [...new Set(samples.map((o) => o.kind))].sort(),
      Object.keys(KUEUE_SAMPLE_CRDS).sort(),
    );
    for (const o of samples) {
      const r = await env.client.request(
        "PATCH",
        `${pathOf(o)}?fieldManager=helm-test&force=true&fieldValidation=Strict&dryRun=All`,
        o,
        "application/apply-patch+yaml",
      );
      assert.ok(
        r.status === 200 || r.status === 201,
        `values.yaml's ${o.kind}/${o.metadata.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`,
      );
    }
  });

  test("with only the chart's ServiceAccount, the operator reconciles a run into a Job", async () => {
    const sa = rendered.find((o) => o.kind === "ServiceAccount");
    assert.ok(sa);
    const token = z
      .object({ status: z.object({ token: z.string() }) })
      .parse(
        await env.client.create(
          `/api/v1/namespaces/${env.ns}/serviceaccounts/${sa.metadata.name}/token`,
          { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
        ),
      ).status.token;
    const connection = { server: env.cluster.server, caPem: env.cluster.caPem, token };
    asOperator = KubeClient.connect(connection);
    kubeconfigPath = join(mkdtempSync(join(tmpdir(), "lf-helm-")), "kubeconfig.yaml");
    writeFileSync(kubeconfigPath, renderKubeconfig(connection));

    const config = testConfig(env.ns, {
      // The chart's admission policy admits Jobs of the chart's trainer image only.
      trainerImage: "ghcr.io/loraforge/trainer:chart",
      leaderElection: {
        enabled: true,
        namespace: env.ns,
        name: `${release}-loraforge`,
        identity: "chart-op",
        leaseDurationMs: 3000,
        renewDeadlineMs: 2500,
        retryPeriodMs: 500,
        requestTimeoutMs: 1000,
      },
    });
    op = new Operator(
      config,
      process.env.LORAFORGE_TEST_LOGS ? createLogger("debug") : silentLogger,
      kubeconfigPath,
    );
    await op.start();
    await env.client.create(lftPath(env.ns), manifest({ name: "via-chart" }));
    const job = await eventually("the Job", () => getJob(env, "via-chart-train"));
    assert.ok(job.metadata.ownerReferences?.length);
    const l = await waitPhase(
      env,
      "via-chart",
      "Pending",
      (x) => condition(x, "Admitted")?.status === "True",
    );
    assert.equal(l.status?.jobName, "via-chart-train");
    // The per-run Role was granted without escalate/bind verbs.
    assert.ok(
      await env.client.get(
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/roles/via-chart-trainer`,
      ),
    );
  });

  test("the chart's ServiceAccount is refused what it does not need", async () => {
    const checks: [string, string, unknown?][] = [
      ["GET", `/api/v1/namespaces/${env.ns}/secrets`],
      ["DELETE", lftPath(env.ns, "via-chart")],
      ["PATCH", lftPath(env.ns, "via-chart")],
      ["POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles"],
      ["DELETE", `/api/v1/namespaces/${env.ns}/pods/x`],
    ];
    for (const [method, path] of checks) {
      const r = await asOperator.request(
        method,
        path,
        method === "GET" || method === "DELETE" ? undefined : {},
        method === "PATCH" ? "application/merge-patch+json" : "application/json",
      );
      assert.equal(r.status, 403, `${method} ${path} → ${r.status}`);
    }
    // A Role granting more than the operator holds is an escalation and is refused.
    const escalate = await asOperator.request(
      "POST",
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/roles`,
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "too-much" },
        rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }],
      },
    );
    assert.equal(escalate.status, 403);
  });
});
