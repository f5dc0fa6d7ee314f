// Writes and reads the one-cluster, one-user kubeconfig the harness hands to tests.

import { readFileSync } from "node:fs";
import type { Connection as KubeConnection } from "@loraforge/kube";
import { parse, stringify } from "yaml";
import { z } from "zod";

/** The admin connection of a test cluster: its token is a literal, written into kubeconfigs. */
export type Connection = KubeConnection & { token: string };

export const CONTEXT_NAME = "loraforge-test";

export function renderKubeconfig(connection: Connection): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: CONTEXT_NAME,
        cluster: {
          server: connection.server,
          "certificate-authority-data": Buffer.from(connection.caPem).toString("base64"),
        },
      },
    ],
    users: [{ name: "admin", user: { token: connection.token } }],
    contexts: [{ name: CONTEXT_NAME, context: { cluster: CONTEXT_NAME, user: "admin" } }],
    "current-context": CONTEXT_NAME,
  });
}

const KubeconfigSchema = z.object({
  clusters: z
    .array(
      z.object({
        name: z.string(),
        cluster: z.object({
          server: z.url(),
          "certificate-authority-data": z.string().min(1),
        }),
      }),
    )
    .min(1),
  users: z.array(z.object({ name: z.string(), user: z.object({ token: z.string().min(1) }) })),
  contexts: z.array(
    z.object({ name: z.string(), context: z.object({ cluster: z.string(), user: z.string() }) }),
  ),
  "current-context": z.string(),
});

/** Reads a kubeconfig written by `renderKubeconfig` (token auth, embedded CA). */
export function readKubeconfig(path: string): Connection {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path}: cannot read kubeconfig: ${(error as Error).message}`);
  }
  const parsed = KubeconfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  const config = parsed.data;
  const context = config.contexts.find((c) => c.name === config["current-context"]);
  if (!context) throw new Error(`${path}: current-context "${config["current-context"]}" missing`);
  const cluster = config.clusters.find((c) => c.name === context.context.cluster);
  const user = config.users.find((u) => u.name === context.context.user);
  if (!cluster) throw new Error(`${path}: cluster "${context.context.cluster}" missing`);
  if (!user) throw new Error(`${path}: user "${context.context.user}" missing`);
  return {
    server: cluster.cluster.server,
    token: user.user.token,
    caPem: Buffer.from(cluster.cluster["certificate-authority-data"], "base64").toString("utf8"),
  };
}
