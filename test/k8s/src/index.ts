// Tests reach the cluster with LoraForge's own client (@loraforge/kube), the one the
// operator, the in-pod entrypoint and the action use.
export {
  KubeApiError,
  KubeClient,
  type KubeResponse,
  messageOf,
  type PatchType,
} from "@loraforge/kube";
export {
  binariesDir,
  ensureBinaries,
  type K8sBinaries,
  pinnedKubernetesVersion,
  reportedVersion,
} from "./binaries.ts";
export {
  type ClusterOptions,
  connectTestCluster,
  startCluster,
  type TestCluster,
} from "./cluster.ts";
export { eventually } from "./eventually.ts";
export { ensureGoTool, type GoTool, goToolDir } from "./goTool.ts";
export {
  type AdvertisedGpus,
  advertiseGpus,
  GPU_PRODUCT_LABEL,
  GPU_RESOURCE,
  nodeGpus,
} from "./gpus.ts";
export { type HostSnapshot, hostDifferences, snapshotHost } from "./host.mjs";
export { BUSYBOX_IMAGE, PAUSE_IMAGE } from "./images.ts";
export { type Connection, readKubeconfig, renderKubeconfig } from "./kubeconfig.ts";
export {
  ensureKueue,
  type KueueInstall,
  type KueueOptions,
  pinnedKueueVersion,
  type RunningKueue,
  startKueue,
} from "./kueue.ts";
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
export {
  getTable,
  renderTable,
  rowOf,
  type ServerTable,
  ServerTableSchema,
  TABLE_ACCEPT,
} from "./table.ts";
export { type S3Server, startS3Server, VERSITYGW } from "./versitygw.ts";
