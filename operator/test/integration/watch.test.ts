// Integration: watches that go silent. Every open connection between the operator and the
// API server is frozen (through a TCP proxy: nothing arrives, nothing is closed), then a
// run is created. A watch with a server-side timeout (and a client deadline just past it)
// is replaced, and the run gets its Job; with long watches, the periodic resync (a fresh
// list of everything, every run enqueued) finds it instead.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { renderKubeconfig } from "@loraforge/test-k8s";
import type { OperatorConfig } from "../../src/config.ts";
import { createLogger, silentLogger } from "../../src/log.ts";
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
import { TcpProxy } from "../support/proxy.ts";

async function counter(op: Operator, name: string): Promise<number> {
  const text = await op.metrics.registry.getSingleMetricAsString(name);
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, "gm"))].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}

describe("silent watches are replaced; the resync catches what they missed", () => {
  let env: Env;
  let proxy: TcpProxy;
  let kubeconfig: string;
  let op: Operator | undefined;
  before(async () => {
    env = await setup("watch");
    const url = new URL(env.cluster.server);
    proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) });
    await proxy.listen();
    kubeconfig = join(mkdtempSync(join(tmpdir(), "lf-watch-")), "kubeconfig.yaml");
    writeFileSync(
      kubeconfig,
      renderKubeconfig({
        server: `https://127.0.0.1:${proxy.port}`,
        token: env.cluster.token,
        caPem: env.cluster.caPem,
      }),
    );
  });
  afterEach(async () => {
    await op?.stop();
    op = undefined;
  });
  after(async () => {
    await proxy?.down();
    await teardown(env);
  });

  async function start(over: Partial<OperatorConfig>) {
    const log = process.env.LORAFORGE_TEST_LOGS ? createLogger("debug") : silentLogger;
    op = new Operator(testConfig(env.ns, over), log, kubeconfig);
    await op.start();
    return op;
  }

  /** A run before the freeze (so the watches are open and in use), then one after it. */
  async function runAfterFreeze(name: string, timeoutMs: number) {
    await env.client.create(lftPath(env.ns), manifest({ name: `${name}-before` }));
    await eventually("the first Job", () => getJob(env, `${name}-before-train`));
    assert.ok(proxy.freeze() >= 3, "the informers' watches were open");
    await env.client.create(lftPath(env.ns), manifest({ name }));
    return eventually(
      `the Job of ${name}, created while the watches were silent`,
      () => getJob(env, `${name}-train`),
      { timeoutMs },
    );
  }

  test("a silent watch ends at its deadline and is re-established", async () => {
    await start({ watchTimeoutS: 2, resyncPeriodMs: 0 });
    const t0 = Date.now();
    assert.ok(await runAfterFreeze("rewatched", 20_000));
    // Server timeout 2-4 s, client deadline 1 s later: well inside the wait.
    assert.ok(Date.now() - t0 < 20_000);
  });

  test("with long watches, the periodic resync lists again and enqueues every run", async () => {
    const o = await start({ watchTimeoutS: 3600, resyncPeriodMs: 2000 });
    assert.ok(await runAfterFreeze("resynced", 20_000));
    assert.ok((await counter(o, "loraforge_resyncs_total")) >= 1);
  });
});
