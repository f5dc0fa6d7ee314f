// One reconcile pass for one LoraFineTune, as a checklist:
//   get (gone → done) → deletion (children are garbage-collected by owner references)
//   → validate → ensure the per-run ServiceAccount, Role, RoleBinding and spec ConfigMap
//   → ensure the Job → status (written only when changed, retried on conflict).
// Only objects this run controls are applied over; anything else bearing a child's name fails
// the run (ObjectConflict), and so does a child the API server refuses (RejectedByAPIServer).
// Every return says why it requeues (or not).

import {
  type Cidr,
  type LoraFineTune,
  OPERATOR_STATUS_FIELDS,
  type OperatorStatus,
  Reason,
  safeParseLoraFineTune,
} from "@loraforge/crds";
import {
  isAlreadyExists,
  isConflict,
  isForbidden,
  isNotFound,
  isPermanentRejection,
  type Kube,
  paths,
} from "@loraforge/kube";
import { buildJob, buildSpecConfigMap, kueueManaged } from "./builders/job.ts";
import type { OwnedRun } from "./builders/owner.ts";
import { buildRole, buildRoleBinding, buildServiceAccount } from "./builders/rbac.ts";
import type { TrainerPodSettings } from "./config.ts";
import { type Failure, objectConflict, rejectedByApiServer } from "./failure.ts";
import type { Logger } from "./log.ts";
import { FIELD_MANAGER, jobName, runAccountName, specConfigMapName } from "./naming.ts";
import {
  controllerUidOf,
  type Job,
  JobSchema,
  type Pod,
  PodSchema,
  type Workload,
  WorkloadSchema,
} from "./objects.ts";
import { ownershipOf, type RunIdentity } from "./ownership.ts";
import type { Policy } from "./policy.ts";
import type { RunRecorder } from "./recorder.ts";
import { decideStatus, pick, sameJson, TERMINAL_PHASES } from "./status.ts";
import { type ValidationOutcome, validateForCluster } from "./validate.ts";
import { KUEUE_JOB_UID_LABEL } from "./workload.ts";

export interface Caches {
  lft(namespace: string, name: string): unknown | undefined;
  job(namespace: string, name: string): unknown | undefined;
  pods(namespace: string): readonly unknown[];
}

export interface ReconcileSettings {
  trainerImage: string;
  pullPolicy: "Always" | "IfNotPresent" | "Never";
  backoffLimit: number;
  defaultGpuProduct: string | undefined;
  policy: Policy;
  trainer: TrainerPodSettings;
  allowedSourceNetworks: readonly Cidr[];
}

export type Result =
  | { kind: "done"; why: string }
  | { kind: "requeueAfter"; ms: number; why: string };

interface RawLft {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    deletionTimestamp?: string;
  };
  status?: unknown;
}

const MAX_STATUS_ATTEMPTS = 5;
/** How often a queued run re-reads its Workload (Kueue's changes do not touch the Job). */
export const QUEUED_RECHECK_MS = 3000;

export class Reconciler {
  /** uid → generation whose children were ensured; cleared on restart, so a restart re-checks all. */
  private readonly ensured = new Map<string, number>();
  /** uid → the phase this process last wrote (the informer cache may not show it yet). */
  private readonly written = new Map<string, string | undefined>();

  constructor(
    private readonly kube: Kube,
    private readonly caches: Caches,
    private readonly settings: ReconcileSettings,
    private readonly events: RunRecorder,
    private readonly log: Logger,
  ) {}

  forget(uid: string) {
    this.ensured.delete(uid);
    this.written.delete(uid);
  }

  async reconcile(namespace: string, name: string): Promise<Result> {
    // 1. get
    let raw = this.caches.lft(namespace, name) as RawLft | undefined;
    if (!raw) return { kind: "done", why: "gone" };
    // 2. deletion: no finalizer of ours; owner references let the garbage collector clean up
    if (raw.metadata.deletionTimestamp) return { kind: "done", why: "being deleted" };

    let requeue: Result = { kind: "done", why: "in sync" };
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.pass(raw);
      if (outcome.kind === "written" || outcome.kind === "unchanged") {
        requeue = outcome.result;
        break;
      }
      // conflict: someone (the trainer, a user) changed the object; re-read and recompute
      if (attempt >= MAX_STATUS_ATTEMPTS)
        throw new Error(
          `status of ${namespace}/${name}: still conflicting after ${attempt} attempts`,
        );
      const fresh = (await this.kube.find(paths.lft(namespace, name))) as RawLft | undefined;
      if (!fresh) return { kind: "done", why: "deleted while reconciling" };
      raw = fresh;
    }
    return requeue;
  }

  private async pass(
    raw: RawLft,
  ): Promise<{ kind: "written" | "unchanged" | "conflict"; result: Result }> {
    const { namespace, name, uid } = raw.metadata;
    const generation = raw.metadata.generation ?? 0;
    const log = this.log.with({ lft: `${namespace}/${name}` });

    const jName = jobName(name);
    const prevPhase = (raw.status as { phase?: string } | undefined)?.phase;
    // The cache can lag behind our own last status write; either one saying "finished" counts.
    const isTerminal = (p: string | undefined) =>
      p !== undefined && (TERMINAL_PHASES as readonly string[]).includes(p);
    const terminal = isTerminal(prevPhase) || isTerminal(this.written.get(uid));
    // The admin's policy and the memory rule decide whether a Job may be created; a change
    // of policy does not fail runs that already have one, or rewrite finished ones.
    const admitting = !terminal && !this.jobFromCache(namespace, jName);

    // 3. validate
    const parsed = safeParseLoraFineTune(raw);
    let lft: LoraFineTune;
    let validation: ValidationOutcome;
    if (!parsed.ok) {
      // Should not pass the API server's schema; report it rather than crash.
      const message = parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ");
      lft = raw as unknown as LoraFineTune;
      validation = {
        ok: false,
        reason: Reason.InvalidSpec,
        message,
        warnings: [],
        gpuProduct: undefined,
      };
    } else {
      lft = parsed.value;
      validation = validateForCluster(lft, {
        defaultGpuProduct: this.settings.defaultGpuProduct,
        allowedSourceNetworks: this.settings.allowedSourceNetworks,
        cpuTrainerForGpuRuns: this.settings.trainer.cpuTrainerForGpuRuns,
        ...(admitting
          ? {
              policy: this.settings.policy,
              memory: { default: this.settings.trainer.defaultMemory },
            }
          : {}),
      });
    }
    const run: OwnedRun = { lft, uid, namespace };

    let job = this.jobFromCache(namespace, jName);
    let result: Result = { kind: "done", why: "in sync" };
    let blocked: Failure | undefined;
    const me = { name, uid };
    if (job) {
      const owner = ownershipOf(job, me);
      if (owner.kind === "earlierRun") return waitForCollection("Job", jName, name);
      if (owner.kind === "foreign") {
        blocked = objectConflict("Job", namespace, jName, owner.holder);
        job = undefined; // never ours to read, suspend or delete
      }
    }

    if (validation.ok && !blocked && !(terminal && !job)) {
      // 4. per-run identity and the spec file
      if (this.ensured.get(uid) !== generation) {
        const account = runAccountName(name);
        const cm = specConfigMapName(name);
        const children = await Promise.all([
          this.ensure(
            me,
            "ServiceAccount",
            paths.serviceAccounts(namespace),
            paths.serviceAccount(namespace, account),
            buildServiceAccount(run),
          ),
          this.ensure(
            me,
            "Role",
            paths.roles(namespace),
            paths.role(namespace, account),
            buildRole(run),
          ),
          this.ensure(
            me,
            "RoleBinding",
            paths.roleBindings(namespace),
            paths.roleBinding(namespace, account),
            buildRoleBinding(run),
          ),
          this.ensure(
            me,
            "ConfigMap",
            paths.configMaps(namespace),
            paths.configMap(namespace, cm),
            buildSpecConfigMap(run),
          ),
        ]);
        const refused = children.find((c) => c.kind === "refused");
        const waiting = children.find((c) => c.kind === "wait");
        if (refused?.kind === "refused") blocked = refused.failure;
        else if (waiting?.kind === "wait")
          return {
            kind: "unchanged",
            result: { kind: "requeueAfter", ms: 2000, why: waiting.why },
          };
        else this.ensured.set(uid, generation);
      }
      // 5. the Job
      const kueue = kueueManaged(lft.spec);
      if (blocked) {
        // nothing more to make
      } else if (kueue && lft.spec.suspend) {
        // Kueue owns Job.spec.suspend: suspending a queued run removes its Job; resuming
        // creates it again and the trainer resumes from the newest checkpoint.
        if (job) {
          await this.kube.delete(paths.job(namespace, jName), "Background");
          log.info("deleted the Job of a suspended Kueue run", { job: jName });
        }
        job = undefined;
      } else if (!job || (!kueue && Boolean(job.spec?.suspend) !== lft.spec.suspend)) {
        const body = buildJob(run, {
          trainerImage: this.settings.trainerImage,
          pullPolicy: this.settings.pullPolicy,
          backoffLimit: this.settings.backoffLimit,
          gpuProduct: validation.gpuProduct,
          pod: this.settings.trainer,
        });
        let adopted: Job | undefined;
        if (!job) {
          // Not in the cache (which sees only labelled Jobs): look before applying, so an
          // unlabelled Job of that name is never applied over.
          const existing = await this.kube.find(paths.job(namespace, jName));
          if (existing !== undefined) {
            const owner = ownershipOf(existing, me);
            if (owner.kind === "earlierRun") return waitForCollection("Job", jName, name);
            if (owner.kind === "foreign")
              blocked = objectConflict("Job", namespace, jName, owner.holder);
            else if (kueue) adopted = JobSchema.parse(existing); // Kueue's now: never re-applied
          }
        }
        if (adopted) {
          job = adopted;
        } else if (!blocked) {
          try {
            job = JobSchema.parse(await this.kube.apply(paths.job(namespace, jName), body));
            log.info("applied the Job", { job: jName, suspend: job.spec?.suspend ?? false });
          } catch (e) {
            if (!isPermanentRejection(e)) throw e;
            blocked = rejectedByApiServer("Job", namespace, jName, e);
          }
        }
      }
    }

    // 6. status
    const pods = job ? this.podsOf(namespace, job) : [];
    const workload =
      job && kueueManaged(lft.spec) ? await this.workloadOf(namespace, job) : undefined;
    const decision = decideStatus({
      lft,
      generation,
      validation,
      job,
      pods,
      workload,
      jobName: jName,
      now: now(),
      blocked,
    });
    const current = pick(raw.status as never);
    let outcome: "written" | "unchanged" = "unchanged";
    // A failed run will not finish: the trainer's last estimate (kubectl get -o wide's ETA)
    // goes with the failure. The rest of status.progress stays: where it stopped.
    const progress = (
      raw.status as { progress?: { eta?: unknown; etaSeconds?: unknown } } | undefined
    )?.progress;
    const staleEta =
      decision.status.phase === "Failed" &&
      (progress?.eta !== undefined || progress?.etaSeconds !== undefined);
    if (!sameJson(current, decision.status) || staleEta) {
      const patch: Record<string, unknown> = {};
      for (const k of OPERATOR_STATUS_FIELDS) patch[k] = decision.status[k] ?? null; // null removes a field
      if (staleEta) patch.progress = { eta: null, etaSeconds: null };
      try {
        await this.kube.mergePatch(paths.lftStatus(namespace, name), {
          metadata: { resourceVersion: raw.metadata.resourceVersion },
          status: patch,
        });
      } catch (e) {
        if (isConflict(e)) return { kind: "conflict", result };
        throw e;
      }
      outcome = "written";
      this.written.set(uid, decision.status.phase);
      this.announce(raw, lft, current, decision.status, validation);
      if (decision.status.phase === "Pending" && !job)
        result = { kind: "requeueAfter", ms: 1000, why: "Job not visible yet" };
    }
    if (decision.status.phase === "Queued" && result.kind === "done") {
      // Kueue changes its Workload (quota freed, queue created) without touching the Job,
      // and Workloads are not watched: look again.
      result = {
        kind: "requeueAfter",
        ms: QUEUED_RECHECK_MS,
        why: "queued: re-read Kueue's Workload",
      };
    }
    // Only after the failure is on record: the Job's deletion wakes us up again, and the
    // next pass must see a finished run, not a run whose Job went missing.
    if (decision.stopJob && job) {
      await this.kube.delete(paths.job(namespace, jName), "Background");
      log.info("deleted the Job of a failed run to free its GPU", {
        job: jName,
        reason: decision.status.failure?.reason,
      });
    }
    return { kind: outcome, result };
  }

  /**
   * Creates a child; if one of that name exists and this run controls it, server-side
   * applies it so that it converges (with its resourceVersion as a precondition, so an
   * object replaced meanwhile is not applied over). One this run does not control is left
   * alone: refused, or waited for when it belongs to an earlier run of the same name.
   * (Create first: it is the common case and cheaper for the API server than apply.)
   */
  private async ensure(
    run: RunIdentity,
    kind: string,
    collection: string,
    path: string,
    body: { metadata: { name: string; namespace: string } },
  ): Promise<Ensured> {
    const { name, namespace } = body.metadata;
    const refusedBy = (e: unknown): Ensured => {
      if (!isPermanentRejection(e)) throw e;
      return { kind: "refused", failure: rejectedByApiServer(kind, namespace, name, e) };
    };
    try {
      await this.kube.create(`${collection}?fieldManager=${FIELD_MANAGER}`, body);
      return { kind: "ok" };
    } catch (e) {
      if (!isAlreadyExists(e)) return refusedBy(e);
    }
    const existing = (await this.kube.find(path)) as
      | { metadata?: { resourceVersion?: string } }
      | undefined;
    if (existing === undefined)
      throw new Error(`${kind} ${name} was deleted while being ensured; retrying`);
    const owner = ownershipOf(existing, run);
    if (owner.kind === "earlierRun")
      return {
        kind: "wait",
        why: waitForCollection(kind, body.metadata.name, run.name).result.why,
      };
    if (owner.kind === "foreign")
      return {
        kind: "refused",
        failure: objectConflict(kind, namespace, name, owner.holder),
      };
    const resourceVersion = existing.metadata?.resourceVersion;
    try {
      await this.kube.apply(path, { ...body, metadata: { ...body.metadata, resourceVersion } });
    } catch (e) {
      return refusedBy(e);
    }
    return { kind: "ok" };
  }

  private jobFromCache(namespace: string, name: string): Job | undefined {
    const raw = this.caches.job(namespace, name);
    if (!raw) return undefined;
    const r = JobSchema.safeParse(raw);
    return r.success ? r.data : undefined;
  }

  /**
   * Kueue's Workload for the Job (by Kueue's job-uid label). Undefined when Kueue has made
   * none yet, or is not installed (no Workload API): the run then shows as plainly queued.
   */
  private async workloadOf(namespace: string, job: Job): Promise<Workload | undefined> {
    const uid = job.metadata.uid;
    if (!uid) return undefined;
    let items: unknown[];
    try {
      ({ items } = await this.kube.list(
        paths.workloads(namespace),
        `${KUEUE_JOB_UID_LABEL}=${uid}`,
      ));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      if (isForbidden(e)) {
        this.log.warn("cannot read Kueue Workloads (RBAC): queued runs show no Kueue reason", {
          namespace,
        });
        return undefined;
      }
      throw e;
    }
    const workloads = items.flatMap((raw) => {
      const r = WorkloadSchema.safeParse(raw);
      return r.success ? [r.data] : [];
    });
    return workloads.find((w) => !w.metadata.deletionTimestamp) ?? workloads[0];
  }

  private podsOf(namespace: string, job: Job): Pod[] {
    const uid = job.metadata.uid;
    const out: Pod[] = [];
    for (const raw of this.caches.pods(namespace)) {
      const r = PodSchema.safeParse(raw);
      if (r.success && uid && controllerUidOf(r.data) === uid) out.push(r.data);
    }
    return out;
  }

  /** Events and run metrics for a status write (see recorder.ts). */
  private announce(
    raw: RawLft,
    lft: LoraFineTune,
    before: OperatorStatus,
    after: OperatorStatus,
    validation: ValidationOutcome,
  ) {
    const created = (raw.metadata as { creationTimestamp?: unknown }).creationTimestamp;
    this.events.transition({
      target: { name: raw.metadata.name, namespace: raw.metadata.namespace, uid: raw.metadata.uid },
      lft,
      before,
      after,
      validation,
      observed: lft.status,
      createdAt: typeof created === "string" ? created : undefined,
      at: new Date(),
    });
  }
}

type Ensured =
  | { kind: "ok" }
  | { kind: "wait"; why: string }
  | { kind: "refused"; failure: Failure };

function waitForCollection(kind: string, child: string, run: string) {
  return {
    kind: "unchanged" as const,
    result: {
      kind: "requeueAfter" as const,
      ms: 2000,
      why: `${kind} ${child} belongs to an earlier ${run}; waiting for its garbage collection`,
    },
  };
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}
