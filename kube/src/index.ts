// @loraforge/kube: the one way LoraForge reaches the Kubernetes API.

export {
  type Informer,
  type InformerOptions,
  type Kube,
  KubeClient,
  type KubeClientOptions,
  type KubeResponse,
  type ListResult,
  type PatchType,
  type PropagationPolicy,
  trimManagedFields,
} from "./client.ts";
export {
  type Connection,
  connectionConfig,
  inClusterConfig,
  KubeConfigError,
  loadKubeConfig,
  readTokenFile,
  SA_DIR,
} from "./config.ts";
export {
  isAlreadyExists,
  isConflict,
  isForbidden,
  isNotFound,
  isPermanentRejection,
  KubeApiError,
  messageOf,
} from "./errors.ts";
export { LFT_API, paths } from "./paths.ts";
