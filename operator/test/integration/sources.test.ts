// Integration: where sources may point. The API server refuses the metadata endpoint and
// other never-a-source hosts at admission (CEL); the operator refuses a private address
// with Failed/InvalidSpec naming the URL, unless its policy allows the network.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseCidr, Reason } from "@loraforge/crds";
import { messageOf } from "@loraforge/test-k8s";
import type { Operator } from "../../src/operator.ts";
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

describe("source URIs against a real API server", () => {
  let env: Env;
  let op: Operator;
  before(async () => {
    env = await setup("sources");
    op = await startOperator(env, { allowedSourceNetworks: [parseCidr("198.18.0.0/15")] });
  });
  after(async () => {
    await op?.stop();
    await teardown(env);
  });

  const withSource = (name: string, uri: string) =>
    manifest({ name, dataset: { source: { uri } } });

  test("the metadata endpoint is refused at admission, naming the field", async () => {
    const r = await env.client.request(
      "POST",
      lftPath(env.ns),
      withSource("metadata", "https://169.254.169.254/latest/meta-data/"),
    );
    assert.equal(r.status, 422);
    assert.match(messageOf(r.body), /spec\.dataset\.source\.uri: .*link-local/);
  });

  test("a private address outside the allowed networks → Failed InvalidSpec with the URL, no Job", async () => {
    await env.client.create(
      lftPath(env.ns),
      withSource("private", "https://10.20.30.40/alpaca.json"),
    );
    const l = await waitPhase(env, "private", "Failed");
    const v = condition(l, "Validated");
    assert.equal(v?.status, "False");
    assert.equal(v?.reason, Reason.InvalidSpec);
    assert.match(
      v?.message ?? "",
      /spec\.dataset\.source\.uri https:\/\/10\.20\.30\.40\/alpaca\.json: 10\.20\.30\.40 is in 10\.0\.0\.0\/8 .*allows only 198\.18\.0\.0\/15/,
    );
    assert.equal(l.status?.failure?.reason, Reason.InvalidSpec);
    assert.equal(await getJob(env, "private-train"), undefined);
  });

  test("an address in an allowed network runs", async () => {
    await env.client.create(
      lftPath(env.ns),
      withSource("allowed", "https://198.18.0.10:9000/alpaca.json"),
    );
    assert.ok(await eventually("the Job", () => getJob(env, "allowed-train")));
  });
});
