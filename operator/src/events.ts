// Kubernetes Events about a LoraFineTune (core/v1, visible in `kubectl describe lft`).
// Best effort: a failed Event is logged, never fails a reconcile.

import { API_VERSION, KIND } from "@loraforge/crds";
import { type Kube, paths } from "./k8s.ts";
import type { Logger } from "./log.ts";

export interface EventTarget {
  name: string;
  namespace: string;
  uid: string;
}

const MAX_IN_FLIGHT = 64;

export class EventRecorder {
  private inFlight = 0;
  dropped = 0;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly component = "loraforge-operator",
  ) {}

  /**
   * Sends an Event without holding up the caller (events are best effort, and a worker
   * should not wait a round trip for one). Beyond 64 in flight, events are dropped.
   */
  emit(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.dropped++;
      return;
    }
    this.inFlight++;
    void this.send(target, type, reason, message).finally(() => {
      this.inFlight--;
    });
  }

  private async send(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ) {
    const now = new Date().toISOString();
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${target.name}.`, namespace: target.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: target.name,
        namespace: target.namespace,
        uid: target.uid,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: this.component,
      reportingInstance: this.component,
    };
    try {
      await this.kube.create(paths.events(target.namespace), event);
    } catch (error) {
      this.log.warn("could not record event", { reason, error });
    }
  }
}
