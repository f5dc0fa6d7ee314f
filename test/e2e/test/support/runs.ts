// Runs on the e2e cluster as a user sees them: created with `kubectl apply`, polled through
// status, with every change of (phase, reason, Admitted message) kept as the run's history and
// `kubectl get lft -o wide` printed when a run moves (and Kueue's Workloads where Kueue runs).
// The polls read only the API server and the volumes, never the operator's insides.

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { API_VERSION } from "@loraforge/crds";
import type { TestCluster } from "@loraforge/test-k8s";
import { z } from "zod";
import { getLftTable, log, NS } from "./cluster.ts";

const Condition = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
});

export const Lft = z.object({
  metadata: z.object({ name: z.string(), uid: z.string() }),
  status: z
    .object({
      phase: z.string().optional(),
      reason: z.string().optional(),
      gpu: z.string().optional(),
      conditions: z.array(Condition).optional(),
      progress: z
        .object({ step: z.number().optional(), totalSteps: z.number().optional() })
        .passthrough()
        .optional(),
      adapter: z.object({ path: z.string(), digest: z.string(), sizeBytes: z.number() }).optional(),
      failure: z
        .object({ reason: z.string().optional(), message: z.string().optional() })
        .optional(),
    })
    .passthrough()
    .optional(),
});
export type Lft = z.infer<typeof Lft>;

export const lftPath = (name: string) =>
  `/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes/${name}`;
export const conditionOf = (l: Lft, type: string) =>
  l.status?.conditions?.find((c) => c.type === type);

/** One line of a run's history: what `kubectl get lft` and the Admitted condition said. */
export interface HistoryEntry {
  at: string;
  phase: string;
  reason: string;
  message: string;
}

const Workload = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({ priority: z.number().optional() }).passthrough(),
  status: z
    .object({
      conditions: z.array(Condition).optional(),
      admission: z.object({ clusterQueue: z.string().optional() }).passthrough().optional(),
    })
    .passthrough()
    .optional(),
});

/** `kubectl get workloads -n e2e` with the column that says why: name, priority, admitted, reason. */
export async function workloadTable(cluster: TestCluster): Promise<string> {
  const { items } = await cluster.client.list(
    `/apis/kueue.x-k8s.io/v1beta2/namespaces/${NS}/workloads`,
  );
  const rows = items.map((i) => {
    const w = Workload.parse(i);
    const cond = (t: string) => w.status?.conditions?.find((c) => c.type === t);
    const admitted = cond("Admitted")?.status ?? "False";
    const finished = cond("Finished")?.status === "True";
    // the condition that explains the state: finished, evicted, waiting for quota, admitted
    const why = finished
      ? cond("Finished")
      : cond("Evicted")?.status === "True"
        ? cond("Evicted")
        : cond("QuotaReserved");
    return [
      w.metadata.name,
      String(w.spec.priority ?? 0),
      finished ? "Finished" : admitted,
      `${why?.reason ?? ""}: ${why?.message ?? ""}`,
    ];
  });
  const lines = [["NAME", "PRIORITY", "ADMITTED", "REASON: MESSAGE"], ...rows];
  const widths = [0, 1, 2].map((i) => Math.max(...lines.map((l) => (l[i] ?? "").length)));
  return lines
    .map((l) => l.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c)).join("   "))
    .join("\n");
}

export class Runs {
  /** Each run's history, in the order the polls saw it change. */
  readonly history = new Map<string, HistoryEntry[]>();
  private lastPrinted = "";

  /** `workloads`: print Kueue's Workloads beside the runs (only where Kueue runs). */
  constructor(
    private readonly cluster: TestCluster,
    private readonly options: { workloads: boolean } = { workloads: true },
  ) {}

  async get(name: string): Promise<Lft> {
    return Lft.parse(await this.cluster.client.get(lftPath(name)));
  }

  /** `kubectl apply` of a run (a create; the AlreadyExists of a resent create is the first one). */
  async create(lft: { metadata: { name: string } }) {
    const path = `/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes`;
    const res = await this.cluster.client.request("POST", path, lft);
    if (res.status !== 201)
      throw new Error(`create ${lft.metadata.name}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Reads a run, adds a history line when it changed, prints the tables when anything moved. */
  async observe(name: string): Promise<Lft> {
    const l = await this.get(name);
    const entry: HistoryEntry = {
      at: new Date().toISOString(),
      phase: l.status?.phase ?? "",
      reason: l.status?.reason ?? "",
      message: conditionOf(l, "Admitted")?.message ?? "",
    };
    const seen = this.history.get(name) ?? [];
    const prev = seen.at(-1);
    if (
      !prev ||
      prev.phase !== entry.phase ||
      prev.reason !== entry.reason ||
      prev.message !== entry.message
    )
      seen.push(entry);
    this.history.set(name, seen);
    await this.printIfMoved();
    return l;
  }

  /** `kubectl get lft -o wide` and the Workloads, when a phase, reason or step changed. */
  async printIfMoved(force = false) {
    const lft = await getLftTable(this.cluster);
    const workloads = this.options.workloads ? await workloadTable(this.cluster) : "";
    // the AGE and WAITING columns move every second: compare without durations
    const key = `${lft}\n${workloads}`.replace(/\b\d+(ms|s|m|h)\d*s?\b/g, "");
    if (!force && key === this.lastPrinted) return;
    this.lastPrinted = key;
    log(`$ kubectl get lft -n ${NS} -o wide\n${lft}`);
    if (this.options.workloads) log(`$ kubectl get workloads -n ${NS}\n${workloads}`);
  }

  /**
   * Polls `name` (and `also`, for their history) until `done` says so; a run that fails ends the
   * wait at once with its status.
   */
  async until(
    name: string,
    done: (l: Lft) => boolean,
    { timeoutMs = 300_000, also = [] as string[] } = {},
  ): Promise<Lft> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const other of also) await this.observe(other).catch(() => undefined);
      const l = await this.observe(name);
      if (done(l)) return l;
      if (l.status?.phase === "Failed")
        throw new Error(`run ${name} failed: ${JSON.stringify(l.status)}`);
      if (Date.now() > deadline)
        throw new Error(
          `run ${name}: not there after ${timeoutMs} ms: ${JSON.stringify(l.status)}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The run's folder on the `runs` volume: runs/<name>/<name>-<uid>. */
  static runDir(runsVolume: string, l: Lft) {
    return join(runsVolume, l.metadata.name, `${l.metadata.name}-${l.metadata.uid}`);
  }

  /** Whether the run's pod has written a checkpoint to the volume (the moment to interrupt it). */
  static hasCheckpoint(runsVolume: string, l: Lft) {
    const dir = join(Runs.runDir(runsVolume, l), "checkpoints");
    return existsSync(dir) && readdirSync(dir).some((d) => /^checkpoint-\d+$/.test(d));
  }

  /** The phases the polls saw the run in, in order, each once per stretch. */
  phases(name: string): string[] {
    const out: string[] = [];
    for (const h of this.history.get(name) ?? [])
      if (h.phase && out.at(-1) !== h.phase) out.push(h.phase);
    return out;
  }

  printHistory(name: string) {
    const lines = (this.history.get(name) ?? []).map(
      (h) => `${h.at}  ${h.phase.padEnd(9)} ${h.reason.padEnd(15)} ${h.message}`,
    );
    log(
      `status history of ${name} (phase, reason, Admitted message per change):\n${lines.join("\n")}`,
    );
  }
}
