// zod views of the Kubernetes objects the operator reads (only the fields it uses; the
// rest passes through untouched). Times may arrive as strings (raw JSON) — kept as strings.

import { z } from "zod";

const ConditionSchema = z
  .object({
    type: z.string(),
    status: z.string(),
    reason: z.string().optional(),
    message: z.string().optional(),
  })
  .passthrough();

const OwnerRefSchema = z
  .object({
    uid: z.string(),
    kind: z.string(),
    name: z.string(),
    controller: z.boolean().optional(),
  })
  .passthrough();

const MetaSchema = z
  .object({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    ownerReferences: z.array(OwnerRefSchema).optional(),
  })
  .passthrough();

export const JobSchema = z
  .object({
    metadata: MetaSchema,
    spec: z
      .object({
        suspend: z.boolean().optional(),
        template: z
          .object({
            spec: z
              .object({ nodeSelector: z.record(z.string(), z.string()).optional() })
              .passthrough()
              .optional(),
          })
          .passthrough()
          .optional(),
      })
      .passthrough()
      .optional(),
    status: z
      .object({
        active: z.number().optional(),
        ready: z.number().optional(),
        succeeded: z.number().optional(),
        failed: z.number().optional(),
        startTime: z.string().optional(),
        completionTime: z.string().optional(),
        conditions: z.array(ConditionSchema).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type Job = z.infer<typeof JobSchema>;

const ContainerStateSchema = z
  .object({
    waiting: z
      .object({ reason: z.string().optional(), message: z.string().optional() })
      .passthrough()
      .optional(),
    running: z.object({}).passthrough().optional(),
    terminated: z
      .object({
        exitCode: z.number(),
        reason: z.string().optional(),
        message: z.string().optional(),
        finishedAt: z.string().optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();

const ContainerStatusSchema = z
  .object({
    name: z.string(),
    state: ContainerStateSchema.optional(),
    lastState: ContainerStateSchema.optional(),
  })
  .passthrough();

export const PodSchema = z
  .object({
    metadata: MetaSchema,
    status: z
      .object({
        phase: z.string().optional(),
        reason: z.string().optional(),
        message: z.string().optional(),
        conditions: z.array(ConditionSchema).optional(),
        containerStatuses: z.array(ContainerStatusSchema).optional(),
        initContainerStatuses: z.array(ContainerStatusSchema).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type Pod = z.infer<typeof PodSchema>;

export function conditionOf(job: Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

export const controllerUidOf = (obj: {
  metadata: { ownerReferences?: { uid: string; controller?: boolean | undefined }[] | undefined };
}) => obj.metadata.ownerReferences?.find((o) => o.controller)?.uid;

/** Kueue's Workload (kueue.x-k8s.io/v1beta2) for a queued Job: its conditions and admission. */
export const WorkloadSchema = z
  .object({
    metadata: MetaSchema,
    spec: z.object({ priority: z.number().optional() }).passthrough().optional(),
    status: z
      .object({
        conditions: z.array(ConditionSchema).optional(),
        admission: z
          .object({
            clusterQueue: z.string().optional(),
            podSetAssignments: z
              .array(
                z.object({ flavors: z.record(z.string(), z.string()).optional() }).passthrough(),
              )
              .optional(),
          })
          .passthrough()
          .optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type Workload = z.infer<typeof WorkloadSchema>;

export function workloadCondition(wl: Workload, type: string) {
  return wl.status?.conditions?.find((c) => c.type === type);
}
