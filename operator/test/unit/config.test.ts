import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, configFromEnv } from "../../src/config.ts";
import { DEFAULT_POLICY } from "../../src/policy.ts";
import {
  DEFAULT_TRAINER_POD_SECURITY_CONTEXT,
  DEFAULT_TRAINER_SECURITY_CONTEXT,
} from "../../src/securityContext.ts";

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
    sourcesSizeLimit: "100Gi",
    imagePullSecrets: [],
    podSecurityContext: DEFAULT_TRAINER_POD_SECURITY_CONTEXT,
    securityContext: DEFAULT_TRAINER_SECURITY_CONTEXT,
    cpuTrainerForGpuRuns: false,
  });
});

test("the test-only CPU trainer for GPU runs is off unless the chart turns it on; a typo names the variable", () => {
  assert.equal(configFromEnv(env(), "id").trainer.cpuTrainerForGpuRuns, false);
  assert.equal(
    configFromEnv(env({ LORAFORGE_TEST_CPU_TRAINER_FOR_GPU_RUNS: "true" }), "id").trainer
      .cpuTrainerForGpuRuns,
    true,
  );
  assert.throws(
    () => configFromEnv(env({ LORAFORGE_TEST_CPU_TRAINER_FOR_GPU_RUNS: "yes" }), "id"),
    (e: unknown) =>
      e instanceof ConfigError && /LORAFORGE_TEST_CPU_TRAINER_FOR_GPU_RUNS/.test(e.message),
  );
});

test("the trainer's security contexts the chart passes replace the defaults; a typo names the field", () => {
  const c = configFromEnv(
    env({
      LORAFORGE_TRAINER_POD_SECURITY_CONTEXT: JSON.stringify({
        runAsNonRoot: true,
        runAsUser: 2000,
        fsGroup: 3000,
        seccompProfile: { type: "Localhost", localhostProfile: "trainer.json" },
      }),
      LORAFORGE_TRAINER_SECURITY_CONTEXT: JSON.stringify({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: false,
        capabilities: { drop: ["ALL"], add: ["IPC_LOCK"] },
      }),
    }),
    "id",
  );
  assert.deepEqual(c.trainer.podSecurityContext, {
    runAsNonRoot: true,
    runAsUser: 2000,
    fsGroup: 3000,
    seccompProfile: { type: "Localhost", localhostProfile: "trainer.json" },
  });
  assert.deepEqual(c.trainer.securityContext?.capabilities?.add, ["IPC_LOCK"]);
  assert.equal(c.trainer.securityContext?.readOnlyRootFilesystem, false);
  const bad = (extra: Record<string, string>, pattern: RegExp) =>
    assert.throws(
      () => configFromEnv(env(extra), "id"),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  bad(
    { LORAFORGE_TRAINER_POD_SECURITY_CONTEXT: '{"runAsUsr": 1000}' },
    /LORAFORGE_TRAINER_POD_SECURITY_CONTEXT.*runAsUsr/,
  );
  bad(
    { LORAFORGE_TRAINER_POD_SECURITY_CONTEXT: '{"runAsUser": "1000"}' },
    /LORAFORGE_TRAINER_POD_SECURITY_CONTEXT\.runAsUser/,
  );
  bad(
    { LORAFORGE_TRAINER_SECURITY_CONTEXT: '{"capabilities": {"drop": "ALL"}}' },
    /LORAFORGE_TRAINER_SECURITY_CONTEXT\.capabilities\.drop/,
  );
  bad(
    { LORAFORGE_TRAINER_SECURITY_CONTEXT: "{" },
    /LORAFORGE_TRAINER_SECURITY_CONTEXT: is not JSON/,
  );
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
  assert.equal(c.trainer.caBundle, undefined);
  const withCa = configFromEnv(env({ LORAFORGE_TRAINER_CA_CONFIGMAP: "internal-ca" }), "id");
  assert.deepEqual(withCa.trainer.caBundle, { configMap: "internal-ca", key: "ca.crt" });
  assert.throws(
    () => configFromEnv(env({ LORAFORGE_TRAINER_CA_CONFIGMAP: "Internal CA" }), "id"),
    /LORAFORGE_TRAINER_CA_CONFIGMAP: must be a ConfigMap name/,
  );
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
