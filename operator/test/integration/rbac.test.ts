// Integration: the per-run ServiceAccount's real token (TokenRequest API) may get and
// patch its own LoraFineTune's status and nothing else.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeClient } from "@loraforge/test-k8s";
import { z } from "zod";
import type { Operator } from "../../src/operator.ts";
import {
  type Env,
  eventually,
  getJob,
  getLft,
  lftPath,
  setup,
  startOperator,
  teardown,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

export async function tokenFor(
  env: Env,
  serviceAccount: string,
  namespace = env.ns,
): Promise<string> {
  const body = z.object({ status: z.object({ token: z.string().min(20) }) }).parse(
    await env.client.create(
      `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 600 },
      },
    ),
  );
  return body.status.token;
}

describe("per-run ServiceAccount RBAC against a real API server", () => {
  let env: Env;
  let op: Operator;
  let asRunA: KubeClient;
  before(async () => {
    env = await setup("rbac");
    op = await startOperator(env);
    for (const name of ["run-a", "run-b"])
      await env.client.create(lftPath(env.ns, ""), manifest({ name }));
    await eventually("both Jobs", async () =>
      (await getJob(env, "run-a-train")) && (await getJob(env, "run-b-train")) ? true : undefined,
    );
    const token = await tokenFor(env, "run-a-trainer");
    asRunA = KubeClient.connect({ server: env.cluster.server, caPem: env.cluster.caPem, token });
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  test("the token is the run's ServiceAccount (not an admin)", async () => {
    const review = z
      .object({ status: z.object({ userInfo: z.object({ username: z.string() }) }) })
      .parse(
        await asRunA.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
          apiVersion: "authentication.k8s.io/v1",
          kind: "SelfSubjectReview",
        }),
      );
    assert.equal(review.status.userInfo.username, `system:serviceaccount:${env.ns}:run-a-trainer`);
  });

  test("it can get and patch its own status", async () => {
    const got = await asRunA.request("GET", `${lftPath(env.ns, "run-a")}/status`);
    assert.equal(got.status, 200);
    const r = await asRunA.request(
      "PATCH",
      `${lftPath(env.ns, "run-a")}/status`,
      { status: { progress: { step: 7, totalSteps: 70, loss: 1.25 } } },
      "application/merge-patch+json",
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const l = await getLft(env, "run-a");
    assert.equal(l.status?.progress?.step, 7);
  });

  test("it is forbidden from another run's status, the spec, and listing", async () => {
    const patch = { status: { progress: { step: 1, totalSteps: 2 } } };
    const other = await asRunA.request(
      "PATCH",
      `${lftPath(env.ns, "run-b")}/status`,
      patch,
      "application/merge-patch+json",
    );
    assert.equal(other.status, 403);
    const spec = await asRunA.request(
      "PATCH",
      lftPath(env.ns, "run-a"),
      { spec: { suspend: true } },
      "application/merge-patch+json",
    );
    assert.equal(spec.status, 403);
    assert.equal((await asRunA.request("GET", lftPath(env.ns))).status, 403);
    assert.equal(
      (await asRunA.request("GET", `/apis/batch/v1/namespaces/${env.ns}/jobs`)).status,
      403,
    );
    assert.equal((await asRunA.request("GET", `/api/v1/namespaces/${env.ns}/secrets`)).status, 403);
    assert.equal((await getLft(env, "run-b")).status?.progress, undefined);
  });
});
