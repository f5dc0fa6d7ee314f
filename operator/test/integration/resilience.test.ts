// Integration: the API server becomes unreachable (every connection cut, new ones refused
// for a while, through a TCP proxy between operator and API server). The informers report
// the error, restart themselves with backoff, and the operator catches up: a run created
// during the outage still gets its Job.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { renderKubeconfig } from "@loraforge/test-k8s";
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
import { TcpProxy } from "../support/proxy.ts";

describe("informers restart after the API server was unreachable", () => {
  let env: Env;
  let op: Operator;
  let proxy: TcpProxy;
  before(async () => {
    env = await setup("resilience");
    const url = new URL(env.cluster.server);
    proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) });
    await proxy.listen();
    const kubeconfig = join(mkdtempSync(join(tmpdir(), "lf-proxy-")), "kubeconfig.yaml");
    writeFileSync(
      kubeconfig,
      renderKubeconfig({
        server: `https://127.0.0.1:${proxy.port}`,
        token: env.cluster.token,
        caPem: env.cluster.caPem,
      }),
    );
    op = new Operator(testConfig(env.ns), silentLogger, kubeconfig);
    await op.start();
  });
  after(async () => {
    await op?.stop();
    await proxy?.down();
    await teardown(env);
  });

  test("a run created during an outage is reconciled once the API server is back", async () => {
    await env.client.create(lftPath(env.ns), manifest({ name: "before" }));
    await eventually("the first Job", () => getJob(env, "before-train"));

    const port = proxy.port;
    await proxy.down();
    await env.client.create(lftPath(env.ns), manifest({ name: "during" }));
    await new Promise((r) => setTimeout(r, 3000));
    await proxy.listen(port);

    const job = await eventually(
      "the Job of the run created during the outage",
      () => getJob(env, "during-train"),
      { timeoutMs: 60_000 },
    );
    assert.ok(job);
    const restarts = await op.metrics.registry.getSingleMetricAsString(
      "loraforge_informer_restarts_total",
    );
    const total = [
      ...restarts.matchAll(/loraforge_informer_restarts_total\{[^}]*\} (\d+)/g),
    ].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(total >= 1, `informers restarted ${total} times:\n${restarts}`);
  });
});
