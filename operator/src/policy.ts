// The admin's placement policy (chart value `policy`, passed as LORAFORGE_POLICY): which
// taints a run may tolerate, which node labels it may select, and which registries a
// model image may come from. Without it the operator would be a confused deputy: anyone
// allowed to create a LoraFineTune could place a pod on any node (a toleration with
// `operator: Exists` and no key tolerates every taint) or make the kubelet pull any image,
// with the operator's authority. Checked before any child object is created; a run
// outside the policy fails with reason PolicyViolation, naming the field and the setting.

import type { LoraFineTuneSpec } from "@loraforge/crds";
import { z } from "zod";
import { GPU_PRODUCT_LABEL } from "./naming.ts";

/** In an allowedNodeSelector value list: any value of that label. */
export const ANY_VALUE = "*";

export const PolicySchema = z
  .object({
    allowedTolerationKeys: z.array(z.string().min(1).max(316)).default(["nvidia.com/gpu"]),
    allowedNodeSelector: z
      .record(z.string().min(1).max(316), z.array(z.string().max(63)))
      .default({ [GPU_PRODUCT_LABEL]: [ANY_VALUE] }),
    allowedImageRegistries: z.array(z.string().min(1).max(512)).default([]),
    allowPodAffinity: z.boolean().default(false),
    /** Loopback, link-local or private networks source URIs may reach (the URI checks read it). */
    allowedSourceNetworks: z.array(z.string().min(1).max(64)).default([]),
  })
  .strict();
export type Policy = z.output<typeof PolicySchema>;

/** The operator's default when the chart passes none (the chart's values.yaml says the same). */
export const DEFAULT_POLICY: Policy = PolicySchema.parse({});

export type PolicyCheck = { ok: true } | { ok: false; message: string };

const list = (xs: readonly string[]) => (xs.length ? `[${xs.join(", ")}]` : "[] (none allowed)");

/**
 * The registry host and path of an image reference as the container runtime resolves it:
 * a first segment without "." or ":" (and not "localhost") is a Docker Hub repository.
 */
export function canonicalImage(reference: string): string {
  const slash = reference.indexOf("/");
  const first = slash < 0 ? "" : reference.slice(0, slash);
  if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost"))
    return reference;
  return slash < 0 ? `docker.io/library/${reference}` : `docker.io/${reference}`;
}

/** `ghcr.io` allows every image there; `ghcr.io/acme` only images under ghcr.io/acme/. */
export function imageAllowed(reference: string, registries: readonly string[]): boolean {
  const image = canonicalImage(reference);
  return registries.some((r) => {
    const prefix = r.replace(/\/+$/, "");
    return image.startsWith(`${prefix}/`);
  });
}

function labelAllowed(policy: Policy, key: string, value: string | undefined): boolean {
  const values = policy.allowedNodeSelector[key];
  if (!values) return false;
  if (values.includes(ANY_VALUE)) return true;
  return value !== undefined && values.includes(value);
}

interface SelectorRequirement {
  key?: unknown;
  operator?: unknown;
  values?: unknown;
}

/** Node affinity terms may only narrow placement within the allowed labels. */
function checkNodeTerms(
  policy: Policy,
  terms: readonly unknown[],
  field: string,
): PolicyCheck | undefined {
  for (const [i, term] of terms.entries()) {
    const t = (term ?? {}) as { matchExpressions?: unknown; matchFields?: unknown };
    if (Array.isArray(t.matchFields) && t.matchFields.length > 0)
      return {
        ok: false,
        message: `${field}[${i}].matchFields selects nodes by name, which the admin policy does not allow (policy.allowedNodeSelector)`,
      };
    const exprs = Array.isArray(t.matchExpressions) ? t.matchExpressions : [];
    for (const [j, raw] of exprs.entries()) {
      const e = raw as SelectorRequirement;
      const at = `${field}[${i}].matchExpressions[${j}]`;
      const key = typeof e.key === "string" ? e.key : "";
      const values = Array.isArray(e.values) ? e.values.map(String) : [];
      const any = policy.allowedNodeSelector[key]?.includes(ANY_VALUE) ?? false;
      const ok =
        e.operator === "In"
          ? values.length > 0 && values.every((v) => labelAllowed(policy, key, v))
          : any; // NotIn, Exists, DoesNotExist, Gt, Lt reach values the policy did not list
      if (!ok)
        return {
          ok: false,
          message: `${at} (${key} ${String(e.operator)} ${list(values)}) is outside the admin policy policy.allowedNodeSelector ${describeSelectorPolicy(policy)}`,
        };
    }
  }
  return undefined;
}

function describeSelectorPolicy(policy: Policy): string {
  const entries = Object.entries(policy.allowedNodeSelector);
  if (entries.length === 0) return "{} (no node labels allowed)";
  return `{${entries.map(([k, v]) => `${k}: ${list(v)}`).join(", ")}}`;
}

/**
 * The first place where the spec leaves the admin's policy, or ok. `defaultGpuProduct` (the
 * chart's trainer.defaultGpuProduct) becomes a node selector too when the spec names none,
 * so it is held to the same policy (the admission policy would refuse the Job otherwise).
 */
export function checkPolicy(
  spec: LoraFineTuneSpec,
  policy: Policy,
  defaultGpuProduct?: string | undefined,
): PolicyCheck {
  const r = spec.resources;
  for (const [i, t] of (r.tolerations ?? []).entries()) {
    if (!t.key)
      return {
        ok: false,
        message: `spec.resources.tolerations[${i}] has no key and would tolerate every taint; name a key from the admin policy policy.allowedTolerationKeys ${list(policy.allowedTolerationKeys)}`,
      };
    if (!policy.allowedTolerationKeys.includes(t.key))
      return {
        ok: false,
        message: `spec.resources.tolerations[${i}].key "${t.key}" is not in the admin policy policy.allowedTolerationKeys ${list(policy.allowedTolerationKeys)}`,
      };
  }
  for (const [key, value] of Object.entries(r.nodeSelector ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    if (!labelAllowed(policy, key, value))
      return {
        ok: false,
        message: `spec.resources.nodeSelector "${key}: ${value}" is outside the admin policy policy.allowedNodeSelector ${describeSelectorPolicy(policy)}`,
      };
  }
  if (
    r.gpuProduct !== undefined &&
    r.gpus > 0 &&
    !labelAllowed(policy, GPU_PRODUCT_LABEL, r.gpuProduct)
  )
    return {
      ok: false,
      message: `spec.resources.gpuProduct "${r.gpuProduct}" (node label ${GPU_PRODUCT_LABEL}) is outside the admin policy policy.allowedNodeSelector ${describeSelectorPolicy(policy)}`,
    };
  const fromDefault =
    r.gpus > 0 && r.gpuProduct === undefined && r.nodeSelector?.[GPU_PRODUCT_LABEL] === undefined;
  if (
    fromDefault &&
    defaultGpuProduct !== undefined &&
    !labelAllowed(policy, GPU_PRODUCT_LABEL, defaultGpuProduct)
  )
    return {
      ok: false,
      message: `the default GPU product "${defaultGpuProduct}" (chart value trainer.defaultGpuProduct, node label ${GPU_PRODUCT_LABEL}) is outside the admin policy policy.allowedNodeSelector ${describeSelectorPolicy(policy)}; set spec.resources.gpuProduct or ask the admin to allow it`,
    };
  const affinity = r.affinity ?? {};
  for (const key of Object.keys(affinity).sort()) {
    if (key === "nodeAffinity") continue;
    if ((key === "podAffinity" || key === "podAntiAffinity") && policy.allowPodAffinity) continue;
    return {
      ok: false,
      message:
        key === "podAffinity" || key === "podAntiAffinity"
          ? `spec.resources.affinity.${key} places the pod relative to other pods, which the admin policy does not allow (policy.allowPodAffinity: false)`
          : `spec.resources.affinity.${key} is not a Kubernetes affinity field`,
    };
  }
  // Preferred terms only rank nodes the pod may use anyway; required terms choose them.
  const node = (affinity.nodeAffinity ?? {}) as {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: unknown };
  };
  const required = node.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  const requiredCheck = checkNodeTerms(
    policy,
    Array.isArray(required) ? required : [],
    "spec.resources.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
  );
  if (requiredCheck) return requiredCheck;

  const image = spec.baseModel.source.image;
  if (image && !imageAllowed(image.reference, policy.allowedImageRegistries))
    return {
      ok: false,
      message: `spec.baseModel.source.image.reference "${image.reference}" (${canonicalImage(image.reference)}) is not from a registry in the admin policy policy.allowedImageRegistries ${list(policy.allowedImageRegistries)}`,
    };
  return { ok: true };
}
