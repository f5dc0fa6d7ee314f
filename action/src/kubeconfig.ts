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

/** Fields of `users[].user` that hold a credential whatever their length. */
const SECRET_USER_FIELDS = ["token", "password", "client-key-data", "client-certificate-data"];
/** Fields holding base64 of a PEM block: its decoded lines are masked too. */
const BASE64_PEM_FIELDS = ["client-key-data", "client-certificate-data"];
/**
 * exec args/env values and auth-provider config values mix secrets with plain words
 * ("eks", "get-token", "1"). Masking hides every occurrence of a value in the whole log, so
 * a value this short would blank out digits and words everywhere while protecting nothing a
 * guess would not find: it is left alone.
 */
const MIN_MIXED_SECRET_LENGTH = 4;

const ExecSchema = z
  .object({
    args: z.array(z.string()).nullish(),
    env: z.array(z.object({ name: z.string(), value: z.string() }).passthrough()).nullish(),
  })
  .passthrough();
const AuthProviderSchema = z
  .object({ config: z.record(z.string(), z.unknown()).nullish() })
  .passthrough();

const KubeconfigShape = z.object({
  apiVersion: z.string().optional(),
  kind: z.literal("Config", { error: "must say kind: Config" }).optional(),
  clusters: z
    .array(z.object({ name: z.string(), cluster: z.object({ server: z.string() }).passthrough() }))
    .min(1, "has no clusters"),
  users: z
    .array(
      z.object({
        name: z.string(),
        user: z
          .object({ exec: ExecSchema.nullish(), "auth-provider": AuthProviderSchema.nullish() })
          .catchall(z.unknown())
          .nullable(),
      }),
    )
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

/** The lines of a base64 PEM block, decoded (a log printing the key shows these). */
function pemLines(base64: string): string[] {
  const text = Buffer.from(base64, "base64").toString("utf8");
  if (!text.includes("-----BEGIN ")) return [];
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length >= MIN_MIXED_SECRET_LENGTH && !l.startsWith("-----"));
}

/** The password of a URL with user info (`https://user:pass@proxy:3128`). */
function urlPassword(url: unknown): string[] {
  if (typeof url !== "string") return [];
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password ? [password] : [];
  } catch {
    return [];
  }
}

/**
 * Every credential in the kubeconfig, to mask before anything could print it: user tokens,
 * passwords, client keys and certificates (and their decoded PEM lines), exec plugin args and
 * env values, auth-provider config values, and passwords in server or proxy URLs.
 */
export function kubeconfigSecrets(text: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    // The parser's message quotes the offending source line, which may be a credential: keep
    // only its first line (what and where).
    const first = ((e as Error).message.split("\n")[0] ?? "").replace(/:$/, "");
    throw new KubeconfigError(`the kubeconfig input is not YAML: ${first}`);
  }
  const shape = KubeconfigShape.safeParse(doc);
  if (!shape.success) {
    const i = shape.error.issues[0];
    throw new KubeconfigError(
      `the kubeconfig input is not a kubeconfig: field ${i?.path.join(".") || "(root)"}: ${i?.message}`,
    );
  }
  const secrets = new Set<string>();
  const mixed = (v: unknown) => {
    if (typeof v === "string" && v.trim().length >= MIN_MIXED_SECRET_LENGTH) secrets.add(v);
  };
  for (const c of shape.data.clusters) {
    for (const p of [...urlPassword(c.cluster.server), ...urlPassword(c.cluster["proxy-url"])])
      secrets.add(p);
  }
  for (const u of shape.data.users) {
    const user = u.user;
    if (!user) continue;
    for (const field of SECRET_USER_FIELDS) {
      const v = user[field];
      if (typeof v === "string" && v.length > 0) secrets.add(v);
    }
    for (const field of BASE64_PEM_FIELDS) {
      const v = user[field];
      if (typeof v === "string") for (const line of pemLines(v)) secrets.add(line);
    }
    for (const a of user.exec?.args ?? []) {
      mixed(a);
      // --token=VALUE: a plugin that echoes VALUE alone is masked too.
      const eq = a.indexOf("=");
      if (a.startsWith("-") && eq > 0) mixed(a.slice(eq + 1));
    }
    for (const e of user.exec?.env ?? []) mixed(e.value);
    for (const v of Object.values(user["auth-provider"]?.config ?? {})) mixed(v);
  }
  return [...secrets];
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
