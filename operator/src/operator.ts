// The operator process: configuration → client → leader election → controller, plus the
// HTTP endpoints. `Operator` is also what tests start in-process.

import type { Server } from "node:http";
import { hostname } from "node:os";
import { KubeClient, loadKubeConfig } from "@loraforge/kube";
import type { OperatorConfig } from "./config.ts";
import { Controller } from "./controller.ts";
import { LeaderElector } from "./leader.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { FIELD_MANAGER } from "./naming.ts";
import { startHttpServer } from "./server.ts";

export class Operator {
  readonly metrics = new Metrics();
  readonly client: KubeClient;
  readonly controller: Controller;
  private elector: LeaderElector | undefined;
  private leaseClient: KubeClient | undefined;
  private server: Server | undefined;
  private stopping = false;

  constructor(
    readonly config: OperatorConfig,
    private readonly log: Logger,
    kubeconfigPath: string | undefined,
    /** Called when leadership is lost: the process should exit (a fresh start re-syncs). */
    private readonly onLostLeadership: () => void = () => {},
  ) {
    this.client = new KubeClient(loadKubeConfig(kubeconfigPath), { fieldManager: FIELD_MANAGER });
    this.controller = new Controller(
      this.client,
      {
        watchNamespace: config.watchNamespace,
        workers: config.workers,
        trainerImage: config.trainerImage,
        pullPolicy: config.trainerPullPolicy,
        backoffLimit: config.jobBackoffLimit,
        defaultGpuProduct: config.defaultGpuProduct,
        reportingInstance: config.podName ?? hostname(),
        policy: config.policy,
        trainer: config.trainer,
        allowedSourceNetworks: config.allowedSourceNetworks,
        watchTimeoutS: config.watchTimeoutS,
        resyncPeriodMs: config.resyncPeriodMs,
      },
      this.metrics,
      log,
    );
  }

  /** The HTTP port actually bound (useful with port 0). */
  get httpPort(): number | undefined {
    const a = this.server?.address();
    return typeof a === "object" && a ? a.port : undefined;
  }

  async start() {
    const ready = () => (this.elector && !this.elector.isLeader ? true : this.controller.synced);
    this.server = await startHttpServer(this.config.httpPort, this.metrics, ready);
    const le = this.config.leaderElection;
    if (!le.enabled) {
      this.metrics.isLeader.set(1);
      await this.controller.start();
      return;
    }
    // Lease requests on their own client, each ending well inside the renew deadline.
    this.leaseClient = this.client.withTimeout(le.requestTimeoutMs);
    this.elector = new LeaderElector(
      this.leaseClient,
      { ...le },
      this.log,
      () => {
        this.metrics.isLeader.set(1);
        this.controller
          .start()
          .catch((error) => this.log.error("controller failed to start", { error }));
      },
      () => {
        this.metrics.isLeader.set(0);
        if (!this.stopping) this.onLostLeadership();
      },
    );
    this.elector.start();
  }

  async stop() {
    this.stopping = true;
    this.elector?.halt(); // no new term may start the controller again
    await this.controller.stop();
    await this.elector?.stop(); // then hand the Lease over

    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.client.close();
    this.leaseClient?.close();
  }
}

export const defaultIdentity = () => `${hostname()}-${process.pid}`;
