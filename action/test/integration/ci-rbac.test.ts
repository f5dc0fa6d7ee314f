// examples/ci-rbac.yaml on a real API server: the CI ServiceAccount it creates can do what
// the action does (src/k8s.ts's RunStore, driven through a kubeconfig made as the file's
// comment says: a TokenRequest, the server and its CA) and nothing more (access reviews
// asked with that token, and the rules the server reports for it).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { API_VERSION, KIND, type LoraFineTune, parseLoraFineTune } from "@loraforge/crds";
import { KubeClient } from "@loraforge/test-k8s";
import { z } from "zod";
import { connectKube, kubeRunStore } from "../../src/k8s.ts";
import { ciRbacObjects, setUpCiAccount } from "../support/ciAccount.ts";
import { type ActionCluster, actionCluster } from "../support/cluster.ts";

const run = (name: string, namespace: string): LoraFineTune =>
  parseLoraFineTune({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace, labels: { "loraforge.dev/pull-request": "7" } },
    spec: {
      baseModel: { source: { pvc: { claimName: "models", path: "llama-2-7b-hf" } } },
      dataset: { source: { pvc: { claimName: "datasets", path: "alpaca/cleaned.json" } } },
      output: { pvc: { claimName: "runs", path: name } },
    },
  });

describe("examples/ci-rbac.yaml: the action's account can do exactly what the action does", () => {
  let k: ActionCluster;
  let ci: KubeClient;
  let dir: string;
  let kubeconfigPath: string;

  before(async () => {
    k = await actionCluster();
    ciRbacObjects(k.namespace, (o) =>
      assert.equal(o.metadata.namespace, "ml-ci", `${o.kind}: the example's namespace`),
    );
    const account = await setUpCiAccount(k.client, k.cluster, k.namespace, "loraforge-tests");
    const connection = account.connection;
    ci = KubeClient.connect(connection);
    dir = mkdtempSync(join(tmpdir(), "loraforge-ci-rbac-"));
    kubeconfigPath = join(dir, "config");
    writeFileSync(kubeconfigPath, account.kubeconfig, { mode: 0o600 });
  });
  after(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await k?.stop();
  });

  test("the action's RunStore works with its kubeconfig: create, get, list, delete", async () => {
    // RBAC is evaluated per request; a fresh RoleBinding can take a moment to be seen.
    const store = kubeRunStore(connectKube(kubeconfigPath), k.namespace);
    const name = "pr7-abc1234";
    let created: string | undefined;
    for (let i = 0; i < 50 && created === undefined; i++) {
      try {
        created = await store.create(run(name, k.namespace));
      } catch (e) {
        if (i === 49) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(created, "created");
    assert.equal(await store.create(run(name, k.namespace)), "exists");
    assert.equal((await store.get(name))?.name, name);
    assert.deepEqual(
      (await store.list("loraforge.dev/pull-request=7")).map((r) => r.name),
      [name],
    );
    assert.equal(await store.delete(name), true);
  });

  const review = async (attributes: Record<string, string>) => {
    const body = z.object({ status: z.object({ allowed: z.boolean() }) }).parse(
      await ci.create("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: attributes },
      }),
    );
    return body.status.allowed;
  };

  test("SelfSubjectAccessReview: allowed only the four verbs on lorafinetunes in its namespace", async () => {
    const lft = { group: "loraforge.dev", resource: "lorafinetunes", namespace: k.namespace };
    for (const verb of ["create", "get", "list", "delete"]) {
      assert.equal(await review({ ...lft, verb }), true, `${verb} lorafinetunes`);
    }
    const denied: [string, Record<string, string>][] = [
      ...["update", "patch", "watch", "deletecollection"].map(
        (verb) => [`${verb} lorafinetunes`, { ...lft, verb }] as [string, Record<string, string>],
      ),
      ["patch lorafinetunes/status", { ...lft, verb: "patch", subresource: "status" }],
      ["create lorafinetunes elsewhere", { ...lft, verb: "create", namespace: "default" }],
      ["list lorafinetunes cluster-wide", { ...lft, verb: "list", namespace: "" }],
      ["get jobs", { group: "batch", resource: "jobs", verb: "get", namespace: k.namespace }],
      ["get pods", { group: "", resource: "pods", verb: "get", namespace: k.namespace }],
      [
        "get pods/log",
        { group: "", resource: "pods", subresource: "log", verb: "get", namespace: k.namespace },
      ],
      ["list secrets", { group: "", resource: "secrets", verb: "list", namespace: k.namespace }],
      [
        "create rolebindings",
        {
          group: "rbac.authorization.k8s.io",
          resource: "rolebindings",
          verb: "create",
          namespace: k.namespace,
        },
      ],
    ];
    for (const [what, attributes] of denied) {
      assert.equal(await review(attributes), false, `${what} must be denied`);
    }
  });

  test("SelfSubjectRulesReview: its only rule beyond the defaults is that one", async () => {
    const body = z
      .object({
        status: z.object({
          resourceRules: z.array(
            z.object({
              verbs: z.array(z.string()),
              apiGroups: z.array(z.string()).optional(),
              resources: z.array(z.string()).optional(),
            }),
          ),
        }),
      })
      .parse(
        await ci.create("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectRulesReview",
          spec: { namespace: k.namespace },
        }),
      );
    // Every authenticated user may create self-reviews (system:basic-user); nothing else
    // but the Role's rule may appear.
    const selfReviews = ["authorization.k8s.io", "authentication.k8s.io"];
    const own = body.status.resourceRules.filter(
      (r) => !(r.apiGroups ?? []).every((g) => selfReviews.includes(g)),
    );
    assert.deepEqual(
      own.map((r) => ({
        apiGroups: r.apiGroups,
        resources: r.resources,
        verbs: [...r.verbs].sort(),
      })),
      [
        {
          apiGroups: ["loraforge.dev"],
          resources: ["lorafinetunes"],
          verbs: ["create", "delete", "get", "list"],
        },
      ],
    );
  });
});
