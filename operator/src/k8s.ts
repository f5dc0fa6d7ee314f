// The one module that talks to the Kubernetes API (through @kubernetes/client-node's
// KubeConfig for credentials and its ListWatch for informers). Everything else uses the
// `Kube` interface, so reconcile logic can be driven by tests with a real API server.

import { request as httpRequest } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import {
  KubeConfig,
  type KubernetesObject,
  type ListPromise,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import { FIELD_MANAGER } from "./naming.ts";

export interface KubeResponse {
  status: number;
  body: unknown;
}

export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string,
    /** The API server's own message (Status.message). */
    readonly serverMessage: string,
  ) {
    super(`${method} ${path} → ${status} ${reason}: ${serverMessage}`);
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.status === 409;
export const isAlreadyExists = (e: unknown) =>
  e instanceof KubeApiError && e.status === 409 && e.reason === "AlreadyExists";
/**
 * The API server refused the object itself (400 BadRequest, 413, 415, 422 Invalid or an
 * admission policy's denial): sending it again cannot succeed. 401/403 (credentials, RBAC,
 * quota), 404, 408, 409 and 429 can pass with time or an admin's fix, so they are retried.
 */
export const isPermanentRejection = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError && [400, 413, 415, 422].includes(e.status);

export interface ListResult {
  items: unknown[];
  resourceVersion: string;
}

export interface Kube {
  get(path: string): Promise<unknown | undefined>;
  list(path: string, labelSelector?: string): Promise<ListResult>;
  create(path: string, body: unknown): Promise<unknown>;
  replace(path: string, body: unknown): Promise<unknown>;
  /** Server-side apply with the operator's field manager. */
  apply(path: string, body: unknown, force?: boolean): Promise<unknown>;
  mergePatch(path: string, body: unknown): Promise<unknown>;
  delete(path: string, propagationPolicy?: "Background" | "Foreground" | "Orphan"): Promise<void>;
}

export interface Informer<T> {
  on(verb: "add" | "update" | "delete", cb: (obj: T) => void): void;
  on(verb: "error", cb: (err: unknown) => void): void;
  on(verb: "connect", cb: (err?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
  latestResourceVersion(): string;
}

/** Paths of the resources the operator uses. */
export const paths = {
  lfts: (ns?: string) =>
    ns
      ? `/apis/loraforge.dev/v1alpha1/namespaces/${ns}/lorafinetunes`
      : "/apis/loraforge.dev/v1alpha1/lorafinetunes",
  lft: (ns: string, name: string) =>
    `/apis/loraforge.dev/v1alpha1/namespaces/${ns}/lorafinetunes/${name}`,
  lftStatus: (ns: string, name: string) =>
    `/apis/loraforge.dev/v1alpha1/namespaces/${ns}/lorafinetunes/${name}/status`,
  jobs: (ns?: string) => (ns ? `/apis/batch/v1/namespaces/${ns}/jobs` : "/apis/batch/v1/jobs"),
  job: (ns: string, name: string) => `/apis/batch/v1/namespaces/${ns}/jobs/${name}`,
  pods: (ns?: string) => (ns ? `/api/v1/namespaces/${ns}/pods` : "/api/v1/pods"),
  configMaps: (ns: string) => `/api/v1/namespaces/${ns}/configmaps`,
  serviceAccounts: (ns: string) => `/api/v1/namespaces/${ns}/serviceaccounts`,
  roles: (ns: string) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
  roleBindings: (ns: string) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
  configMap: (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`,
  serviceAccount: (ns: string, name: string) => `/api/v1/namespaces/${ns}/serviceaccounts/${name}`,
  role: (ns: string, name: string) =>
    `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/${name}`,
  roleBinding: (ns: string, name: string) =>
    `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/${name}`,
  events: (ns: string) => `/api/v1/namespaces/${ns}/events`,
  lease: (ns: string, name: string) =>
    `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}`,
  leases: (ns: string) => `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`,
};

/** Loads a kubeconfig: a file path, else in-cluster, else the default locations. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export class KubeClient implements Kube {
  private readonly server: URL;
  private readonly agent: Agent;

  constructor(
    readonly kc: KubeConfig,
    private readonly timeoutMs = 30_000,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    // Keep-alive and a bounded pool: the operator makes many small requests.
    this.agent = new Agent({ keepAlive: true, maxSockets: 32 });
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<KubeResponse> {
    const url = new URL(path, this.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const opts: RequestOptions = {
      method,
      headers: {
        accept: "application/json",
        ...(payload === undefined
          ? {}
          : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
      },
      timeout: this.timeoutMs,
    };
    await this.kc.applyToHTTPSOptions(opts);
    opts.agent = url.protocol === "https:" ? this.agent : undefined;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", reject);
      });
      req.on("timeout", () =>
        req.destroy(new Error(`${method} ${path} timed out after ${this.timeoutMs} ms`)),
      );
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  private async ok(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<unknown> {
    const res = await this.request(method, path, body, contentType);
    if (res.status >= 200 && res.status < 300) return res.body;
    const b = (res.body ?? {}) as { reason?: unknown; message?: unknown };
    throw new KubeApiError(
      method,
      path,
      res.status,
      typeof b.reason === "string" ? b.reason : "",
      typeof b.message === "string" ? b.message : String(res.body),
    );
  }

  async get(path: string) {
    try {
      return await this.ok("GET", path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async list(path: string, labelSelector?: string): Promise<ListResult> {
    const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : "";
    const body = (await this.ok("GET", `${path}${q}`)) as {
      items?: unknown[];
      metadata?: { resourceVersion?: string };
    };
    return { items: body.items ?? [], resourceVersion: body.metadata?.resourceVersion ?? "" };
  }

  create(path: string, body: unknown) {
    return this.ok("POST", path, body);
  }

  replace(path: string, body: unknown) {
    return this.ok("PUT", path, body);
  }

  apply(path: string, body: unknown, force = true) {
    const q = `?fieldManager=${FIELD_MANAGER}${force ? "&force=true" : ""}`;
    return this.ok("PATCH", `${path}${q}`, body, "application/apply-patch+yaml");
  }

  mergePatch(path: string, body: unknown) {
    return this.ok(
      "PATCH",
      `${path}?fieldManager=${FIELD_MANAGER}`,
      body,
      "application/merge-patch+json",
    );
  }

  async delete(
    path: string,
    propagationPolicy: "Background" | "Foreground" | "Orphan" = "Background",
  ) {
    try {
      await this.ok("DELETE", path, { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** A list+watch cache of `path` (client-node's ListWatch); not started. */
  /**
   * A list+watch cache of `path` (client-node's ListWatch); not started. `trim` drops what
   * the operator never reads (managedFields, a Job's pod template, a Pod's spec) before an
   * object enters the cache: with a thousand runs that is most of the operator's memory.
   */
  informer<T extends { metadata?: { name?: string; namespace?: string } }>(
    path: string,
    labelSelector?: string,
    trim: (obj: Record<string, unknown>) => void = trimManagedFields,
  ): Informer<T> {
    const listFn = async () => {
      const r = await this.list(path, labelSelector);
      for (const item of r.items) trim(item as Record<string, unknown>);
      return {
        apiVersion: "v1",
        kind: "List",
        metadata: { resourceVersion: r.resourceVersion },
        items: r.items as T[],
      };
    };
    const real = new Watch(this.kc);
    const trimming = {
      config: this.kc,
      watch: (
        p: string,
        query: Record<string, string | number | boolean | undefined>,
        callback: (phase: string, obj: unknown, raw?: unknown) => void,
        done: (err: unknown) => void,
      ) =>
        real.watch(
          p,
          query,
          (phase, obj, raw) => {
            if (obj && typeof obj === "object" && phase !== "ERROR")
              trim(obj as Record<string, unknown>);
            callback(phase, obj, raw);
          },
          done,
        ),
    };
    // ListWatch's generics want client-node's KubernetesObject; our objects are plain JSON.
    return new ListWatch<KubernetesObject>(
      path,
      trimming as unknown as Watch,
      listFn as unknown as ListPromise<KubernetesObject>,
      false,
      labelSelector,
    ) as unknown as Informer<T>;
  }

  close() {
    this.agent.destroy();
  }
}

/** Drops metadata.managedFields and the last-applied annotation (never read by the operator). */
export function trimManagedFields(obj: Record<string, unknown>) {
  const meta = obj.metadata as
    | { managedFields?: unknown; annotations?: Record<string, string> }
    | undefined;
  if (!meta) return;
  delete meta.managedFields;
  if (meta.annotations) delete meta.annotations["kubectl.kubernetes.io/last-applied-configuration"];
}

/** Jobs: the operator reads metadata, spec.suspend and status only. */
export function trimJob(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (spec) obj.spec = { suspend: spec.suspend };
}

/** Pods: the operator reads metadata and status only. */
export function trimPod(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  delete obj.spec;
}
