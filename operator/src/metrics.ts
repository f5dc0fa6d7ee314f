// Prometheus metrics (prom-client), one registry per operator instance.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface MetricSources {
  queueDepth(): number;
  phases(): Map<string, number>;
}

export class Metrics {
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
  }
}
