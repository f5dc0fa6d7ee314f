// The one module that talks to Kubernetes (through @kubernetes/client-node): the
// LoraFineTune resources of one namespace.

import { ApiException, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import {
  GROUP,
  type LoraFineTune,
  type LoraFineTuneStatus,
  LoraFineTuneStatusSchema,
  PLURAL,
  VERSION,
} from "@loraforge/crds";
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

export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

function stamp(v: string | Date | null | undefined): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === "string" ? v : v.toISOString();
}

export function toRunView(obj: unknown, namespace: string): RunView {
  const o = ObjectSchema.safeParse(obj);
  if (!o.success) {
    throw new KubeApiError(
      `a LoraFineTune in ${namespace} has no readable metadata: ${o.error.message}`,
    );
  }
  const m = o.data.metadata;
  let status: LoraFineTuneStatus | undefined;
  if (o.data.status !== undefined && o.data.status !== null) {
    const s = LoraFineTuneStatusSchema.safeParse(o.data.status);
    if (!s.success) {
      const i = s.error.issues[0];
      throw new KubeApiError(
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

function messageOf(body: unknown): string {
  let b = body;
  if (typeof b === "string") {
    try {
      b = JSON.parse(b);
    } catch {
      return b as string;
    }
  }
  if (b && typeof b === "object" && "message" in b && typeof b.message === "string")
    return b.message;
  return JSON.stringify(b);
}

function wrap(what: string, error: unknown): KubeApiError {
  if (error instanceof ApiException) {
    return new KubeApiError(`${what} → ${error.code}: ${messageOf(error.body)}`, error.code);
  }
  return new KubeApiError(`${what}: ${(error as Error).message ?? String(error)}`);
}

/**
 * Loads a kubeconfig: the file at `path` when given, else the default chain
 * ($KUBECONFIG, ~/.kube/config, or the in-cluster service account).
 */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (e) {
    throw new KubeApiError(
      `cannot load the kubeconfig${path ? ` ${path}` : ""}: ${(e as Error).message}`,
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeApiError(
      "no Kubernetes cluster configured: set the kubeconfig input, $KUBECONFIG, or run in a cluster",
    );
  }
  return kc;
}

export function kubeRunStore(kc: KubeConfig, namespace: string): RunStore {
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: GROUP, version: VERSION, namespace, plural: PLURAL };
  const where = (name?: string) => `${PLURAL}.${GROUP} ${namespace}${name ? `/${name}` : ""}`;
  return {
    namespace,
    async create(manifest) {
      try {
        await api.createNamespacedCustomObject({ ...base, body: manifest });
        return "created";
      } catch (error) {
        if (error instanceof ApiException && error.code === 409) return "exists";
        throw wrap(`create ${where(manifest.metadata.name)}`, error);
      }
    },
    async get(name) {
      try {
        return toRunView(await api.getNamespacedCustomObject({ ...base, name }), namespace);
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw wrap(`get ${where(name)}`, error);
      }
    },
    async list(labelSelector) {
      const items: RunView[] = [];
      let next: string | undefined;
      do {
        let page: unknown;
        try {
          page = await api.listNamespacedCustomObject({
            ...base,
            labelSelector,
            limit: 500,
            ...(next ? { _continue: next } : {}),
          });
        } catch (error) {
          throw wrap(`list ${where()} (${labelSelector})`, error);
        }
        const p = z
          .object({
            items: z.array(z.unknown()),
            metadata: z.object({ continue: z.string().optional() }).optional(),
          })
          .parse(page);
        for (const item of p.items) items.push(toRunView(item, namespace));
        next = p.metadata?.continue || undefined;
      } while (next);
      return items;
    },
    async delete(name) {
      try {
        await api.deleteNamespacedCustomObject({ ...base, name, propagationPolicy: "Background" });
        return true;
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return false;
        throw wrap(`delete ${where(name)}`, error);
      }
    },
  };
}
