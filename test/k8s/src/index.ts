export {
  binariesDir,
  ensureBinaries,
  type K8sBinaries,
  pinnedKubernetesVersion,
  reportedVersion,
} from "./binaries.ts";
export {
  type Connection,
  eventually,
  KubeClient,
  KubeError,
  type KubeResponse,
  messageOf,
  type PatchType,
} from "./client.ts";
export {
  type ClusterOptions,
  connectTestCluster,
  startCluster,
  type TestCluster,
} from "./cluster.ts";
export { type HostSnapshot, hostDifferences, snapshotHost } from "./host.mjs";
export { BUSYBOX_IMAGE, PAUSE_IMAGE } from "./images.ts";
export { readKubeconfig, renderKubeconfig } from "./kubeconfig.ts";
export {
  NODE_IP,
  NODE_NAME,
  type NodeDescription,
  POD_CIDR,
  SERVICE_CIDR,
  STORAGE_CLASS,
  type TestNode,
  VOLUME_NAMES,
} from "./node.ts";
