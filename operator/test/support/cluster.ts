// Integration-test support: the real API server (shared via LORAFORGE_TEST_KUBECONFIG, or
// a cluster of our own with the Job and garbage-collector controllers), the CRD, a
// namespace per suite, an in-process operator, and helpers that play the kubelet.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { paths } from "@loraforge/kube";
import {
  connectTestCluster,
  eventually,
  type KubeClient,
  type TestCluster,
} from "@loraforge/test-k8s";
import { parse } from "yaml";
import { z } from "zod";
import type { OperatorConfig } from "../../src/config.ts";
import { createLogger, type Logger, silentLogger } from "../../src/log.ts";
import { Operator } from "../../src/operator.ts";
import { DEFAULT_POLICY } from "../../src/policy.ts";

export { eventually };

const repo = join(import.meta.dirname, "..", "..", "..");
export const CRD_FILE = join(repo, "crds", "loraforge.dev_lorafinetunes.yaml");
const CRD_NAME = "lorafinetunes.loraforge.dev";

export interface Env {
  cluster: TestCluster;
  client: KubeClient;
  ns: string;
}

export async function installCrd(client: KubeClient) {
  const crd = parse(readFileSync(CRD_FILE, "utf8"));
  await client.patch(
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}?fieldManager=loraforge-tests&force=true`,
    crd,
    "apply",
  );
  await eventually("the CRD to be served", async () => {
    const r = await client.request("GET", `${paths.lfts()}?limit=1`);
    return r.status === 200 ? true : undefined;
  });
}

export async function setup(prefix: string): Promise<Env> {
  const cluster = await connectTestCluster({ controllerManager: true });
  if (!cluster.controllerManager)
    throw new Error("these tests need kube-controller-manager (Job and GC controllers)");
  const client = cluster.client;
  await installCrd(client);
  const ns = `${prefix}-${randomBytes(3).toString("hex")}`;
  await client.create("/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: ns },
  });
  return { cluster, client, ns };
}

export async function teardown(env: Env | undefined) {
  if (!env) return;
  await env.client.request("DELETE", `/api/v1/namespaces/${env.ns}`);
  await env.cluster.stop();
}

export function testConfig(ns: string, over: Partial<OperatorConfig> = {}): OperatorConfig {
  return {
    trainerImage: "ghcr.io/loraforge/trainer:test",
    trainerPullPolicy: "IfNotPresent",
    watchNamespace: ns,
    leaderElection: {
      enabled: false,
      namespace: ns,
      name: "loraforge-operator",
      identity: `test-${process.pid}`,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 500,
      requestTimeoutMs: 700,
    },
    watchTimeoutS: 300,
    resyncPeriodMs: 600_000,
    httpPort: 0,
    workers: 4,
    jobBackoffLimit: 2,
    defaultGpuProduct: undefined,
    allowedSourceNetworks: [],
    logLevel: "warn",
    // The chart's default policy, plus the `pool` label the placement tests select on.
    policy: {
      ...DEFAULT_POLICY,
      allowedNodeSelector: { ...DEFAULT_POLICY.allowedNodeSelector, pool: ["*"] },
    },
    trainer: {
      terminationGracePeriodSeconds: 120,
      defaultMemory: "4Gi",
      tmpSizeLimit: "8Gi",
      outputSizeLimit: "20Gi",
      imagePullSecrets: [],
    },
    ...over,
  };
}

export async function startOperator(
  env: Env,
  over: Partial<OperatorConfig> = {},
  log: Logger = process.env.LORAFORGE_TEST_LOGS ? createLogger("debug") : silentLogger,
) {
  const op = new Operator(testConfig(env.ns, over), log, env.cluster.kubeconfigPath);
  await op.start();
  return op;
}

// ── resources ──────────────────────────────────────────────────────────────────────

export const lftPath = (ns: string, name = "") => (name ? paths.lft(ns, name) : paths.lfts(ns));
export const jobPath = (ns: string, name = "") =>
  `/apis/batch/v1/namespaces/${ns}/jobs${name ? `/${name}` : ""}`;

const Cond = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string(),
  message: z.string().optional(),
  observedGeneration: z.number().optional(),
});
export const LftView = z.object({
  metadata: z
    .object({
      name: z.string(),
      uid: z.string(),
      generation: z.number(),
      resourceVersion: z.string(),
    })
    .passthrough(),
  status: z
    .object({
      phase: z.string().optional(),
      observedGeneration: z.number().optional(),
      conditions: z.array(Cond).optional(),
      jobName: z.string().optional(),
      startTime: z.string().optional(),
      completionTime: z.string().optional(),
      failure: z
        .object({ reason: z.string(), message: z.string(), exitCode: z.number().optional() })
        .optional(),
      progress: z.object({ step: z.number(), totalSteps: z.number() }).passthrough().optional(),
    })
    .passthrough()
    .optional(),
});
export type LftView = z.infer<typeof LftView>;

export async function getLft(env: Env, name: string): Promise<LftView> {
  return LftView.parse(await env.client.get(lftPath(env.ns, name)));
}

/** Polls until the resource reaches `phase` (and `check`, if given, holds). */
export function waitPhase(
  env: Env,
  name: string,
  phase: string,
  check: (l: LftView) => boolean = () => true,
  timeoutMs = 60_000,
) {
  return eventually(
    `${name} to reach phase ${phase}`,
    async () => {
      const l = await getLft(env, name);
      if (l.status?.phase !== phase || !check(l))
        throw new Error(
          `phase is ${l.status?.phase}; status ${JSON.stringify(l.status)?.slice(0, 600)}`,
        );
      return l;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

export const condition = (l: LftView, type: string) =>
  l.status?.conditions?.find((c) => c.type === type);

export const JobView = z.object({
  metadata: z
    .object({
      name: z.string(),
      uid: z.string(),
      labels: z.record(z.string(), z.string()).optional(),
      managedFields: z.array(z.object({ manager: z.string(), operation: z.string() })).optional(),
      ownerReferences: z.array(z.object({ uid: z.string(), kind: z.string() })).optional(),
    })
    .passthrough(),
  spec: z.record(z.string(), z.any()),
  status: z.record(z.string(), z.any()).optional(),
});
export type JobView = z.infer<typeof JobView>;

export async function getJob(env: Env, name: string): Promise<JobView | undefined> {
  const r = await env.client.request("GET", jobPath(env.ns, name));
  return r.status === 200 ? JobView.parse(r.body) : undefined;
}

export async function listJobs(env: Env): Promise<JobView[]> {
  const body = z.object({ items: z.array(JobView) }).parse(await env.client.get(jobPath(env.ns)));
  return body.items;
}

// ── playing the kubelet ────────────────────────────────────────────────────────────

const PodView = z.object({
  metadata: z.object({ name: z.string(), uid: z.string() }).passthrough(),
  status: z.record(z.string(), z.any()).optional(),
});

/** The Job controller's (newest) pod for `jobName`. */
export async function podOf(env: Env, jobName: string, notNamed: string[] = []) {
  return eventually(`a pod of ${jobName}`, async () => {
    const body = z
      .object({ items: z.array(PodView) })
      .parse(
        await env.client.get(
          `/api/v1/namespaces/${env.ns}/pods?labelSelector=${encodeURIComponent(`batch.kubernetes.io/job-name=${jobName}`)}`,
        ),
      );
    return body.items.find((p) => !notNamed.includes(p.metadata.name));
  });
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

function containerStatus(state: Record<string, unknown>, ready: boolean) {
  return {
    name: "trainer",
    ready,
    restartCount: 0,
    image: "ghcr.io/loraforge/trainer:test",
    imageID: "",
    state,
  };
}

export async function setPodStatus(env: Env, pod: string, status: Record<string, unknown>) {
  await env.client.patch(`/api/v1/namespaces/${env.ns}/pods/${pod}/status`, { status }, "merge");
}

export const podRunning = (env: Env, pod: string) =>
  setPodStatus(env, pod, {
    phase: "Running",
    startTime: now(),
    conditions: [{ type: "Ready", status: "True", lastTransitionTime: now() }],
    containerStatuses: [containerStatus({ running: { startedAt: now() } }, true)],
  });

export const podTerminated = (
  env: Env,
  pod: string,
  exitCode: number,
  reason = exitCode === 0 ? "Completed" : "Error",
  message?: string,
) =>
  setPodStatus(env, pod, {
    phase: exitCode === 0 ? "Succeeded" : "Failed",
    conditions: [{ type: "Ready", status: "False", lastTransitionTime: now() }],
    containerStatuses: [
      containerStatus(
        {
          terminated: {
            exitCode,
            reason,
            startedAt: now(),
            finishedAt: now(),
            ...(message ? { message } : {}),
          },
        },
        false,
      ),
    ],
  });

export const podWaiting = (env: Env, pod: string, reason: string, message: string) =>
  setPodStatus(env, pod, {
    phase: "Pending",
    containerStatuses: [containerStatus({ waiting: { reason, message } }, false)],
  });
