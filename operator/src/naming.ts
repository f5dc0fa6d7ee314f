// Deterministic names and labels for everything a LoraFineTune owns. The same resource
// always maps to the same child names, so a restarted operator finds (and never
// duplicates) what an earlier one created.

import { createHash } from "node:crypto";

export const FIELD_MANAGER = "loraforge-operator";
export const MANAGED_BY = "loraforge-operator";

export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_RUN = "loraforge.dev/run";
export const KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name";
export const GPU_PRODUCT_LABEL = "nvidia.com/gpu.product";
export const GPU_RESOURCE = "nvidia.com/gpu";
/** Parameter count of the base model, e.g. "7e9" or "13B" (see docs in operator/README.md). */
export const MODEL_PARAMS_ANNOTATION = "loraforge.dev/model-params";

/** Label selector of every Job and Pod the operator creates. */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

const MAX_NAME = 63;

/**
 * `<run>-<suffix>`, kept within 63 characters (a Job's name becomes a pod label value):
 * a long run name is cut and a hash of the full name keeps it unique.
 */
export function childName(run: string, suffix: string): string {
  const plain = `${run}-${suffix}`;
  if (plain.length <= MAX_NAME) return plain;
  const hash = createHash("sha256").update(run).digest("hex").slice(0, 8);
  const keep = MAX_NAME - suffix.length - hash.length - 2;
  return `${run.slice(0, keep).replace(/-+$/, "")}-${hash}-${suffix}`;
}

export const jobName = (run: string) => childName(run, "train");
export const specConfigMapName = (run: string) => childName(run, "spec");
/** ServiceAccount, Role and RoleBinding of the run share one name. */
export const runAccountName = (run: string) => childName(run, "trainer");

export function runLabels(run: string): Record<string, string> {
  return { [LABEL_NAME]: "loraforge-trainer", [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_RUN]: run };
}

/** Work-queue key of a namespaced object. */
export const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
