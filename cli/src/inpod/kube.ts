// The trainer pod's only Kubernetes call: a JSON merge patch of its own LoraFineTune's
// status, authenticated with the per-run ServiceAccount token mounted in the pod. The
// token is re-read for every request (projected tokens rotate).

import { readFileSync } from "node:fs";
import { request } from "node:https";
import {
  type CheckpointStatus,
  LoraFineTuneStatusSchema,
  TRAINER_EXIT_CODES,
} from "@loraforge/crds";
import { z } from "zod";
import { CliError } from "../errors.ts";

export const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeTarget {
  server: string;
  caPem: string;
  /** A token, or a function that reads the current one. */
  token: string | (() => string);
}

/** The in-cluster API server and the pod's ServiceAccount credentials. */
export function inClusterTarget(
  env: NodeJS.ProcessEnv = process.env,
  dir = env.LORAFORGE_SA_DIR ?? SA_DIR,
): KubeTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host)
    throw new Error(
      "KUBERNETES_SERVICE_HOST is not set: `loraforge job` runs inside a Kubernetes pod",
    );
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    server,
    caPem: readFileSync(`${dir}/ca.crt`, "utf8"),
    token: () => readFileSync(`${dir}/token`, "utf8").trim(),
  };
}

/** The API server refused a status patch: a bug or a broken cluster, exit code 1. */
export class StatusPatchError extends CliError {
  override name = "StatusPatchError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message, TRAINER_EXIT_CODES.internal);
  }
}

export function statusPath(namespace: string, name: string) {
  return `/apis/loraforge.dev/v1alpha1/namespaces/${namespace}/lorafinetunes/${name}/status`;
}

/** One request to the run's status subresource; resolves with the body on 2xx. */
function statusRequest(
  target: KubeTarget,
  method: "GET" | "PATCH",
  namespace: string,
  name: string,
  body: string | undefined,
  timeoutMs: number,
): Promise<string> {
  const url = new URL(statusPath(namespace, name), target.server);
  const token = typeof target.token === "string" ? target.token : target.token();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: target.caPem,
        timeout: timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          ...(body !== undefined
            ? {
                "content-type": "application/merge-patch+json",
                "content-length": Buffer.byteLength(body),
              }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const code = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString("utf8");
          if (code >= 200 && code < 300) return resolve(text);
          let message = text;
          try {
            message = (JSON.parse(text) as { message?: string }).message ?? text;
          } catch {
            // keep the text
          }
          reject(new StatusPatchError(`${method} ${url.pathname} → ${code}: ${message}`, code));
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`${method} ${url.pathname} timed out after ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** PATCH (merge) the status subresource; resolves on 2xx, rejects otherwise. */
export async function patchStatus(
  target: KubeTarget,
  namespace: string,
  name: string,
  status: unknown,
  timeoutMs = 10_000,
): Promise<void> {
  await statusRequest(target, "PATCH", namespace, name, JSON.stringify({ status }), timeoutMs);
}

const CheckpointsSchema = z.object({
  // Only the list is read; the rest of status (strict in the API schema) is not ours to check.
  status: z.object({ checkpoints: LoraFineTuneStatusSchema.shape.checkpoints }).optional(),
});

/** The checkpoints the run's status lists now (what earlier attempts of the run reported). */
export async function readCheckpoints(
  target: KubeTarget,
  namespace: string,
  name: string,
  timeoutMs = 10_000,
): Promise<CheckpointStatus[]> {
  const text = await statusRequest(target, "GET", namespace, name, undefined, timeoutMs);
  const parsed = CheckpointsSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(
      `GET ${statusPath(namespace, name)}: field ${i?.path.join(".")}: ${i?.message}`,
    );
  }
  return parsed.data.status?.checkpoints ?? [];
}
