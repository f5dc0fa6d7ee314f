// What the operator's caches keep of Jobs and Pods: the rest of each object is dropped
// before it enters the cache (see KubeClient.informer's `trim`).

import { trimManagedFields } from "@loraforge/kube";

/** Jobs: the operator reads metadata, spec.suspend and status only. */
export function trimJob(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (spec) obj.spec = { suspend: spec.suspend };
}

/** Pods: the operator reads metadata and status only. */
export function trimPod(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  delete obj.spec;
}
