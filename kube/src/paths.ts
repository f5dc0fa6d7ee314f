// API paths of the resources LoraForge reads and writes. The LoraFineTune's group, version
// and plural come from the API package, never spelled out here.

import { GROUP, PLURAL, VERSION } from "@loraforge/crds";

const seg = encodeURIComponent;
const core = (ns: string | undefined, plural: string) =>
  ns ? `/api/v1/namespaces/${seg(ns)}/${plural}` : `/api/v1/${plural}`;
const group = (gv: string, ns: string | undefined, plural: string) =>
  ns ? `/apis/${gv}/namespaces/${seg(ns)}/${plural}` : `/apis/${gv}/${plural}`;
const one = (collection: string, name: string) => `${collection}/${seg(name)}`;

/** /apis/loraforge.dev/v1alpha1 */
export const LFT_API = `/apis/${GROUP}/${VERSION}`;
const RBAC = "rbac.authorization.k8s.io/v1";
const COORDINATION = "coordination.k8s.io/v1";

export const paths = {
  /** LoraFineTunes of one namespace, or of all namespaces. */
  lfts: (ns?: string) => group(`${GROUP}/${VERSION}`, ns, PLURAL),
  lft: (ns: string, name: string) => one(paths.lfts(ns), name),
  lftStatus: (ns: string, name: string) => `${paths.lft(ns, name)}/status`,
  jobs: (ns?: string) => group("batch/v1", ns, "jobs"),
  job: (ns: string, name: string) => one(paths.jobs(ns), name),
  pods: (ns?: string) => core(ns, "pods"),
  namespaces: () => "/api/v1/namespaces",
  namespace: (name: string) => one("/api/v1/namespaces", name),
  configMaps: (ns: string) => core(ns, "configmaps"),
  configMap: (ns: string, name: string) => one(core(ns, "configmaps"), name),
  serviceAccounts: (ns: string) => core(ns, "serviceaccounts"),
  serviceAccount: (ns: string, name: string) => one(core(ns, "serviceaccounts"), name),
  roles: (ns: string) => group(RBAC, ns, "roles"),
  role: (ns: string, name: string) => one(group(RBAC, ns, "roles"), name),
  roleBindings: (ns: string) => group(RBAC, ns, "rolebindings"),
  roleBinding: (ns: string, name: string) => one(group(RBAC, ns, "rolebindings"), name),
  events: (ns: string) => core(ns, "events"),
  /** Kueue's Workloads (the operator reads them for a queued run's status). */
  workloads: (ns: string) => group("kueue.x-k8s.io/v1beta2", ns, "workloads"),
  leases: (ns: string) => group(COORDINATION, ns, "leases"),
  lease: (ns: string, name: string) => one(group(COORDINATION, ns, "leases"), name),
};
