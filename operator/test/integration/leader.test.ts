// Integration: two operators share a Lease. Only the leader reconciles; the standby stays
// ready and idle. A leader that shuts down releases the Lease, and the standby takes over
// at once and reconciles what arrives next.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { silentLogger } from "../../src/log.ts";
import { Operator } from "../../src/operator.ts";
import {
  type Env,
  eventually,
  getJob,
  lftPath,
  setup,
  teardown,
  testConfig,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

async function reconciles(op: Operator): Promise<number> {
  const text = await op.metrics.registry.getSingleMetricAsString("loraforge_reconciles_total");
  return [...text.matchAll(/loraforge_reconciles_total\{[^}]*\} (\d+)/g)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}
const leading = async (op: Operator) => (await op.metrics.isLeader.get()).values[0]?.value === 1;

describe("leader election with two operators", () => {
  let env: Env;
  const ops: Operator[] = [];
  before(async () => {
    env = await setup("leader");
    for (const identity of ["op-a", "op-b"]) {
      const config = testConfig(env.ns, {
        leaderElection: {
          enabled: true,
          namespace: env.ns,
          name: "loraforge-operator",
          identity,
          leaseDurationMs: 15_000,
          renewDeadlineMs: 10_000,
          retryPeriodMs: 300,
          requestTimeoutMs: 5_000,
        },
      });
      const op = new Operator(config, silentLogger, env.cluster.kubeconfigPath);
      await op.start();
      ops.push(op);
    }
  });
  after(async () => {
    for (const op of ops) await op.stop();
    await teardown(env);
  });

  test("only the leader reconciles; the standby is ready and idle", async () => {
    await eventually("a leader", async () =>
      (await leading(ops[0] as Operator)) || (await leading(ops[1] as Operator)) ? true : undefined,
    );
    for (const name of ["one", "two", "three"])
      await env.client.create(lftPath(env.ns), manifest({ name }));
    for (const name of ["one", "two", "three"])
      await eventually(`Job of ${name}`, () => getJob(env, `${name}-train`));
    const [a, b] = ops as [Operator, Operator];
    const leader = (await leading(a)) ? a : b;
    const standby = leader === a ? b : a;
    assert.equal(await leading(standby), false);
    assert.equal(await reconciles(standby), 0, "the standby did no work");
    assert.ok((await reconciles(leader)) >= 3);
    const res = await fetch(`http://127.0.0.1:${standby.httpPort}/readyz`);
    assert.equal(res.status, 200, "a standby is ready (it serves as soon as it leads)");
  });

  test("a leader that stops releases the Lease; the standby takes over at once", async () => {
    const [a, b] = ops as [Operator, Operator];
    const leader = (await leading(a)) ? a : b;
    const standby = leader === a ? b : a;
    const stoppedAt = Date.now();
    await leader.stop();
    ops.splice(ops.indexOf(leader), 1);
    await eventually(
      "the standby to lead",
      async () => ((await leading(standby)) ? true : undefined),
      { timeoutMs: 10_000 },
    );
    // Well inside the 15 s lease: the Lease was released, not left to expire.
    assert.ok(Date.now() - stoppedAt < 10_000);
    await env.client.create(lftPath(env.ns), manifest({ name: "four" }));
    await eventually("Job of four", () => getJob(env, "four-train"));
  });
});
