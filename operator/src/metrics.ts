// Prometheus metrics (prom-client), one registry per operator instance: the controller's
// own health, and run-level metrics an admin alerts on (failures by reason, how long runs
// take, how long they wait for a GPU, how many are in each phase).

import { FAILURE_REASONS, Reason } from "@loraforge/crds";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RunTransition, TransitionObserver } from "./recorder.ts";

const MINUTE = 60;
const HOUR = 60 * MINUTE;
/** Fine-tuning runs take minutes (a small model, a smoke test) to days (13B, 3 epochs). */
const RUN_DURATION_BUCKETS = [
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  4 * HOUR,
  8 * HOUR,
  16 * HOUR,
  24 * HOUR,
  48 * HOUR,
  96 * HOUR,
  168 * HOUR,
];
/** Waiting for a GPU: seconds when the pool is free, hours when it is busy. */
const QUEUE_WAIT_BUCKETS = [
  10,
  30,
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  4 * HOUR,
  8 * HOUR,
  24 * HOUR,
];

const seconds = (from: string | undefined, to: string | Date | undefined) => {
  if (!from || !to) return undefined;
  const ms = (to instanceof Date ? to.getTime() : Date.parse(to)) - Date.parse(from);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
};

export interface MetricSources {
  queueDepth(): number;
  phases(): Map<string, number>;
}

export class Metrics implements TransitionObserver {
  readonly registry = new Registry();
  sources: MetricSources | undefined;
  readonly reconciles = new Counter({
    name: "loraforge_reconciles_total",
    help: "Reconcile passes, by result (success, error, requeue).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "loraforge_reconcile_errors_total",
    help: "Reconcile passes that failed and were requeued with backoff.",
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "loraforge_reconcile_duration_seconds",
    help: "Time spent in one reconcile pass.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: "loraforge_workqueue_depth",
    help: "Keys waiting in the work queue.",
    registers: [this.registry],
    collect: () => {
      if (this.sources) this.queueDepth.set(this.sources.queueDepth());
    },
  });
  readonly runsByPhase = new Gauge({
    name: "loraforge_runs",
    help: "LoraFineTune resources by status.phase.",
    labelNames: ["phase"] as const,
    registers: [this.registry],
    collect: () => {
      if (!this.sources) return;
      for (const [phase, n] of this.sources.phases()) this.runsByPhase.set({ phase }, n);
    },
  });
  readonly runsFailed = new Counter({
    name: "loraforge_runs_failed_total",
    help: "Runs that failed, by status.failure.reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly runDuration = new Histogram({
    name: "loraforge_run_duration_seconds",
    help: "Finished runs: from the start of the training Job to the end of the run, by final phase.",
    labelNames: ["phase"] as const,
    buckets: RUN_DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: "loraforge_run_queue_wait_seconds",
    help: "From a run's creation until its trainer pod first runs (Kueue admission, scheduling, image pull).",
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: "loraforge_informer_restarts_total",
    help: "Informers restarted after a watch or list error.",
    labelNames: ["resource"] as const,
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: "loraforge_resyncs_total",
    help: "Periodic resyncs: every informer listed again and every LoraFineTune enqueued.",
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: "loraforge_leader",
    help: "1 while this instance holds the leader Lease.",
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    // Every reason from zero, so that rate()/increase() see the first failure of each.
    for (const reason of FAILURE_REASONS) this.runsFailed.inc({ reason }, 0);
  }

  /** Counts a status write that changed the phase (each transition is written once). */
  observeTransition(t: RunTransition) {
    const { before, after } = t;
    if (before.phase === after.phase) return;
    if (after.phase === "Failed") {
      this.runsFailed.inc({ reason: after.failure?.reason ?? after.reason ?? "Unknown" });
    }
    if (after.phase === "Succeeded" || after.phase === "Failed") {
      const took = seconds(after.startTime, after.completionTime);
      if (took !== undefined) this.runDuration.observe({ phase: after.phase }, took);
    }
    // The first time the trainer runs: not a retry (Resumed), and it has reported nothing yet.
    if (after.phase === "Running" && after.reason === Reason.Training && !t.observed?.progress) {
      const waited = seconds(t.createdAt, t.at);
      if (waited !== undefined) this.queueWait.observe(waited);
    }
  }
}
