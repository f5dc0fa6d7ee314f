// The trainer pod's only Kubernetes calls: read and merge-patch its own LoraFineTune's
// status, through LoraForge's one client (@loraforge/kube) with the per-run ServiceAccount
// mounted in the pod (its token is re-read at every request: projected tokens rotate).

import { type CheckpointStatus, LoraFineTuneStatusSchema } from "@loraforge/crds";
import { inClusterConfig, KubeClient, paths } from "@loraforge/kube";
import { z } from "zod";

/** Deadline of one status request: a slow API server must not hold training's reports. */
export const STATUS_REQUEST_TIMEOUT_MS = 10_000;

/** The in-cluster API server as the pod's ServiceAccount (LORAFORGE_SA_DIR in tests). */
export function inClusterKube(env: NodeJS.ProcessEnv = process.env): KubeClient {
  return new KubeClient(inClusterConfig(env), { timeoutMs: STATUS_REQUEST_TIMEOUT_MS });
}

/** PATCH (merge) the status subresource; resolves on 2xx, rejects with a KubeApiError otherwise. */
export async function patchStatus(
  kube: KubeClient,
  namespace: string,
  name: string,
  status: unknown,
): Promise<void> {
  await kube.patch(paths.lftStatus(namespace, name), { status }, "merge");
}

const CheckpointsSchema = z.object({
  // Only the list is read; the rest of status (strict in the API schema) is not ours to check.
  status: z.object({ checkpoints: LoraFineTuneStatusSchema.shape.checkpoints }).optional(),
});

/** The checkpoints the run's status lists now (what earlier attempts of the run reported). */
export async function readCheckpoints(
  kube: KubeClient,
  namespace: string,
  name: string,
): Promise<CheckpointStatus[]> {
  const path = paths.lftStatus(namespace, name);
  const parsed = CheckpointsSchema.safeParse(await kube.get(path));
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`GET ${path}: field ${i?.path.join(".")}: ${i?.message}`);
  }
  return parsed.data.status?.checkpoints ?? [];
}
