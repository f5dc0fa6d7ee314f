// The harness against itself: a real etcd + kube-apiserver + kube-controller-manager.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import {
  ensureBinaries,
  eventually,
  KubeClient,
  pinnedKubernetesVersion,
  readKubeconfig,
  reportedVersion,
  startCluster,
  type TestCluster,
} from "../../src/index.ts";

const ObjectMeta = z.object({
  name: z.string(),
  uid: z.string(),
  deletionTimestamp: z.string().optional(),
  ownerReferences: z
    .array(z.object({ kind: z.string(), name: z.string(), uid: z.string() }))
    .optional(),
});
const PodList = z.object({
  items: z.array(z.object({ metadata: ObjectMeta, status: z.object({ phase: z.string() }) })),
});
const Job = z.object({
  metadata: ObjectMeta,
  status: z
    .object({
      succeeded: z.number().optional(),
      conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional(),
    })
    .optional(),
});

function job(name: string, completions: number) {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name },
    spec: {
      completions,
      parallelism: completions,
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [{ name: "main", image: "busybox:1.36", command: ["true"] }],
        },
      },
    },
  };
}

describe("test cluster harness", () => {
  let cluster: TestCluster;
  let client: KubeClient;
  const ns = "harness";

  before(async () => {
    cluster = await startCluster({ controllerManager: true });
    client = cluster.client;
    await client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  test("serves the pinned Kubernetes release", async () => {
    const pinned = pinnedKubernetesVersion();
    assert.equal(pinned, "v1.34.4");
    assert.equal(cluster.version, pinned);
    const bin = await ensureBinaries();
    assert.equal(reportedVersion(bin.kubeApiserver), pinned);
    assert.equal(reportedVersion(bin.kubeControllerManager), pinned);
    assert.match(reportedVersion(bin.etcd), /^v3\.6\./);
  });

  test("the kubeconfig it writes connects as an admin", async () => {
    const viaFile = KubeClient.connect(readKubeconfig(cluster.kubeconfigPath));
    const review = z
      .object({
        status: z.object({
          userInfo: z.object({ username: z.string(), groups: z.array(z.string()) }),
        }),
      })
      .parse(
        await viaFile.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
          apiVersion: "authentication.k8s.io/v1",
          kind: "SelfSubjectReview",
        }),
      );
    assert.equal(review.status.userInfo.username, "admin");
    assert.ok(review.status.userInfo.groups.includes("system:masters"));
  });

  test("refuses a wrong token and a wrong CA", async () => {
    const wrongToken = KubeClient.connect({ ...cluster, token: "not-the-token" });
    assert.equal((await wrongToken.request("GET", "/api/v1/namespaces")).status, 401);
    const otherCluster = { ...cluster, caPem: "" };
    await assert.rejects(
      KubeClient.connect(otherCluster).request("GET", "/version"),
      /certificate/,
    );
  });

  test("creates and reads back a Namespace", async () => {
    const got = z
      .object({ metadata: ObjectMeta, status: z.object({ phase: z.string() }) })
      .parse(await client.get(`/api/v1/namespaces/${ns}`));
    assert.equal(got.metadata.name, ns);
    assert.equal(got.status.phase, "Active");
  });

  test("the Job controller creates a Job's pods and completes it when they succeed", async () => {
    const created = Job.parse(
      await client.create(`/apis/batch/v1/namespaces/${ns}/jobs`, job("done", 2)),
    );
    const pods = await eventually("2 pods of job done", async () => {
      const list = PodList.parse(
        await client.get(
          `/api/v1/namespaces/${ns}/pods?labelSelector=batch.kubernetes.io/job-name=done`,
        ),
      );
      return list.items.length === 2 ? list.items : undefined;
    });
    for (const pod of pods) {
      assert.equal(pod.status.phase, "Pending"); // no scheduler, no kubelet
      assert.deepEqual(
        pod.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
        [["Job", "done", created.metadata.uid]],
      );
      // Play the kubelet: report the container as finished.
      await client.patch(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}/status`, {
        status: { phase: "Succeeded" },
      });
    }
    const finished = await eventually("job done to complete", async () => {
      const got = Job.parse(await client.get(`/apis/batch/v1/namespaces/${ns}/jobs/done`));
      const complete = got.status?.conditions?.find((c) => c.type === "Complete");
      return complete?.status === "True" ? got : undefined;
    });
    assert.equal(finished.status?.succeeded, 2);
  });

  test("deleting a Job with propagationPolicy Background garbage-collects its pods", async () => {
    await client.create(`/apis/batch/v1/namespaces/${ns}/jobs`, job("gc", 3));
    const selector = "labelSelector=batch.kubernetes.io/job-name=gc";
    await eventually("3 pods of job gc", async () => {
      const list = PodList.parse(await client.get(`/api/v1/namespaces/${ns}/pods?${selector}`));
      return list.items.length === 3 ? true : undefined;
    });
    await client.delete(`/apis/batch/v1/namespaces/${ns}/jobs/gc`, "Background");
    await eventually("the garbage collector to remove job gc's pods", async () => {
      const list = PodList.parse(await client.get(`/api/v1/namespaces/${ns}/pods?${selector}`));
      return list.items.length === 0 ? true : undefined;
    });
    const gone = await client.request("GET", `/apis/batch/v1/namespaces/${ns}/jobs/gc`);
    assert.equal(gone.status, 404);
  });

  test("TokenRequest issues a ServiceAccount token that authenticates, bound by RBAC", async () => {
    await client.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "robot" },
    });
    const issued = z
      .object({ status: z.object({ token: z.string().min(20), expirationTimestamp: z.string() }) })
      .parse(
        await client.create(`/api/v1/namespaces/${ns}/serviceaccounts/robot/token`, {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: 600 },
        }),
      );
    const robot = KubeClient.connect({ ...cluster, token: issued.status.token });
    const review = z
      .object({ status: z.object({ userInfo: z.object({ username: z.string() }) }) })
      .parse(
        await robot.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
          apiVersion: "authentication.k8s.io/v1",
          kind: "SelfSubjectReview",
        }),
      );
    assert.equal(review.status.userInfo.username, `system:serviceaccount:${ns}:robot`);
    // Authenticated but not authorized: RBAC is really enforced.
    assert.equal((await robot.request("GET", `/api/v1/namespaces/${ns}/secrets`)).status, 403);
  });

  test("stop() ends every process and removes the run's directory", async () => {
    const dir = cluster.dir;
    assert.ok(dir && existsSync(dir));
    await cluster.stop();
    assert.equal(existsSync(dir), false);
    await assert.rejects(client.request("GET", "/version", undefined, undefined, 2_000));
  });
});
