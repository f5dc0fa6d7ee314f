// Deterministic names and labels for everything a LoraFineTune owns. The same resource
// always maps to the same child names, so a restarted operator finds (and never
// duplicates) what an earlier one created.

import { createHash } from "node:crypto";

export const FIELD_MANAGER = "loraforge-operator";
export const MANAGED_BY = "loraforge-operator";

export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_RUN = "loraforge.dev/run";
export const KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name";
export const KUEUE_PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class";
export const GPU_PRODUCT_LABEL = "nvidia.com/gpu.product";
export const GPU_RESOURCE = "nvidia.com/gpu";
/**
 * The chart value of the test-only setting that runs GPU-requesting trainer pods on the CPU
 * trainer (a node that only advertises nvidia.com/gpu). Named in status and in the pod's env.
 */
export const CPU_TRAINER_TEST_SETTING = "testing.cpuTrainerForGpuRuns";
/** Parameter count of the base model, e.g. "7e9" or "13B" (see docs in operator/README.md). */
export const MODEL_PARAMS_ANNOTATION = "loraforge.dev/model-params";

/** Label selector of every Job and Pod the operator creates. */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

const MAX_NAME = 63;
/** Hash characters in a cut name: 24 base32 characters carry 120 bits of SHA-256. */
const HASH_CHARS = 24;

/** Lower-case RFC 4648 base32 (a-z, 2-7): all of it valid in a DNS label. */
function base32(bytes: Uint8Array, chars: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/**
 * `<run>-<suffix>` while that is at most 62 characters; otherwise exactly 63: the first
 * characters of the run name, 120 bits of SHA-256 of the whole name, and the suffix.
 * The two forms never meet (different lengths), and two cut names are equal only if
 * their hashes are, so no other run's name (chosen however) lands on this run's objects.
 * A name that does collide anyway is refused by the ownership check, never taken over.
 */
export function childName(run: string, suffix: string): string {
  const plain = `${run}-${suffix}`;
  if (plain.length < MAX_NAME) return plain;
  const hash = base32(createHash("sha256").update(run).digest(), HASH_CHARS);
  const keep = MAX_NAME - suffix.length - hash.length - 2;
  // A run name is a DNS label: its prefix starts with an alphanumeric, and "--" inside a
  // label is valid, so the prefix is kept as is and the length stays exactly 63.
  return `${run.slice(0, keep)}-${hash}-${suffix}`;
}

export const jobName = (run: string) => childName(run, "train");
export const specConfigMapName = (run: string) => childName(run, "spec");
/** ServiceAccount, Role and RoleBinding of the run share one name. */
export const runAccountName = (run: string) => childName(run, "trainer");

export function runLabels(run: string): Record<string, string> {
  return { [LABEL_NAME]: "loraforge-trainer", [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_RUN]: run };
}

/** Work-queue key of a namespaced object. */
export const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
