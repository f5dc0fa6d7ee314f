// Wires informers to the work queue and the queue to reconcile workers. Informers restart
// themselves after list/watch errors, with backoff; events only enqueue keys (merged per
// object), workers re-read the current state from the caches. Watches end on a server-side
// timeout and are re-established; every resync period each informer lists again and every
// LoraFineTune is enqueued, so a lost event or a lost requeue costs one period at most.

import { PHASES } from "@loraforge/crds";
import { type Informer, type KubeClient, paths } from "@loraforge/kube";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { keyOf, LABEL_RUN, MANAGED_SELECTOR, splitKey } from "./naming.ts";
import { WorkQueue } from "./queue.ts";
import { Reconciler, type ReconcileSettings } from "./reconcile.ts";
import { EventRecorder, RunRecorder } from "./recorder.ts";
import { trimJob, trimPod } from "./trim.ts";

interface Meta {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  status?: { phase?: string };
}

export interface ControllerOptions extends ReconcileSettings {
  watchNamespace: string;
  workers: number;
  /** Events' reportingInstance (the operator pod's name). */
  reportingInstance: string;
  /** Server-side timeout of each watch request (see InformerOptions.watchTimeoutS). */
  watchTimeoutS: number;
  /** Period of the resync: relist every informer and enqueue every LoraFineTune; 0: never. */
  resyncPeriodMs: number;
}

export class Controller {
  readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 120_000 });
  private readonly informers: {
    name: string;
    informer: Informer<Meta>;
    synced: boolean;
    backoffMs: number;
  }[] = [];
  private readonly reconciler: Reconciler;
  private running = false;
  private closed = false;
  private workers: Promise<void>[] = [];
  private restartTimers = new Set<NodeJS.Timeout>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly lfts: Informer<Meta>;

  constructor(
    client: KubeClient,
    private readonly options: ControllerOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    const ns = options.watchNamespace || undefined;
    const watchTimeoutS = options.watchTimeoutS;
    const lfts = client.informer<Meta>(paths.lfts(ns), { watchTimeoutS });
    const jobs = client.informer<Meta>(paths.jobs(ns), {
      labelSelector: MANAGED_SELECTOR,
      trim: trimJob,
      watchTimeoutS,
    });
    const pods = client.informer<Meta>(paths.pods(ns), {
      labelSelector: MANAGED_SELECTOR,
      trim: trimPod,
      watchTimeoutS,
    });
    this.lfts = lfts;
    const recorder = new RunRecorder(new EventRecorder(client, log, options.reportingInstance), [
      metrics,
    ]);
    this.reconciler = new Reconciler(
      client,
      {
        lft: (n, name) => lfts.get(name, n),
        job: (n, name) => jobs.get(name, n),
        pods: (n) => pods.list(n),
      },
      options,
      recorder,
      log,
    );
    // The trainer's checkpoints change status without an operator write: watch for them.
    lfts.on("add", (o) => recorder.trainerReported(o));
    lfts.on("update", (o) => recorder.trainerReported(o));

    const enqueueSelf = (o: Meta) => {
      if (o.metadata?.name && o.metadata.namespace)
        this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
    };
    lfts.on("add", enqueueSelf);
    lfts.on("update", enqueueSelf);
    lfts.on("delete", (o) => {
      if (o.metadata?.uid) {
        this.reconciler.forget(o.metadata.uid);
        recorder.forget(o.metadata.uid);
      }
      enqueueSelf(o);
    });
    const enqueueOwner = (o: Meta) => {
      const owner = o.metadata?.ownerReferences?.find(
        (r) => r.controller && r.kind === "LoraFineTune",
      );
      if (owner && o.metadata?.namespace) this.queue.add(keyOf(o.metadata.namespace, owner.name));
    };
    for (const verb of ["add", "update", "delete"] as const) jobs.on(verb, enqueueOwner);
    const enqueueRun = (o: Meta) => {
      const run = o.metadata?.labels?.[LABEL_RUN];
      if (run && o.metadata?.namespace) this.queue.add(keyOf(o.metadata.namespace, run));
    };
    for (const verb of ["add", "update", "delete"] as const) pods.on(verb, enqueueRun);

    this.informers.push(
      { name: "lorafinetunes", informer: lfts, synced: false, backoffMs: 500 },
      { name: "jobs", informer: jobs, synced: false, backoffMs: 500 },
      { name: "pods", informer: pods, synced: false, backoffMs: 500 },
    );

    this.metrics.sources = {
      queueDepth: () => this.queue.length,
      phases: () => {
        const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
        for (const o of lfts.list()) {
          const phase = o.status?.phase ?? "Pending";
          counts.set(phase, (counts.get(phase) ?? 0) + 1);
        }
        return counts;
      },
    };
  }

  get synced(): boolean {
    return this.informers.every((i) => i.synced);
  }

  async start() {
    if (this.closed) return;
    this.running = true;
    for (const entry of this.informers) {
      const { informer, name } = entry;
      informer.on("connect", () => {
        entry.backoffMs = 500;
      });
      informer.on("error", (err) => {
        if (!this.running) return;
        this.metrics.informerRestarts.inc({ resource: name });
        const delay = entry.backoffMs;
        entry.backoffMs = Math.min(entry.backoffMs * 2, 30_000);
        this.log.warn("informer stopped; restarting", { resource: name, error: err, inMs: delay });
        const t = setTimeout(() => {
          this.restartTimers.delete(t);
          if (this.running) this.startInformer(entry);
        }, delay);
        this.restartTimers.add(t);
      });
    }
    // Owned objects first, so the first LoraFineTune passes see existing Jobs.
    const [lftEntry, ...owned] = this.informers;
    await Promise.all(owned.map((e) => this.startInformer(e)));
    if (!this.running) return; // stopped while starting
    if (lftEntry) await this.startInformer(lftEntry);
    if (!this.running) return;
    for (let i = 0; i < this.options.workers; i++) this.workers.push(this.work());
    if (this.options.resyncPeriodMs > 0)
      this.resyncTimer = setInterval(() => this.resync(), this.options.resyncPeriodMs);
  }

  /**
   * Lists every resource again (a watch that missed an event, or a cache that drifted, is
   * corrected) and enqueues every LoraFineTune (a requeue lost with a restarted worker, or
   * a decision that depends on time, is made again).
   */
  resync() {
    if (!this.running) return;
    this.metrics.resyncs.inc();
    for (const { informer } of this.informers) informer.relist();
    for (const o of this.lfts.list())
      if (o.metadata?.name && o.metadata.namespace)
        this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
    this.log.debug("resync", { lorafinetunes: this.lfts.list().length });
  }

  private async startInformer(entry: (typeof this.informers)[number]) {
    if (!this.running) return;
    try {
      await entry.informer.start();
      // A failed list does not throw (it reports through "error"): synced means listed.
      if (entry.informer.latestResourceVersion() !== "") entry.synced = true;
    } catch (error) {
      // The informer's "error" callback schedules the restart.
      this.log.warn("informer failed to start", { resource: entry.name, error });
    }
  }

  private async work() {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const { namespace, name } = splitKey(key);
      const end = this.metrics.duration.startTimer();
      try {
        const result = await this.reconciler.reconcile(namespace, name);
        this.queue.forget(key);
        if (result.kind === "requeueAfter") {
          this.metrics.reconciles.inc({ result: "requeue" });
          this.log.debug("requeue", { lft: key, inMs: result.ms, why: result.why });
          this.queue.addAfter(key, result.ms);
        } else {
          this.metrics.reconciles.inc({ result: "success" });
        }
      } catch (error) {
        this.metrics.reconciles.inc({ result: "error" });
        this.metrics.errors.inc();
        const delay = this.queue.addRateLimited(key);
        this.log.warn("reconcile failed; retrying with backoff", {
          lft: key,
          error,
          retryInMs: delay,
        });
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  async stop() {
    this.closed = true;
    this.running = false;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const t of this.restartTimers) clearTimeout(t);
    this.queue.shutdown();
    await Promise.all(this.informers.map((i) => i.informer.stop().catch(() => {})));
    await Promise.all(this.workers);
  }
}
