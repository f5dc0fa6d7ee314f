// A small REST client for the test API server: bearer token, the cluster's CA, JSON in
// and out. Tests use it to see exactly what the API server answers (status code and
// Status message), which is what the validation tests assert on.

import { request as httpsRequest } from "node:https";

export interface Connection {
  /** https://127.0.0.1:PORT */
  server: string;
  token: string;
  caPem: string;
}

export interface KubeResponse {
  status: number;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: unknown;
}

export type PatchType = "merge" | "json" | "strategic" | "apply";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

export class KubeError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly response: KubeResponse,
  ) {
    super(`${method} ${path} → ${response.status}: ${messageOf(response.body)}`);
    this.name = "KubeError";
  }
}

/** The `message` of a Kubernetes Status object, or the body as text. */
export function messageOf(body: unknown): string {
  if (body && typeof body === "object" && "message" in body && typeof body.message === "string") {
    return body.message;
  }
  return typeof body === "string" ? body : JSON.stringify(body);
}

export class KubeClient {
  constructor(readonly connection: Connection) {}

  /** Sends one request; never throws on an HTTP error status (see `expectOk`). */
  request(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
    timeoutMs = 30_000,
  ): Promise<KubeResponse> {
    return this.send(method, path, body, contentType, timeoutMs, "application/json");
  }

  /**
   * GET asking for another representation, e.g. the server-side Table that `kubectl get`
   * prints: `application/json;as=Table;v=v1;g=meta.k8s.io`.
   */
  async getAs(path: string, accept: string): Promise<unknown> {
    const response = await this.send("GET", path, undefined, "application/json", 30_000, accept);
    if (response.status < 200 || response.status > 299) throw new KubeError("GET", path, response);
    return response.body;
  }

  private send(
    method: string,
    path: string,
    body: unknown,
    contentType: string,
    timeoutMs: number,
    accept: string,
  ): Promise<KubeResponse> {
    const url = new URL(path, this.connection.server);
    const payload =
      body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method,
          ca: this.connection.caPem,
          headers: {
            authorization: `Bearer ${this.connection.token}`,
            accept,
            ...(payload === undefined
              ? {}
              : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              // not JSON (e.g. /readyz's "ok"): keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** Like `request`, but a status outside 2xx throws a KubeError carrying the Status. */
  async expectOk(method: string, path: string, body?: unknown, contentType?: string) {
    const response = await this.request(method, path, body, contentType);
    if (response.status < 200 || response.status > 299) {
      throw new KubeError(method, path, response);
    }
    return response.body;
  }

  get(path: string) {
    return this.expectOk("GET", path);
  }

  create(path: string, body: unknown) {
    return this.expectOk("POST", path, body);
  }

  replace(path: string, body: unknown) {
    return this.expectOk("PUT", path, body);
  }

  patch(path: string, body: unknown, type: PatchType = "merge") {
    return this.expectOk("PATCH", path, body, PATCH_CONTENT_TYPES[type]);
  }

  delete(path: string, options?: { propagationPolicy?: "Background" | "Foreground" | "Orphan" }) {
    return this.expectOk(
      "DELETE",
      path,
      options ? { apiVersion: "v1", kind: "DeleteOptions", ...options } : undefined,
    );
  }
}

/**
 * Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`
 * with the last error or value seen (so a failing wait says what it was waiting on).
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 250 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
