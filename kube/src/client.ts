// The one client of the Kubernetes API. Credentials come from @kubernetes/client-node's
// KubeConfig (applied to every request) and list+watch caches are its ListWatch; requests
// themselves are plain HTTPS, because LoraForge addresses everything by path (built in
// paths.ts) and needs what the generated typed APIs make awkward: server-side apply and
// merge patches of the status subresource, the raw answer (status code and Status) for
// tests, a deadline per request, and one error type.

import { request as httpRequest } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import {
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
  ListWatch,
  type Watch,
} from "@kubernetes/client-node";
import { type Connection, connectionConfig, KubeConfigError } from "./config.ts";
import { isNotFound, KubeApiError } from "./errors.ts";

export interface KubeResponse {
  status: number;
  /** Parsed JSON, or the raw text when the body is not JSON; undefined when empty. */
  body: unknown;
}

export type PatchType = "merge" | "json" | "strategic" | "apply";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

export type PropagationPolicy = "Background" | "Foreground" | "Orphan";

export interface ListResult {
  items: unknown[];
  resourceVersion: string;
}

/** What reconcile-style code needs of the API; KubeClient implements it, tests may fake it. */
export interface Kube {
  /** The object; a KubeApiError for any answer outside 2xx, 404 included. */
  get(path: string): Promise<unknown>;
  /** The object, or undefined when it does not exist (404). */
  find(path: string): Promise<unknown | undefined>;
  /** Every item (all pages) and the list's resourceVersion. */
  list(path: string, labelSelector?: string): Promise<ListResult>;
  create(path: string, body: unknown): Promise<unknown>;
  replace(path: string, body: unknown): Promise<unknown>;
  /** Server-side apply with the client's field manager. */
  apply(path: string, body: unknown, force?: boolean): Promise<unknown>;
  /** JSON merge patch, attributed to the client's field manager when it has one. */
  mergePatch(path: string, body: unknown): Promise<unknown>;
  /** Deletes; false when the object was already gone. */
  delete(path: string, propagationPolicy?: PropagationPolicy): Promise<boolean>;
}

export interface KubeClientOptions {
  /** Deadline of one request, whole exchange (default 30 s). */
  timeoutMs?: number;
  /** The field manager of apply and merge patches (e.g. "loraforge-operator"). */
  fieldManager?: string;
}

export interface InformerOptions {
  labelSelector?: string | undefined;
  /** Drops what the caller never reads before an object enters the cache. */
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

interface WatchHandle {
  abort(): void;
  relist(): void;
}

/** Items per page of `list`: bounded memory per answer on the server and here. */
const PAGE_SIZE = 500;

export class KubeClient implements Kube {
  private readonly server: URL;
  private readonly agent: Agent;
  private readonly watchAgent: Agent;
  readonly timeoutMs: number;
  readonly fieldManager: string | undefined;

  constructor(
    readonly kc: KubeConfig,
    private readonly options: KubeClientOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fieldManager = options.fieldManager;
    // Keep-alive and a bounded pool: the operator makes many small requests.
    this.agent = new Agent({ keepAlive: true, maxSockets: 32 });
    this.watchAgent = new Agent({ keepAlive: false });
  }

  /** A client for a server, its CA and a token (see connectionConfig). */
  static connect(connection: Connection, options?: KubeClientOptions): KubeClient {
    return new KubeClient(connectionConfig(connection), options);
  }

  /**
   * The same server and credentials with another limit per request (and its own
   * connections): leader election needs requests that end well inside its renew deadline.
   */
  withTimeout(timeoutMs: number): KubeClient {
    return new KubeClient(this.kc, { ...this.options, timeoutMs });
  }

  /** Sends one request; never throws on an HTTP status (see `expectOk`). */
  request(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
    timeoutMs = this.timeoutMs,
  ): Promise<KubeResponse> {
    return this.send(method, path, body, contentType, timeoutMs, "application/json");
  }

  /**
   * GET asking for another representation, e.g. the server-side Table that `kubectl get`
   * prints: `application/json;as=Table;v=v1;g=meta.k8s.io`.
   */
  async getAs(path: string, accept: string): Promise<unknown> {
    const res = await this.send("GET", path, undefined, "application/json", this.timeoutMs, accept);
    if (res.status < 200 || res.status > 299)
      throw KubeApiError.from("GET", path, res.status, res.body);
    return res.body;
  }

  /** Like `request`, but an answer outside 2xx throws a KubeApiError. */
  async expectOk(method: string, path: string, body?: unknown, contentType?: string) {
    const res = await this.request(method, path, body, contentType);
    if (res.status < 200 || res.status > 299)
      throw KubeApiError.from(method, path, res.status, res.body);
    return res.body;
  }

  get(path: string) {
    return this.expectOk("GET", path);
  }

  async find(path: string) {
    try {
      return await this.expectOk("GET", path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async list(path: string, labelSelector?: string): Promise<ListResult> {
    const items: unknown[] = [];
    let resourceVersion = "";
    let next: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (labelSelector) q.set("labelSelector", labelSelector);
      if (next) q.set("continue", next);
      const body = (await this.expectOk("GET", `${path}${path.includes("?") ? "&" : "?"}${q}`)) as {
        items?: unknown;
        metadata?: { resourceVersion?: unknown; continue?: unknown };
      };
      if (!Array.isArray(body?.items))
        throw new KubeApiError("GET", path, 200, "", "the answer is not a list (no items)", body);
      items.push(...body.items);
      // Every page of one list is the same snapshot; the first page's version names it.
      if (!next && typeof body.metadata?.resourceVersion === "string")
        resourceVersion = body.metadata.resourceVersion;
      next = typeof body.metadata?.continue === "string" ? body.metadata.continue : undefined;
    } while (next);
    return { items, resourceVersion };
  }

  create(path: string, body: unknown) {
    return this.expectOk("POST", path, body);
  }

  replace(path: string, body: unknown) {
    return this.expectOk("PUT", path, body);
  }

  /** A patch of the given type, sent as is (put `fieldManager` in the path if wanted). */
  patch(path: string, body: unknown, type: PatchType = "merge") {
    return this.expectOk("PATCH", path, body, PATCH_CONTENT_TYPES[type]);
  }

  apply(path: string, body: unknown, force = true) {
    if (!this.fieldManager)
      throw new Error(`apply ${path}: server-side apply needs the client's fieldManager`);
    const q = `?fieldManager=${encodeURIComponent(this.fieldManager)}${force ? "&force=true" : ""}`;
    return this.patch(`${path}${q}`, body, "apply");
  }

  mergePatch(path: string, body: unknown) {
    const q = this.fieldManager ? `?fieldManager=${encodeURIComponent(this.fieldManager)}` : "";
    return this.patch(`${path}${q}`, body, "merge");
  }

  /** Without a policy the server's default for the resource applies. */
  async delete(path: string, propagationPolicy?: PropagationPolicy) {
    const options = propagationPolicy
      ? { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy }
      : undefined;
    try {
      await this.expectOk("DELETE", path, options);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  private async send(
    method: string,
    path: string,
    body: unknown,
    contentType: string,
    timeoutMs: number,
    accept: string,
  ): Promise<KubeResponse> {
    const url = new URL(path, this.server);
    const payload =
      body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const opts: RequestOptions = {
      method,
      headers: {
        accept,
        ...(payload === undefined
          ? {}
          : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
      },
    };
    await this.kc.applyToHTTPSOptions(opts);
    opts.agent = url.protocol === "https:" ? this.agent : undefined;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const started = Date.now();
    try {
      return await this.exchange(send, url, opts, method, path, payload, timeoutMs);
    } catch (error) {
      // A pooled keep-alive socket the server closed while idle fails the next request with
      // ECONNRESET before any answer ("socket hang up"), or EPIPE when the close lands while
      // the body is being written (seen on the real node after a minute idle); the request
      // never reached the server, so sending it once more on a fresh socket is safe for any
      // method (Node's documented pattern: request.reusedSocket).
      const e = error as NodeJS.ErrnoException & { reusedSocket?: boolean };
      if ((e.code !== "ECONNRESET" && e.code !== "EPIPE") || !e.reusedSocket) throw error;
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) throw error;
      return this.exchange(send, url, opts, method, path, payload, left);
    }
  }

  private exchange(
    send: typeof httpsRequest | typeof httpRequest,
    url: URL,
    opts: RequestOptions,
    method: string,
    path: string,
    payload: string | undefined,
    timeoutMs: number,
  ): Promise<KubeResponse> {
    return new Promise((resolve, reject) => {
      // A deadline for the whole exchange, not an idle timeout: a server that accepts the
      // connection and then trickles or says nothing still ends the request in time.
      const deadline = setTimeout(
        () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const fail = (e: unknown) => {
        clearTimeout(deadline);
        reject(e);
      };
      let answered = false;
      const req = send(url, opts, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(deadline);
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (e.g. /readyz's "ok"): keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", fail);
        res.on("aborted", () => fail(new Error(`${method} ${path}: response aborted`)));
      });
      // before any answer, on a socket taken from the pool: the caller may resend
      req.on("error", (e) =>
        fail(Object.assign(e, { reusedSocket: req.reusedSocket && !answered })),
      );
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /**
   * A list+watch cache of `path` (client-node's ListWatch over our own watch request); not
   * started. `trim` drops what the caller never reads (managedFields by default) before an
   * object enters the cache: with a thousand runs that is most of the operator's memory.
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
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // keep the text
          }
          // ListWatch reads `statusCode` (410 Gone → list again).
          const error = KubeApiError.from("GET", `${path} (watch)`, res.statusCode ?? 0, body);
          finish(Object.assign(error, { statusCode: res.statusCode }));
        });
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

/** Drops metadata.managedFields and the last-applied annotation (never read by LoraForge). */
export function trimManagedFields(obj: Record<string, unknown>) {
  const meta = obj.metadata as
    | { managedFields?: unknown; annotations?: Record<string, string> }
    | undefined;
  if (!meta) return;
  delete meta.managedFields;
  if (meta.annotations) delete meta.annotations["kubectl.kubernetes.io/last-applied-configuration"];
}
