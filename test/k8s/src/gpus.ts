// GPUs on a node without GPUs: `nvidia.com/gpu` advertised as an extended resource, the way
// Kubernetes documents it ("Advertise Extended Resources for a Node": a PATCH of the node's
// status.capacity), plus the `nvidia.com/gpu.product` label a Kueue ResourceFlavor selects.
// The kubelet keeps an extended resource it does not manage in capacity on each status update
// and copies it into allocatable, so the scheduler places GPU-requesting pods there; no device
// plugin is involved, and nothing gives the pod a device (the trainer then runs on the CPU
// only under the operator's test-only setting testing.cpuTrainerForGpuRuns).

import type { KubeClient } from "@loraforge/kube";
import { z } from "zod";
import { eventually } from "./eventually.ts";

export const GPU_RESOURCE = "nvidia.com/gpu";
export const GPU_PRODUCT_LABEL = "nvidia.com/gpu.product";

const NodeGpus = z.object({
  metadata: z.object({ labels: z.record(z.string(), z.string()).optional() }),
  status: z.object({
    capacity: z.record(z.string(), z.string()).optional(),
    allocatable: z.record(z.string(), z.string()).optional(),
  }),
});

export interface AdvertisedGpus {
  capacity: string | undefined;
  allocatable: string | undefined;
  product: string | undefined;
}

/** What the node says about its GPUs now. */
export async function nodeGpus(client: KubeClient, node: string): Promise<AdvertisedGpus> {
  const n = NodeGpus.parse(await client.get(`/api/v1/nodes/${node}`));
  return {
    capacity: n.status.capacity?.[GPU_RESOURCE],
    allocatable: n.status.allocatable?.[GPU_RESOURCE],
    product: n.metadata.labels?.[GPU_PRODUCT_LABEL],
  };
}

/**
 * Advertises `count` GPUs of `product` on `node` and waits until the kubelet has copied them
 * into allocatable (what the scheduler reads). Returns the seconds that took.
 */
export async function advertiseGpus(
  client: KubeClient,
  node: string,
  count: number,
  product: string,
): Promise<number> {
  const started = Date.now();
  await client.mergePatch(`/api/v1/nodes/${node}`, {
    metadata: { labels: { [GPU_PRODUCT_LABEL]: product } },
  });
  await client.mergePatch(`/api/v1/nodes/${node}/status`, {
    status: { capacity: { [GPU_RESOURCE]: String(count) } },
  });
  await eventually(
    `node ${node}: allocatable ${GPU_RESOURCE} ${count} (the kubelet copies capacity over)`,
    async () => {
      const gpus = await nodeGpus(client, node);
      if (gpus.allocatable === String(count) && gpus.capacity === String(count)) return true;
      throw new Error(`node ${node} shows ${JSON.stringify(gpus)}`);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  return (Date.now() - started) / 1000;
}
