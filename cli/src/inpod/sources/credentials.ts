// Credentials of a source or an output, read from the Secret the operator mounts as files
// (one key per file) at LORAFORGE_{MODEL,DATASET,OUTPUT}_SECRET_DIR. Files, not environment
// variables: they never show in the pod spec, `kubectl describe` or a child's environment.
// Nothing here logs a value.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { SourceFailure } from "./failure.ts";

/** The keys a credentials Secret may hold (docs/ADMIN.md, "Credentials for sources and outputs"). */
export const CREDENTIAL_KEYS = [
  "token",
  "username",
  "password",
  "accessKeyId",
  "secretAccessKey",
  "sessionToken",
  "region",
  "endpoint",
] as const;
export type CredentialKey = (typeof CREDENTIAL_KEYS)[number];
export type Credentials = Partial<Record<CredentialKey, string>>;

/** Reads the known keys present in a mounted Secret directory; {} without one. */
export async function readCredentials(dir: string | undefined): Promise<Credentials> {
  if (!dir) return {};
  const out: Credentials = {};
  for (const key of CREDENTIAL_KEYS) {
    try {
      const value = (await readFile(join(dir, key), "utf8")).trim();
      if (value !== "") out[key] = value;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") continue;
      throw new SourceFailure(
        join(dir, key),
        `cannot read the credentials file (${code ?? (e as Error).message}): the Secret is mounted 0440 for the pod's fsGroup; keep trainer.podSecurityContext.fsGroup set`,
        "permanent",
        "credentials",
      );
    }
  }
  return out;
}
