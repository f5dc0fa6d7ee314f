// The kubeconfig input: written with mode 0600 into a fresh 0700 directory under
// $RUNNER_TEMP (never the workspace), its credentials masked in the log first.

import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";

export class KubeconfigError extends Error {
  override name = "KubeconfigError";
}

const SECRET_USER_FIELDS = ["token", "password", "client-key-data", "client-certificate-data"];

const KubeconfigShape = z.object({
  apiVersion: z.string().optional(),
  kind: z.literal("Config", { error: "must say kind: Config" }).optional(),
  clusters: z
    .array(z.object({ name: z.string(), cluster: z.object({ server: z.string() }).passthrough() }))
    .min(1, "has no clusters"),
  users: z
    .array(z.object({ name: z.string(), user: z.record(z.string(), z.unknown()).nullable() }))
    .default([]),
});

/** The input may be the YAML itself or its base64 (the usual way to store it as a secret). */
export function decodeKubeconfig(input: string): string {
  const trimmed = input.trim();
  if (/^[A-Za-z0-9+/=\s]+$/.test(trimmed) && !trimmed.includes(":")) {
    return Buffer.from(trimmed.replace(/\s+/g, ""), "base64").toString("utf8");
  }
  return input;
}

/** Every credential in the kubeconfig, to mask before anything could print it. */
export function kubeconfigSecrets(text: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new KubeconfigError(`the kubeconfig input is not YAML: ${(e as Error).message}`);
  }
  const shape = KubeconfigShape.safeParse(doc);
  if (!shape.success) {
    const i = shape.error.issues[0];
    throw new KubeconfigError(
      `the kubeconfig input is not a kubeconfig: field ${i?.path.join(".") || "(root)"}: ${i?.message}`,
    );
  }
  const secrets: string[] = [];
  for (const u of shape.data.users) {
    for (const field of SECRET_USER_FIELDS) {
      const v = u.user?.[field];
      if (typeof v === "string" && v.length > 0) secrets.push(v);
    }
  }
  return secrets;
}

/** Writes the kubeconfig (mode 0600) and returns its path. */
export function writeKubeconfig(
  text: string,
  runnerTemp = process.env.RUNNER_TEMP || tmpdir(),
): string {
  const dir = mkdtempSync(join(runnerTemp, "loraforge-kube-"));
  const path = join(dir, "config");
  writeFileSync(path, text, { mode: 0o600, flag: "wx" });
  // A umask cannot widen 0600, but an odd filesystem could: make sure.
  chmodSync(path, 0o600);
  return path;
}
