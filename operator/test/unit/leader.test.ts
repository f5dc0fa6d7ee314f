// Leader-election timing: the invariant requestTimeout < renewDeadline < leaseDuration is
// enforced where the configuration is read, and a leader whose Lease requests hang steps
// down by its renew deadline instead of waiting on the request.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { type Kube, KubeClient } from "@loraforge/kube";
import { ConfigError, configFromEnv } from "../../src/config.ts";
import { LeaderElector, leaderTimingProblems } from "../../src/leader.ts";
import { silentLogger } from "../../src/log.ts";

const env = (over: Record<string, string> = {}) => ({
  LORAFORGE_TRAINER_IMAGE: "trainer:1",
  ...over,
});

test("the default timings keep requestTimeout < renewDeadline < leaseDuration", () => {
  const le = configFromEnv(env(), "me").leaderElection;
  assert.ok(le.requestTimeoutMs < le.renewDeadlineMs, JSON.stringify(le));
  assert.ok(le.renewDeadlineMs < le.leaseDurationMs, JSON.stringify(le));
  assert.ok(le.retryPeriodMs < le.renewDeadlineMs, JSON.stringify(le));
  assert.deepEqual(leaderTimingProblems(le), []);
  // Unset, the request timeout follows the renew deadline.
  assert.equal(
    configFromEnv(env({ LORAFORGE_RENEW_DEADLINE_S: "4" }), "me").leaderElection.requestTimeoutMs,
    2000,
  );
});

test("timings that break the invariant are refused, naming the variables", () => {
  const bad: Record<string, string>[] = [
    { LORAFORGE_LEASE_REQUEST_TIMEOUT_S: "10" }, // = renew deadline
    { LORAFORGE_LEASE_REQUEST_TIMEOUT_S: "30" },
    { LORAFORGE_LEASE_DURATION_S: "3" }, // < renew deadline 10
    { LORAFORGE_RETRY_PERIOD_S: "12" },
  ];
  for (const over of bad) {
    assert.throws(
      () => configFromEnv(env(over), "me"),
      (e: unknown) =>
        e instanceof ConfigError &&
        /LORAFORGE_LEASE_REQUEST_TIMEOUT_S < LORAFORGE_RENEW_DEADLINE_S < LORAFORGE_LEASE_DURATION_S/.test(
          e.message,
        ),
      JSON.stringify(over),
    );
  }
  // Without leader election the timings do not matter.
  configFromEnv(env({ LORAFORGE_LEADER_ELECT: "false", LORAFORGE_LEASE_DURATION_S: "3" }), "me");
});

/** A Kube whose Lease requests succeed until `hang` is set, then never answer. */
function leaseApi() {
  let lease: unknown;
  const state = { hang: false, calls: 0 };
  const never = new Promise<never>(() => {});
  const kube: Kube = {
    async get() {
      throw new Error("the elector reads its Lease with find()");
    },
    async find() {
      state.calls++;
      if (state.hang) return never;
      return lease;
    },
    async create(_path, body) {
      if (state.hang) return never;
      lease = {
        ...(body as object),
        metadata: { ...(body as { metadata: object }).metadata, resourceVersion: "1" },
      };
      return lease;
    },
    async replace(_path, body) {
      if (state.hang) return never;
      lease = body;
      return lease;
    },
    list: async () => ({ items: [], resourceVersion: "1" }),
    apply: async () => ({}),
    mergePatch: async () => ({}),
    delete: async () => true,
  };
  return { kube, state };
}

test("a leader whose Lease requests hang steps down by its renew deadline", async () => {
  const { kube, state } = leaseApi();
  let startedAt = 0;
  let stoppedAt = 0;
  const renewDeadlineMs = 600;
  const elector = new LeaderElector(
    kube,
    {
      namespace: "ns",
      name: "lease",
      identity: "me",
      leaseDurationMs: 1000,
      renewDeadlineMs,
      retryPeriodMs: 100,
      requestTimeoutMs: 300,
    },
    silentLogger,
    () => {
      startedAt = Date.now();
    },
    () => {
      stoppedAt = Date.now();
    },
  );
  elector.start();
  try {
    while (!startedAt) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 250)); // a few good renews
    // On a loaded machine timers fire late: measure how late (the event loop's worst delay
    // while the leader waits) and allow that, rather than a margin that passes on an idle one.
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const hungAt = Date.now();
    state.hang = true;
    const deadline = Date.now() + 3000;
    while (!stoppedAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    lag.disable();
    const lateMs = lag.max / 1e6;
    assert.ok(stoppedAt > 0, "the leader never stepped down while its request hung");
    // Within the renew deadline of the last renew that was sent (before the hang).
    assert.ok(
      stoppedAt - hungAt <= renewDeadlineMs + 50 + lateMs,
      `stepped down after ${stoppedAt - hungAt} ms (timers up to ${lateMs.toFixed(0)} ms late)`,
    );
    assert.equal(elector.isLeader, false);
    // Well before a contender could take over (it waits a whole lease duration).
    assert.ok(stoppedAt - hungAt < 1000 + lateMs);
  } finally {
    await elector.stop().catch(() => {});
  }
});

test("an elector refuses timings that break the invariant", () => {
  const { kube } = leaseApi();
  const opts = {
    namespace: "ns",
    name: "lease",
    identity: "me",
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    requestTimeoutMs: 30_000,
  };
  assert.throws(
    () =>
      new LeaderElector(
        kube,
        opts,
        silentLogger,
        () => {},
        () => {},
      ),
    /request timeout \(30000 ms\) must be shorter than the renew deadline \(10000 ms\)/,
  );
});

test("a request that keeps trickling bytes still ends at the client's deadline", async () => {
  // The server answers with headers, then one byte every 50 ms, forever: an idle timeout
  // never fires; a deadline for the whole request does.
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    const t = setInterval(() => res.write(" "), 50);
    res.on("close", () => clearInterval(t));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const client = new KubeClient(kc).withTimeout(300);
  const t0 = Date.now();
  try {
    await assert.rejects(
      client.get("/apis/coordination.k8s.io/v1/leases"),
      /timed out after 300 ms/,
    );
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  } finally {
    client.close();
    server.closeAllConnections();
    server.close();
  }
});
