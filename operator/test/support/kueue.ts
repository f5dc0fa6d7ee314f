// Kueue's own CRDs, for checking the chart's sample Kueue objects against the schemas a real
// Kueue installs (from the sigs.k8s.io/kueue Go module, see upstreamCrds.ts).

import { readUpstreamCrd, type UpstreamCrd } from "./upstreamCrds.ts";

/** The Kueue release the chart's samples are written for (it serves v1beta1 and v1beta2). */
export const KUEUE_VERSION = "v0.17.0";
const MODULE = "sigs.k8s.io/kueue";

/** The kinds the chart's samples use → their CRD file in config/components/crd/bases. */
export const KUEUE_SAMPLE_CRDS = {
  ResourceFlavor: "kueue.x-k8s.io_resourceflavors.yaml",
  ClusterQueue: "kueue.x-k8s.io_clusterqueues.yaml",
  LocalQueue: "kueue.x-k8s.io_localqueues.yaml",
  WorkloadPriorityClass: "kueue.x-k8s.io_workloadpriorityclasses.yaml",
} as const;

/** Kueue's CRDs of the sample kinds, as Kueue ships them. */
export function kueueCrds(): UpstreamCrd[] {
  return Object.values(KUEUE_SAMPLE_CRDS).map((file) =>
    readUpstreamCrd(MODULE, KUEUE_VERSION, `config/components/crd/bases/${file}`),
  );
}
