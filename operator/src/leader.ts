// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the holder
// renews every retry period; a contender takes the Lease over only after it has seen it
// unchanged for a whole lease duration (by its own clock, so clock skew does not matter);
// a leader that cannot renew within the renew deadline stops leading.
//
// Timing invariant: requestTimeout < renewDeadline < leaseDuration (and retryPeriod <
// renewDeadline). A leader steps down by a timer renewDeadline after its last successful
// renew was sent, whatever its requests are doing, so it has stopped before a contender,
// who waits a whole leaseDuration, can take over. Each Lease request gives up after
// requestTimeout, so one hung request cannot use up the renew deadline: there is time for
// another attempt.

import { isAlreadyExists, isConflict, type Kube, paths } from "@loraforge/kube";
import type { Logger } from "./log.ts";

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Limit of one Lease request; the elector's `kube` must enforce it (KubeClient.withTimeout). */
  requestTimeoutMs: number;
}

/** The timing invariant above, as problems (empty: fine). */
export function leaderTimingProblems(
  o: Pick<
    LeaderOptions,
    "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs" | "requestTimeoutMs"
  >,
): string[] {
  const problems: string[] = [];
  if (!(o.requestTimeoutMs < o.renewDeadlineMs))
    problems.push(
      `the Lease request timeout (${o.requestTimeoutMs} ms) must be shorter than the renew deadline (${o.renewDeadlineMs} ms), or one hung request outlasts the deadline`,
    );
  if (!(o.renewDeadlineMs < o.leaseDurationMs))
    problems.push(
      `the renew deadline (${o.renewDeadlineMs} ms) must be shorter than the lease duration (${o.leaseDurationMs} ms), or a contender takes over while the leader still works`,
    );
  if (!(o.retryPeriodMs < o.renewDeadlineMs))
    problems.push(
      `the retry period (${o.retryPeriodMs} ms) must be shorter than the renew deadline (${o.renewDeadlineMs} ms), or the leader gets no second try`,
    );
  return problems;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const microTime = () => new Date().toISOString().replace("Z", "000Z");

export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  /** Fires renewDeadline after the last successful renew was sent: the leader steps down. */
  private deadline: NodeJS.Timeout | undefined;
  private leading = false;
  private lastRenew = 0;
  private observed: { key: string; at: number } | undefined;
  private stopped = false;

  constructor(
    private readonly kube: Kube,
    private readonly opts: LeaderOptions,
    private readonly log: Logger,
    private readonly onStarted: () => void,
    private readonly onStopped: () => void,
  ) {
    const problems = leaderTimingProblems(opts);
    if (problems.length > 0) throw new Error(`leader election: ${problems.join("; ")}`);
  }

  get isLeader() {
    return this.leading;
  }

  start() {
    const tick = async () => {
      if (this.stopped) return;
      const sentAt = Date.now();
      try {
        await this.tryAcquireOrRenew(sentAt);
      } catch (error) {
        this.log.warn("leader election: lease request failed", { error });
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.opts.retryPeriodMs);
    };
    void tick();
  }

  /** Not renewed within the deadline: stop leading now, even with a request still in flight. */
  private stepDown() {
    if (!this.leading) return;
    this.log.error("leader election: could not renew the lease in time; stopping", {
      sinceLastRenewMs: Date.now() - this.lastRenew,
    });
    this.leading = false;
    this.halt();
    this.onStopped();
  }

  private spec(transitions: number, acquireTime: string): Lease["spec"] {
    return {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
      acquireTime,
      renewTime: microTime(),
      leaseTransitions: transitions,
    };
  }

  /** `sentAt`: when the winning request was sent (its renewTime is no later than that). */
  private became(sentAt: number) {
    // A request in flight while stop() ran may still win the Lease: give it back.
    if (this.stopped) {
      void this.release();
      return;
    }
    // A response that comes back after the deadline does not count: the lease may be lost.
    if (this.leading && sentAt - this.lastRenew > this.opts.renewDeadlineMs) return;
    this.lastRenew = sentAt;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = setTimeout(
      () => this.stepDown(),
      Math.max(0, sentAt + this.opts.renewDeadlineMs - Date.now()),
    );
    if (!this.leading) {
      this.leading = true;
      this.log.info("leader election: became leader", { identity: this.opts.identity });
      this.onStarted();
    }
  }

  private async tryAcquireOrRenew(sentAt: number) {
    const { namespace, name } = this.opts;
    const path = paths.lease(namespace, name);
    const lease = (await this.kube.find(path)) as Lease | undefined;
    if (!lease) {
      try {
        await this.kube.create(paths.leases(namespace), {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: this.spec(0, microTime()),
        });
        this.became(sentAt);
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
      return;
    }
    const holder = lease.spec.holderIdentity ?? "";
    const mine = holder === this.opts.identity;
    if (!mine && holder !== "") {
      const key = `${holder}|${lease.spec.renewTime ?? ""}|${lease.metadata.resourceVersion ?? ""}`;
      if (this.observed?.key !== key) this.observed = { key, at: Date.now() };
      const durationMs =
        (lease.spec.leaseDurationSeconds ?? Math.ceil(this.opts.leaseDurationMs / 1000)) * 1000;
      if (Date.now() - this.observed.at < durationMs) return; // someone else holds it
    }
    const transitions = (lease.spec.leaseTransitions ?? 0) + (mine ? 0 : 1);
    const acquireTime = mine && lease.spec.acquireTime ? lease.spec.acquireTime : microTime();
    try {
      await this.kube.replace(path, { ...lease, spec: this.spec(transitions, acquireTime) });
      this.became(sentAt);
    } catch (e) {
      if (!isConflict(e)) throw e; // another contender won this round
    }
  }

  /** Stops campaigning without giving the Lease up yet (the caller stops its work first). */
  halt() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Stops campaigning; a leader gives the lease up so that a successor need not wait. */
  async stop() {
    this.halt();
    if (this.deadline) clearTimeout(this.deadline);
    if (!this.leading) return;
    this.leading = false;
    await this.release();
  }

  private async release() {
    try {
      const path = paths.lease(this.opts.namespace, this.opts.name);
      const lease = (await this.kube.find(path)) as Lease | undefined;
      if (lease && lease.spec.holderIdentity === this.opts.identity) {
        await this.kube.replace(path, {
          ...lease,
          spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1 },
        });
      }
    } catch (error) {
      this.log.warn("leader election: could not release the lease", { error });
    }
  }
}
