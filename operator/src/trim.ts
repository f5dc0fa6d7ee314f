// What the operator's caches keep of Jobs and Pods: the rest of each object is dropped
// before it enters the cache (see KubeClient.informer's `trim`).

import { trimManagedFields } from "@loraforge/kube";

/**
 * Jobs: the operator reads metadata, spec.suspend, status, and the pods' nodeSelector (which
 * Kueue writes from the admitted flavor) only.
 */
export function trimJob(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  const spec = obj.spec as
    | { suspend?: unknown; template?: { spec?: { nodeSelector?: unknown } } }
    | undefined;
  if (!spec) return;
  const nodeSelector = spec.template?.spec?.nodeSelector;
  obj.spec = {
    suspend: spec.suspend,
    ...(nodeSelector ? { template: { spec: { nodeSelector } } } : {}),
  };
}

/** Pods: the operator reads metadata and status only. */
export function trimPod(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  delete obj.spec;
}
