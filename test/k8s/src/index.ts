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
export { readKubeconfig, renderKubeconfig } from "./kubeconfig.ts";
export {
  ensureKueue,
  type KueueInstall,
  type KueueOptions,
  pinnedKueueVersion,
  type RunningKueue,
  startKueue,
} from "./kueue.ts";
