import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, configFromEnv } from "../src/config.ts";
import { DEFAULT_POLICY } from "../src/policy.ts";

const env = (extra: Record<string, string> = {}) => ({
  LORAFORGE_TRAINER_IMAGE: "ghcr.io/loraforge/trainer:1",
  ...extra,
});

test("defaults: the chart's policy, 120 s grace, no default memory, sized scratch volumes", () => {
  const c = configFromEnv(env(), "id");
  assert.deepEqual(c.policy, DEFAULT_POLICY);
  assert.deepEqual(c.trainer, {
    terminationGracePeriodSeconds: 120,
    defaultMemory: undefined,
    tmpSizeLimit: "8Gi",
    outputSizeLimit: "20Gi",
    imagePullSecrets: [],
  });
});

test("the policy and trainer settings the chart passes are parsed", () => {
  const c = configFromEnv(
    env({
      LORAFORGE_POLICY: JSON.stringify({
        allowedTolerationKeys: ["nvidia.com/gpu", "spot"],
        allowedNodeSelector: { pool: ["v100"] },
        allowedImageRegistries: ["registry.internal"],
        allowPodAffinity: true,
      }),
      LORAFORGE_TERMINATION_GRACE_S: "300",
      LORAFORGE_DEFAULT_MEMORY: "48Gi",
      LORAFORGE_IMAGE_PULL_SECRETS: "ghcr,quay",
    }),
    "id",
  );
  assert.deepEqual(c.policy.allowedTolerationKeys, ["nvidia.com/gpu", "spot"]);
  assert.deepEqual(c.policy.allowedNodeSelector, { pool: ["v100"] });
  assert.equal(c.trainer.terminationGracePeriodSeconds, 300);
  assert.equal(c.trainer.defaultMemory, "48Gi");
  assert.deepEqual(c.trainer.imagePullSecrets, ["ghcr", "quay"]);
});

test("a bad policy or trainer setting names the variable and the key", () => {
  const bad = (extra: Record<string, string>, pattern: RegExp) =>
    assert.throws(
      () => configFromEnv(env(extra), "id"),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  bad({ LORAFORGE_POLICY: "{not json" }, /LORAFORGE_POLICY: is not JSON/);
  bad(
    { LORAFORGE_POLICY: '{"allowedTolerationKey": []}' },
    /LORAFORGE_POLICY.*allowedTolerationKey/,
  );
  bad(
    { LORAFORGE_POLICY: '{"allowedNodeSelector": {"pool": "v100"}}' },
    /LORAFORGE_POLICY\.allowedNodeSelector\.pool/,
  );
  bad(
    { LORAFORGE_DEFAULT_MEMORY: "lots" },
    /LORAFORGE_DEFAULT_MEMORY: must be a Kubernetes quantity/,
  );
  bad({ LORAFORGE_TERMINATION_GRACE_S: "0" }, /LORAFORGE_TERMINATION_GRACE_S/);
});
