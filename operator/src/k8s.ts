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
  type Watch,
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
export const isForbidden = (e: unknown) => e instanceof KubeApiError && e.status === 403;
export const isAlreadyExists = (e: unknown) =>
  e instanceof KubeApiError && e.status === 409 && e.reason === "AlreadyExists";
/**
 * The API server refused the object itself (400 BadRequest, 413, 415, 422 Invalid or an
 * admission policy's denial): sending it again cannot succeed. 401/403 (credentials, RBAC,
 * quota), 404, 408, 409 and 429 can pass with time or an admin's fix, so they are retried.
 */
export const isPermanentRejection = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError && [400, 413, 415, 422].includes(e.status);

export interface InformerOptions {
  labelSelector?: string | undefined;
  /** Drops what the operator never reads before an object enters the cache. */
  trim?: (obj: Record<string, unknown>) => void;
  /**
   * Server-side watch timeout (timeoutSeconds, jittered up to twice as long, as client-go
   * does): the API server ends each watch after it and the informer watches again from the
   * last resourceVersion. The client gives up a watch that outlives it by a fifth (at least
   * 1 s): a connection that went silent (a dropped NAT entry, a half-open socket) is
   * replaced, where without a limit it would hang, unnoticed, forever.
   */
  watchTimeoutS?: number;
}

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
  /** Ends the current watch and lists again (a resync): the cache is rebuilt from a fresh list. */
  relist(): void;
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
  workloads: (ns: string) => `/apis/kueue.x-k8s.io/v1beta2/namespaces/${ns}/workloads`,
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
  private readonly watchAgent: Agent;

  constructor(
    readonly kc: KubeConfig,
    private readonly timeoutMs = 30_000,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    // Keep-alive and a bounded pool: the operator makes many small requests.
    this.agent = new Agent({ keepAlive: true, maxSockets: 32 });
    this.watchAgent = new Agent({ keepAlive: false });
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
    };
    await this.kc.applyToHTTPSOptions(opts);
    opts.agent = url.protocol === "https:" ? this.agent : undefined;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      // A deadline for the whole exchange, not an idle timeout: a server that accepts the
      // connection and then trickles or says nothing still ends the request in time.
      const deadline = setTimeout(
        () => req.destroy(new Error(`${method} ${path} timed out after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      const fail = (e: unknown) => {
        clearTimeout(deadline);
        reject(e);
      };
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(deadline);
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", fail);
        res.on("aborted", () => fail(new Error(`${method} ${path}: response aborted`)));
      });
      req.on("error", fail);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /**
   * The same server and credentials with another limit per request (and its own
   * connections): leader election needs requests that end well inside its renew deadline.
   */
  withTimeout(timeoutMs: number): KubeClient {
    return new KubeClient(this.kc, timeoutMs);
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

  /**
   * A list+watch cache of `path` (client-node's ListWatch over our own watch request); not
   * started. `trim` drops what the operator never reads (managedFields, a Job's pod
   * template, a Pod's spec) before an object enters the cache: with a thousand runs that is
   * most of the operator's memory.
   */
  informer<T extends { metadata?: { name?: string; namespace?: string } }>(
    path: string,
    options: InformerOptions = {},
  ): Informer<T> {
    const { labelSelector, trim = trimManagedFields, watchTimeoutS = 300 } = options;
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
    let current: WatchHandle | undefined;
    const watcher = {
      watch: async (
        p: string,
        query: Record<string, string | number | boolean | undefined>,
        callback: (phase: string, obj: unknown) => void,
        done: (err: unknown) => void,
      ) => {
        current = await this.watch(
          p,
          query,
          watchTimeoutS,
          (phase, obj) => {
            if (obj && typeof obj === "object" && phase !== "ERROR")
              trim(obj as Record<string, unknown>);
            callback(phase, obj);
          },
          done,
        );
        return current;
      },
    };
    // ListWatch's generics want client-node's KubernetesObject; our objects are plain JSON.
    const lw = new ListWatch<KubernetesObject>(
      path,
      watcher as unknown as Watch,
      listFn as unknown as ListPromise<KubernetesObject>,
      false,
      labelSelector,
    );
    return Object.assign(lw, { relist: () => current?.relist() }) as unknown as Informer<T>;
  }

  /**
   * One watch request: events go to `onEvent`, and `done` is called once, with null when
   * the server ended the watch (or the client deadline passed: watch again from the last
   * resourceVersion), with a 410 when a relist was asked for, or with the error.
   */
  private async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    timeoutS: number,
    onEvent: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<WatchHandle> {
    const url = new URL(path, this.server);
    url.searchParams.set("watch", "true");
    for (const [k, v] of Object.entries(query))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const serverTimeoutS = Math.max(1, Math.floor(timeoutS * (1 + Math.random())));
    url.searchParams.set("timeoutSeconds", String(serverTimeoutS));
    url.searchParams.set("allowWatchBookmarks", "true");
    const opts: RequestOptions = { method: "GET", headers: { accept: "application/json" } };
    await this.kc.applyToHTTPSOptions(opts);
    // Own connections, not the keep-alive pool: a watch holds its socket for minutes.
    opts.agent = url.protocol === "https:" ? this.watchAgent : undefined;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;

    let finished = false;
    const stop = () => {
      finished = true;
      clearTimeout(deadline);
      req.destroy();
    };
    const finish = (err: unknown) => {
      if (finished) return;
      stop();
      done(err);
    };
    const req = send(url, opts, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          finish(
            Object.assign(
              new Error(
                `watch ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString("utf8").slice(0, 500)}`,
              ),
              { statusCode: res.statusCode },
            ),
          ),
        );
        return;
      }
      let buffered = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffered += chunk;
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (!line) continue;
          let event: { type?: unknown; object?: unknown };
          try {
            event = JSON.parse(line);
          } catch {
            continue; // not an event; the next line may be
          }
          if (typeof event.type === "string" && !finished) onEvent(event.type, event.object);
        }
      });
      res.on("end", () => finish(null));
      res.on("error", finish);
      res.on("aborted", () => finish(new Error(`watch ${path}: connection lost`)));
    });
    req.on("error", finish);
    req.end();
    const graceS = Math.max(1, Math.ceil(serverTimeoutS / 5));
    // Unref'd: the watch's socket keeps the process alive while it is open; the deadline alone
    // must not (a stopped operator's last watch would otherwise hold the process for minutes).
    const deadline = setTimeout(() => finish(null), (serverTimeoutS + graceS) * 1000);
    deadline.unref();
    return {
      abort: stop,
      relist: () => finish(Object.assign(new Error("periodic relist"), { statusCode: 410 })),
    };
  }

  close() {
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}

interface WatchHandle {
  abort(): void;
  relist(): void;
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

/**
 * Jobs: the operator reads metadata, spec.suspend, status, and the pods' nodeSelector (which
 * Kueue writes from the admitted flavor) only.
 */
export function trimJob(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  const spec = obj.spec as
    | { suspend?: unknown; template?: { spec?: { nodeSelector?: unknown } } }
    | undefined;
  if (!spec) return;
  const nodeSelector = spec.template?.spec?.nodeSelector;
  obj.spec = {
    suspend: spec.suspend,
    ...(nodeSelector ? { template: { spec: { nodeSelector } } } : {}),
  };
}

/** Pods: the operator reads metadata and status only. */
export function trimPod(obj: Record<string, unknown>) {
  trimManagedFields(obj);
  delete obj.spec;
}
