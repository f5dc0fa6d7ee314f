// The client against a real kube-apiserver: a kubeconfig file, in-cluster credentials whose
// token file is rotated between two requests, errors as the server words them, server-side
// apply with the field manager, paged lists, and a list+watch cache following changes.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connectTestCluster, eventually, type TestCluster } from "@loraforge/test-k8s";
import {
  inClusterConfig,
  isAlreadyExists,
  KubeApiError,
  KubeClient,
  loadKubeConfig,
  paths,
} from "../../src/index.ts";

interface ConfigMap {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    managedFields?: unknown;
  };
  data?: Record<string, string>;
}

const configMap = (name: string, data: Record<string, string>, labels = { app: "kube-it" }) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, labels },
  data,
});

describe("@loraforge/kube against a real API server", () => {
  let cluster: TestCluster;
  let kube: KubeClient;
  const ns = `kube-it-${randomBytes(3).toString("hex")}`;

  before(async () => {
    cluster = await connectTestCluster();
    // Through the kubeconfig file the harness wrote, as the action and the operator load it.
    kube = new KubeClient(loadKubeConfig(cluster.kubeconfigPath), { fieldManager: "kube-it" });
    await kube.create(paths.namespaces(), {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
  });
  after(async () => {
    await kube?.delete(paths.namespace(ns));
    kube?.close();
    await cluster?.stop();
  });

  test("create, find, apply, merge patch, delete; the server's refusals as KubeApiError", async () => {
    await kube.create(paths.configMaps(ns), configMap("a", { k: "1" }));
    await assert.rejects(kube.create(paths.configMaps(ns), configMap("a", { k: "1" })), (e) => {
      assert.ok(isAlreadyExists(e));
      assert.equal(e.method, "POST");
      assert.equal(e.path, paths.configMaps(ns));
      assert.match(e.serverMessage, /configmaps "a" already exists/);
      return true;
    });
    await assert.rejects(kube.create(paths.configMaps(ns), configMap("Bad_Name", {})), (e) => {
      assert.ok(e instanceof KubeApiError);
      assert.equal(e.status, 422);
      assert.equal(e.reason, "Invalid");
      return true;
    });
    const applied = (await kube.apply(
      paths.configMap(ns, "a"),
      configMap("a", { k: "2" }),
    )) as ConfigMap;
    assert.equal(applied.data?.k, "2");
    await kube.mergePatch(paths.configMap(ns, "a"), { data: { extra: "x" } });
    const got = (await kube.get(paths.configMap(ns, "a"))) as {
      data: Record<string, string>;
      metadata: { managedFields: { manager: string }[] };
    };
    assert.deepEqual(got.data, { k: "2", extra: "x" });
    assert.ok(got.metadata.managedFields.some((f) => f.manager === "kube-it"));
    assert.equal(await kube.delete(paths.configMap(ns, "a")), true);
    assert.equal(await kube.delete(paths.configMap(ns, "a")), false);
    assert.equal(await kube.find(paths.configMap(ns, "a")), undefined);
  });

  test("in-cluster: the service account's token file is re-read, so a rotated token is used at once", async () => {
    const token = async (sa: string) => {
      await kube.create(paths.serviceAccounts(ns), {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: sa },
      });
      const r = (await kube.create(`${paths.serviceAccount(ns, sa)}/token`, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {},
      })) as { status: { token: string } };
      return r.status.token;
    };
    const dir = mkdtempSync(join(tmpdir(), "lf-kube-sa-"));
    writeFileSync(join(dir, "ca.crt"), cluster.caPem);
    writeFileSync(join(dir, "token"), `${await token("first")}\n`);
    const url = new URL(cluster.server);
    const pod = new KubeClient(
      inClusterConfig(
        { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port },
        dir,
      ),
    );
    const whoami = async () => {
      const r = (await pod.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
      })) as { status: { userInfo: { username: string } } };
      return r.status.userInfo.username;
    };
    try {
      assert.equal(await whoami(), `system:serviceaccount:${ns}:first`);
      writeFileSync(join(dir, "token"), await token("second"));
      assert.equal(await whoami(), `system:serviceaccount:${ns}:second`);
      // Without RBAC the service account may not read configmaps: the server's 403, mapped.
      await assert.rejects(pod.get(paths.configMaps(ns)), (e) => {
        assert.ok(e instanceof KubeApiError);
        assert.equal(e.status, 403);
        assert.equal(e.reason, "Forbidden");
        return true;
      });
    } finally {
      pod.close();
    }
  });

  test("list reads every page; an informer follows adds, updates and deletes", async () => {
    for (let i = 0; i < 3; i++)
      await kube.create(
        paths.configMaps(ns),
        configMap(`listed-${i}`, { i: String(i) }, { app: "listed" }),
      );
    const listed = await kube.list(paths.configMaps(ns), "app=listed");
    assert.deepEqual(listed.items.map((o) => (o as ConfigMap).metadata.name).sort(), [
      "listed-0",
      "listed-1",
      "listed-2",
    ]);
    assert.match(listed.resourceVersion, /^\d+$/);

    const informer = kube.informer<ConfigMap>(paths.configMaps(ns), {
      labelSelector: "app=watched",
      watchTimeoutS: 5,
    });
    const seen: string[] = [];
    informer.on("add", (o) => seen.push(`add ${o.metadata.name}`));
    informer.on("update", (o) => seen.push(`update ${o.metadata.name} ${o.data?.v}`));
    informer.on("delete", (o) => seen.push(`delete ${o.metadata.name}`));
    await informer.start();
    try {
      await kube.create(paths.configMaps(ns), configMap("w", { v: "1" }, { app: "watched" }));
      await eventually("the add", async () => (informer.get("w", ns) ? true : undefined));
      assert.equal(informer.get("w", ns)?.metadata.managedFields, undefined, "trimmed");
      await kube.mergePatch(paths.configMap(ns, "w"), { data: { v: "2" } });
      await eventually("the update", async () =>
        informer.get("w", ns)?.data?.v === "2" ? true : undefined,
      );
      await kube.delete(paths.configMap(ns, "w"));
      await eventually("the delete", async () => (informer.get("w", ns) ? undefined : true));
      assert.deepEqual(seen, ["add w", "update w 2", "delete w"]);
    } finally {
      await informer.stop();
    }
  });
});
