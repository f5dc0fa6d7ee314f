// The action's LoraFineTune store: the runs of one namespace, through LoraForge's one
// Kubernetes client (@loraforge/kube). The only module of the action that imports it.

import {
  type LoraFineTune,
  type LoraFineTuneStatus,
  LoraFineTuneStatusSchema,
} from "@loraforge/crds";
import { isConflict, KubeClient, loadKubeConfig, paths } from "@loraforge/kube";
import { z } from "zod";

/** A LoraFineTune as the action reads it: metadata and status (the spec is the operator's). */
export interface RunView {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  status?: LoraFineTuneStatus;
}

export interface RunStore {
  readonly namespace: string;
  /** Creates the run; "exists" when one of that name is already there (nothing changed). */
  create(manifest: LoraFineTune): Promise<"created" | "exists">;
  get(name: string): Promise<RunView | undefined>;
  list(labelSelector: string): Promise<RunView[]>;
  /** Deletes the run (the operator's owner references take the Job and pods with it). */
  delete(name: string): Promise<boolean>;
}

const ObjectSchema = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().default(""),
    labels: z.record(z.string(), z.string()).nullish(),
    annotations: z.record(z.string(), z.string()).nullish(),
    creationTimestamp: z.union([z.string(), z.date()]).nullish(),
    deletionTimestamp: z.union([z.string(), z.date()]).nullish(),
  }),
  status: z.unknown().optional(),
});

function stamp(v: string | Date | null | undefined): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === "string" ? v : v.toISOString();
}

export function toRunView(obj: unknown, namespace: string): RunView {
  const o = ObjectSchema.safeParse(obj);
  if (!o.success) {
    throw new Error(`a LoraFineTune in ${namespace} has no readable metadata: ${o.error.message}`);
  }
  const m = o.data.metadata;
  let status: LoraFineTuneStatus | undefined;
  if (o.data.status !== undefined && o.data.status !== null) {
    const s = LoraFineTuneStatusSchema.safeParse(o.data.status);
    if (!s.success) {
      const i = s.error.issues[0];
      throw new Error(
        `LoraFineTune ${namespace}/${m.name}: status.${i?.path.join(".")}: ${i?.message}`,
      );
    }
    status = s.data;
  }
  const creationTimestamp = stamp(m.creationTimestamp);
  const deletionTimestamp = stamp(m.deletionTimestamp);
  return {
    name: m.name,
    namespace: m.namespace ?? namespace,
    uid: m.uid,
    labels: m.labels ?? {},
    annotations: m.annotations ?? {},
    ...(creationTimestamp ? { creationTimestamp } : {}),
    ...(deletionTimestamp ? { deletionTimestamp } : {}),
    ...(status ? { status } : {}),
  };
}

/**
 * A client for the kubeconfig file at `path` when given, else the default chain
 * ($KUBECONFIG, the in-cluster service account, ~/.kube/config).
 */
export function connectKube(path: string | undefined): KubeClient {
  return new KubeClient(loadKubeConfig(path));
}

export function kubeRunStore(kube: KubeClient, namespace: string): RunStore {
  return {
    namespace,
    async create(manifest) {
      try {
        await kube.create(paths.lfts(namespace), manifest);
        return "created";
      } catch (error) {
        if (isConflict(error)) return "exists";
        throw error;
      }
    },
    async get(name) {
      const obj = await kube.find(paths.lft(namespace, name));
      return obj === undefined ? undefined : toRunView(obj, namespace);
    },
    async list(labelSelector) {
      const { items } = await kube.list(paths.lfts(namespace), labelSelector);
      return items.map((item) => toRunView(item, namespace));
    },
    async delete(name) {
      return kube.delete(paths.lft(namespace, name), "Background");
    },
  };
}
