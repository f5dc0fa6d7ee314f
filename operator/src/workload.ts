// What Kueue's Workload for a queued run's Job says, in words for status: why the run waits
// (quota, a missing LocalQueue) or why it lost its admission (preemption, eviction), and
// which ResourceFlavor it was admitted to. Pure: reconcile reads the Workload, this decides.

import { Reason, type ReasonName } from "@loraforge/crds";
import { type Workload, workloadCondition } from "./objects.ts";

/** Kueue's label on a Workload naming the uid of the Job it stands for. */
export const KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid";

export interface QueuedState {
  reason: ReasonName;
  message: string;
}

/** Why a suspended, queued Job waits, from its Workload (undefined: Kueue made none yet). */
export function queuedState(
  queueName: string,
  jobName: string,
  workload: Workload | undefined,
): QueuedState {
  if (!workload) {
    return {
      reason: Reason.QueuedByKueue,
      message: `Job ${jobName} waits for Kueue to take it into LocalQueue ${queueName}`,
    };
  }
  const quota = workloadCondition(workload, "QuotaReserved");
  const evicted = workloadCondition(workload, "Evicted");
  const requeued = workloadCondition(workload, "Requeued");
  const waiting = quota?.status === "False" && quota.message ? `: ${quota.message}` : "";
  if (quota?.reason === "Inadmissible" && /LocalQueue .* doesn't exist/.test(quota.message ?? "")) {
    return {
      reason: Reason.LocalQueueNotFound,
      message: `spec.queueName: LocalQueue ${queueName} does not exist in this namespace; Kueue cannot admit the run until an admin creates it (Kueue: ${quota.message})`,
    };
  }
  // Kueue keeps Evicted=True until it admits the Workload again; Requeued tells when it is
  // back in the queue.
  if (evicted?.status === "True") {
    const back = requeued?.status === "True" ? "back in the queue" : "being requeued";
    // Right after an eviction Kueue copies its message into QuotaReserved: say it once.
    const why = quota?.message === evicted.message ? "" : waiting;
    return {
      reason: Reason.EvictedByKueue,
      message: `Kueue evicted the run (${evicted.reason ?? "Evicted"}: ${evicted.message ?? ""}); ${back} in LocalQueue ${queueName}${why}`,
    };
  }
  return {
    reason: Reason.QueuedByKueue,
    message: `waiting in LocalQueue ${queueName}${waiting || " for Kueue to admit it"}`,
  };
}

/** "ClusterQueue v100 admitted it with flavor v100-32gb (nvidia.com/gpu, cpu, memory)". */
export function admissionSummary(workload: Workload | undefined): string | undefined {
  const admission = workload?.status?.admission;
  if (!admission) return undefined;
  const flavors = new Map<string, string[]>();
  for (const podSet of admission.podSetAssignments ?? []) {
    for (const [resource, flavor] of Object.entries(podSet.flavors ?? {})) {
      flavors.set(flavor, [...(flavors.get(flavor) ?? []), resource]);
    }
  }
  const named = [...flavors].map(([flavor, resources]) => `${flavor} (${resources.join(", ")})`);
  return `Kueue admitted it to ClusterQueue ${admission.clusterQueue ?? "?"}${named.length ? ` with flavor ${named.join(", ")}` : ""}`;
}

/** The ResourceFlavor Kueue assigned for `resource` (e.g. nvidia.com/gpu), if admitted. */
export function admittedFlavor(workload: Workload | undefined, resource: string) {
  for (const podSet of workload?.status?.admission?.podSetAssignments ?? []) {
    const flavor = podSet.flavors?.[resource];
    if (flavor) return flavor;
  }
  return undefined;
}
