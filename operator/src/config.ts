// The operator's settings, from environment variables (the Helm chart sets them). Parsed
// with zod so that a bad value names the variable.

import { hostname } from "node:os";
import { type Cidr, parseCidr } from "@loraforge/crds";
import { z } from "zod";
import { leaderTimingProblems } from "./leader.ts";
import { type Policy, PolicySchema } from "./policy.ts";
import {
  type ContainerSecurityContext,
  ContainerSecurityContextSchema,
  DEFAULT_TRAINER_POD_SECURITY_CONTEXT,
  DEFAULT_TRAINER_SECURITY_CONTEXT,
  type PodSecurityContext,
  PodSecurityContextSchema,
} from "./securityContext.ts";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const seconds = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, "must be a number of seconds")
    .transform(Number)
    .pipe(z.number().min(min).max(max));
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** A JSON document in a variable, then checked by `schema`. */
const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `is not JSON: ${(e as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);

const quantity = z
  .string()
  .regex(
    /^[0-9]+(\.[0-9]+)?(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/,
    "must be a Kubernetes quantity, e.g. 16Gi",
  );

const EnvSchema = z.object({
  LORAFORGE_TRAINER_IMAGE: z.string().min(1, "is required: the trainer image the Jobs run"),
  LORAFORGE_TRAINER_PULL_POLICY: z
    .enum(["Always", "IfNotPresent", "Never"])
    .default("IfNotPresent"),
  /** Empty: watch every namespace. */
  LORAFORGE_WATCH_NAMESPACE: z.string().default(""),
  LORAFORGE_LEADER_ELECT: bool.default(true),
  LORAFORGE_LEASE_NAMESPACE: z.string().default("loraforge-system"),
  LORAFORGE_LEASE_NAME: z.string().default("loraforge-operator"),
  LORAFORGE_LEASE_DURATION_S: seconds(0.1, 3600).default(15),
  LORAFORGE_RENEW_DEADLINE_S: seconds(0.1, 3600).default(10),
  LORAFORGE_RETRY_PERIOD_S: seconds(0.1, 3600).default(2),
  /** Limit of one Lease request; default: half the renew deadline. */
  LORAFORGE_LEASE_REQUEST_TIMEOUT_S: seconds(0.05, 3600).optional(),
  /** Server-side timeout of each watch (jittered up to twice); the client allows a fifth more. */
  LORAFORGE_WATCH_TIMEOUT_S: int(1, 3600).default(300),
  /** Every this many seconds: list everything again and enqueue every run. 0: never. */
  LORAFORGE_RESYNC_PERIOD_S: int(0, 86400).default(600),
  /** The pod's name (downward API, set by the chart): leader identity and Events' reportingInstance. */
  LORAFORGE_POD_NAME: z.string().optional(),
  LORAFORGE_HTTP_PORT: int(0, 65535).default(8080),
  LORAFORGE_WORKERS: int(1, 256).default(16),
  LORAFORGE_JOB_BACKOFF_LIMIT: int(0, 100).default(3),
  /** GPU product of the default pool, used for checks when a spec names none. */
  LORAFORGE_DEFAULT_GPU_PRODUCT: z.string().optional(),
  LORAFORGE_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /** The admin's placement policy as JSON (chart value `policy`; src/policy.ts). */
  LORAFORGE_POLICY: json(PolicySchema).default(PolicySchema.parse({})),
  /** securityContext of every trainer pod as JSON (chart value trainer.podSecurityContext). */
  LORAFORGE_TRAINER_POD_SECURITY_CONTEXT: json(PodSecurityContextSchema).default(
    DEFAULT_TRAINER_POD_SECURITY_CONTEXT,
  ),
  /** securityContext of the trainer container as JSON (chart value trainer.securityContext). */
  LORAFORGE_TRAINER_SECURITY_CONTEXT: json(ContainerSecurityContextSchema).default(
    DEFAULT_TRAINER_SECURITY_CONTEXT,
  ),
  /** Seconds a trainer pod gets after SIGTERM when the spec names none. */
  LORAFORGE_TERMINATION_GRACE_S: int(1, 3600).default(120),
  /** Memory limit of a trainer whose spec names none; empty: such a run is refused. */
  LORAFORGE_DEFAULT_MEMORY: quantity.optional(),
  /** sizeLimit of the trainer's /tmp emptyDir. */
  LORAFORGE_TMP_SIZE: quantity.default("8Gi"),
  /** sizeLimit of the emptyDir that holds the run directory of a URI output. */
  LORAFORGE_OUTPUT_SIZE: quantity.default("20Gi"),
  /** sizeLimit of the emptyDir that fetched sources (uri, git, image models) are written to. */
  LORAFORGE_SOURCES_SIZE: quantity.default("100Gi"),
  /**
   * TEST ONLY (chart value testing.cpuTrainerForGpuRuns): trainer pods of runs with
   * resources.gpus > 0 still request the GPUs but train on the CPU backend, and status says so.
   */
  LORAFORGE_TEST_CPU_TRAINER_FOR_GPU_RUNS: bool.default(false),
  /** Comma-separated Secret names, given to trainer pods as imagePullSecrets. */
  LORAFORGE_IMAGE_PULL_SECRETS: z
    .string()
    .regex(/^[a-z0-9][-a-z0-9.]*(,[a-z0-9][-a-z0-9.]*)*$/, "must be comma-separated Secret names")
    .transform((s) => s.split(","))
    .default([]),
  /**
   * A ConfigMap (in each run's namespace, e.g. distributed by trust-manager) whose key
   * LORAFORGE_TRAINER_CA_KEY holds extra CA certificates (PEM) the trainer trusts for https,
   * git and hf sources: an internal git server or mirror. Empty: the image's CAs only.
   */
  LORAFORGE_TRAINER_CA_CONFIGMAP: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a ConfigMap name")
    .optional(),
  LORAFORGE_TRAINER_CA_KEY: z
    .string()
    .regex(/^[-._a-zA-Z0-9]{1,253}$/, "must be a ConfigMap key")
    .default("ca.crt"),
  /**
   * Non-public networks sources may point into, comma-separated CIDRs (chart value
   * policy.allowedSourceNetworks), e.g. "198.18.0.0/15,fd00:10::/32". Empty: none.
   */
  LORAFORGE_ALLOWED_SOURCE_NETWORKS: z
    .string()
    .default("")
    .transform((v, ctx) => {
      const out: Cidr[] = [];
      for (const item of v.split(",").filter((x) => x.trim() !== "")) {
        try {
          out.push(parseCidr(item));
        } catch (e) {
          ctx.addIssue({ code: "custom", message: (e as Error).message });
        }
      }
      return out;
    }),
});

export interface OperatorConfig {
  trainerImage: string;
  trainerPullPolicy: "Always" | "IfNotPresent" | "Never";
  watchNamespace: string;
  leaderElection: {
    enabled: boolean;
    namespace: string;
    name: string;
    identity: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
    /** requestTimeoutMs < renewDeadlineMs < leaseDurationMs (see leader.ts). */
    requestTimeoutMs: number;
  };
  /** reportingInstance of Events: the operator pod's name, else the host name. */
  podName?: string;
  watchTimeoutS: number;
  resyncPeriodMs: number;
  httpPort: number;
  workers: number;
  jobBackoffLimit: number;
  defaultGpuProduct: string | undefined;
  allowedSourceNetworks: Cidr[];
  logLevel: "debug" | "info" | "warn" | "error";
  policy: Policy;
  trainer: TrainerPodSettings;
}

/** Admin settings of every trainer pod (chart values under `trainer`). */
export interface TrainerPodSettings {
  terminationGracePeriodSeconds: number;
  defaultMemory: string | undefined;
  tmpSizeLimit: string;
  outputSizeLimit: string;
  /** The sources volume (fetched uri/git sources, an image model's copy); absent: 100Gi. */
  sourcesSizeLimit?: string;
  imagePullSecrets: string[];
  /** Extra CAs for the trainer's https/git/hf fetches: a ConfigMap of the run's namespace. */
  caBundle?: { configMap: string; key: string };
  /** Absent: DEFAULT_TRAINER_POD_SECURITY_CONTEXT (securityContext.ts). */
  podSecurityContext?: PodSecurityContext;
  /** Absent: DEFAULT_TRAINER_SECURITY_CONTEXT. */
  securityContext?: ContainerSecurityContext;
  /**
   * TEST ONLY: GPU runs train on the CPU trainer (a test node that advertises nvidia.com/gpu
   * without having one). Absent or false: a GPU run needs the CUDA backend, or fails.
   */
  cpuTrainerForGpuRuns?: boolean;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function configFromEnv(env: NodeJS.ProcessEnv, fallbackIdentity: string): OperatorConfig {
  const clean = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const r = EnvSchema.safeParse(clean);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid operator configuration (environment):\n${lines.join("\n")}`);
  }
  const e = r.data;
  const renewDeadlineMs = e.LORAFORGE_RENEW_DEADLINE_S * 1000;
  const timings = {
    leaseDurationMs: e.LORAFORGE_LEASE_DURATION_S * 1000,
    renewDeadlineMs,
    retryPeriodMs: e.LORAFORGE_RETRY_PERIOD_S * 1000,
    requestTimeoutMs:
      e.LORAFORGE_LEASE_REQUEST_TIMEOUT_S === undefined
        ? renewDeadlineMs / 2
        : e.LORAFORGE_LEASE_REQUEST_TIMEOUT_S * 1000,
  };
  const problems = leaderTimingProblems(timings);
  if (e.LORAFORGE_LEADER_ELECT && problems.length > 0) {
    throw new ConfigError(
      `invalid operator configuration (environment): LORAFORGE_LEASE_REQUEST_TIMEOUT_S < LORAFORGE_RENEW_DEADLINE_S < LORAFORGE_LEASE_DURATION_S and LORAFORGE_RETRY_PERIOD_S < LORAFORGE_RENEW_DEADLINE_S must hold:\n${problems.map((p) => `  ${p}`).join("\n")}`,
    );
  }
  return {
    trainerImage: e.LORAFORGE_TRAINER_IMAGE,
    trainerPullPolicy: e.LORAFORGE_TRAINER_PULL_POLICY,
    watchNamespace: e.LORAFORGE_WATCH_NAMESPACE,
    leaderElection: {
      enabled: e.LORAFORGE_LEADER_ELECT,
      namespace: e.LORAFORGE_LEASE_NAMESPACE,
      name: e.LORAFORGE_LEASE_NAME,
      identity: e.LORAFORGE_POD_NAME ?? fallbackIdentity,
      ...timings,
    },
    podName: e.LORAFORGE_POD_NAME ?? hostname(),
    watchTimeoutS: e.LORAFORGE_WATCH_TIMEOUT_S,
    resyncPeriodMs: e.LORAFORGE_RESYNC_PERIOD_S * 1000,
    httpPort: e.LORAFORGE_HTTP_PORT,
    workers: e.LORAFORGE_WORKERS,
    jobBackoffLimit: e.LORAFORGE_JOB_BACKOFF_LIMIT,
    defaultGpuProduct: e.LORAFORGE_DEFAULT_GPU_PRODUCT,
    allowedSourceNetworks: e.LORAFORGE_ALLOWED_SOURCE_NETWORKS,
    logLevel: e.LORAFORGE_LOG_LEVEL,
    policy: e.LORAFORGE_POLICY,
    trainer: {
      terminationGracePeriodSeconds: e.LORAFORGE_TERMINATION_GRACE_S,
      defaultMemory: e.LORAFORGE_DEFAULT_MEMORY,
      tmpSizeLimit: e.LORAFORGE_TMP_SIZE,
      outputSizeLimit: e.LORAFORGE_OUTPUT_SIZE,
      sourcesSizeLimit: e.LORAFORGE_SOURCES_SIZE,
      imagePullSecrets: e.LORAFORGE_IMAGE_PULL_SECRETS,
      ...(e.LORAFORGE_TRAINER_CA_CONFIGMAP
        ? {
            caBundle: {
              configMap: e.LORAFORGE_TRAINER_CA_CONFIGMAP,
              key: e.LORAFORGE_TRAINER_CA_KEY,
            },
          }
        : {}),
      podSecurityContext: e.LORAFORGE_TRAINER_POD_SECURITY_CONTEXT,
      securityContext: e.LORAFORGE_TRAINER_SECURITY_CONTEXT,
      cpuTrainerForGpuRuns: e.LORAFORGE_TEST_CPU_TRAINER_FOR_GPU_RUNS,
    },
  };
}
