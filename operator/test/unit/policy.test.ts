import assert from "node:assert/strict";
import { test } from "node:test";
import { Reason } from "@loraforge/crds";
import {
  canonicalImage,
  checkPolicy,
  DEFAULT_POLICY,
  imageAllowed,
  type Policy,
} from "../../src/policy.ts";
import { validateForCluster } from "../../src/validate.ts";
import { type FixtureOptions, lft } from "../support/fixtures.ts";

const policy: Policy = {
  allowedTolerationKeys: ["nvidia.com/gpu"],
  allowedNodeSelector: { "nvidia.com/gpu.product": ["*"], pool: ["v100", "a100"] },
  allowedImageRegistries: ["registry.internal", "ghcr.io/acme/"],
  allowPodAffinity: false,
  allowedSourceNetworks: [],
};
const check = (o: FixtureOptions, p: Policy = policy) => checkPolicy(lft(o).spec, p);
const refusal = (o: FixtureOptions, p: Policy = policy) => {
  const r = check(o, p);
  assert.equal(r.ok, false, "expected a refusal");
  return r.ok ? "" : r.message;
};

test("the default policy: GPU taint and product only, no other labels, no model images", () => {
  assert.deepEqual(DEFAULT_POLICY, {
    allowedTolerationKeys: ["nvidia.com/gpu"],
    allowedNodeSelector: { "nvidia.com/gpu.product": ["*"] },
    allowedImageRegistries: [],
    allowPodAffinity: false,
    allowedSourceNetworks: [],
  });
  assert.deepEqual(check({}, DEFAULT_POLICY), { ok: true });
});

test("tolerations: a key outside the policy, or no key at all, is refused naming both", () => {
  assert.deepEqual(
    check({ resources: { tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }] } }),
    { ok: true },
  );
  assert.match(
    refusal({
      resources: {
        tolerations: [
          { key: "nvidia.com/gpu", operator: "Exists" },
          { key: "node-role.kubernetes.io/control-plane", operator: "Exists" },
        ],
      },
    }),
    /spec\.resources\.tolerations\[1\]\.key "node-role\.kubernetes\.io\/control-plane" is not in the admin policy policy\.allowedTolerationKeys \[nvidia\.com\/gpu\]/,
  );
  // The CRD refuses this at admission; the operator checks again (a CRD from an older chart).
  const keyless = lft({});
  keyless.spec.resources.tolerations = [{ operator: "Exists" }];
  const r = checkPolicy(keyless.spec, policy);
  assert.ok(!r.ok && /tolerations\[0\] has no key and would tolerate every taint/.test(r.message));
});

test("node selector: keys and values must be listed; * allows any value of a key", () => {
  assert.deepEqual(check({ resources: { nodeSelector: { pool: "v100" } } }), { ok: true });
  assert.match(
    refusal({ resources: { nodeSelector: { pool: "cpu-highmem" } } }),
    /spec\.resources\.nodeSelector "pool: cpu-highmem" is outside the admin policy policy\.allowedNodeSelector \{nvidia\.com\/gpu\.product: \[\*\], pool: \[v100, a100\]\}/,
  );
  assert.match(
    refusal({ resources: { nodeSelector: { "kubernetes.io/hostname": "master-0" } } }),
    /nodeSelector "kubernetes\.io\/hostname: master-0"/,
  );
  assert.match(
    refusal(
      { resources: { gpuProduct: "NVIDIA-H100-80GB-HBM3" } },
      { ...policy, allowedNodeSelector: { "nvidia.com/gpu.product": ["Tesla-V100-SXM2-32GB"] } },
    ),
    /spec\.resources\.gpuProduct "NVIDIA-H100-80GB-HBM3" \(node label nvidia\.com\/gpu\.product\)/,
  );
});

test("the pool's default GPU product is held to the policy when the spec names none", () => {
  const only = {
    ...policy,
    allowedNodeSelector: { "nvidia.com/gpu.product": ["Tesla-V100-SXM2-32GB"] },
  };
  const spec = lft({ resources: { gpuProduct: undefined } }).spec;
  assert.deepEqual(checkPolicy(spec, only, "Tesla-V100-SXM2-32GB"), { ok: true });
  const r = checkPolicy(spec, only, "NVIDIA-H100-80GB-HBM3");
  assert.ok(
    !r.ok &&
      /default GPU product "NVIDIA-H100-80GB-HBM3" \(chart value trainer\.defaultGpuProduct/.test(
        r.message,
      ),
  );
  // CPU runs select no GPU product.
  const cpu = lft({
    training: { precision: "fp32" },
    resources: { gpus: 0, gpuProduct: undefined },
  });
  assert.deepEqual(checkPolicy(cpu.spec, only, "NVIDIA-H100-80GB-HBM3"), { ok: true });
});

test("affinity: required node terms stay within the allowed labels; pod affinity is off by default", () => {
  const terms = (matchExpressions: unknown[], extra: Record<string, unknown> = {}) => ({
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions, ...extra }],
      },
    },
  });
  assert.deepEqual(
    check({ resources: { affinity: terms([{ key: "pool", operator: "In", values: ["a100"] }]) } }),
    { ok: true },
  );
  assert.match(
    refusal({
      resources: { affinity: terms([{ key: "pool", operator: "NotIn", values: ["v100"] }]) },
    }),
    /nodeSelectorTerms\[0\]\.matchExpressions\[0\] \(pool NotIn \[v100\]\) is outside the admin policy policy\.allowedNodeSelector/,
  );
  assert.match(
    refusal({
      resources: {
        affinity: terms([{ key: "node-role.kubernetes.io/control-plane", operator: "Exists" }]),
      },
    }),
    /matchExpressions\[0\] \(node-role\.kubernetes\.io\/control-plane Exists/,
  );
  assert.match(
    refusal({
      resources: {
        affinity: terms([], {
          matchFields: [{ key: "metadata.name", operator: "In", values: ["master-0"] }],
        }),
      },
    }),
    /matchFields selects nodes by name/,
  );
  const podAffinity = { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [] } };
  assert.match(
    refusal({ resources: { affinity: podAffinity } }),
    /spec\.resources\.affinity\.podAffinity .*policy\.allowPodAffinity: false/,
  );
  assert.deepEqual(
    check({ resources: { affinity: podAffinity } }, { ...policy, allowPodAffinity: true }),
    {
      ok: true,
    },
  );
});

test("model images: the registry (or registry/path prefix) must be listed", () => {
  assert.equal(canonicalImage("llama:7b"), "docker.io/library/llama:7b");
  assert.equal(canonicalImage("someone/llama:7b"), "docker.io/someone/llama:7b");
  assert.equal(canonicalImage("localhost:5000/llama"), "localhost:5000/llama");
  assert.ok(
    imageAllowed("registry.internal/models/llama@sha256:ab", policy.allowedImageRegistries),
  );
  assert.ok(imageAllowed("ghcr.io/acme/llama:7b", policy.allowedImageRegistries));
  assert.ok(!imageAllowed("ghcr.io/acme-evil/llama:7b", policy.allowedImageRegistries));
  assert.ok(!imageAllowed("registry.internal.evil.com/llama", policy.allowedImageRegistries));
  const withImage = (reference: string) => {
    const l = lft({});
    l.spec.baseModel.source = { image: { reference, path: "llama-2-7b-hf" } };
    return checkPolicy(l.spec, policy);
  };
  assert.deepEqual(withImage("ghcr.io/acme/llama:7b"), { ok: true });
  const r = withImage("someone/llama:7b");
  assert.ok(
    !r.ok &&
      r.message ===
        'spec.baseModel.source.image.reference "someone/llama:7b" (docker.io/someone/llama:7b) is not from a registry in the admin policy policy.allowedImageRegistries [registry.internal, ghcr.io/acme/]',
    r.ok ? "accepted" : r.message,
  );
});

test("validation refuses a run outside the policy with reason PolicyViolation", () => {
  const v = validateForCluster(
    lft({ resources: { tolerations: [{ key: "dedicated", operator: "Exists" }] } }),
    { policy },
  );
  assert.equal(v.ok, false);
  assert.equal(v.reason, Reason.PolicyViolation);
  assert.match(v.message, /tolerations\[0\]\.key "dedicated"/);
});

test("validation refuses a run with no memory limit when the admin sets no default", () => {
  const none = validateForCluster(lft({}), { memory: { default: undefined } });
  assert.equal(none.ok, false);
  assert.equal(none.reason, Reason.InvalidSpec);
  assert.match(none.message, /spec\.resources\.memory is required.*trainer\.defaultMemory/);
  assert.equal(validateForCluster(lft({}), { memory: { default: "32Gi" } }).ok, true);
  assert.equal(
    validateForCluster(lft({ resources: { memory: "64Gi" } }), { memory: { default: undefined } })
      .ok,
    true,
  );
});
