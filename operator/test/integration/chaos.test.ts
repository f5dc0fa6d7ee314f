// Integration: the operator process is killed (SIGKILL) and restarted 20 times while 100
// LoraFineTunes are created; leader election hands the Lease over each time. Afterwards
// there is exactly one Job per run that should have one, and every run reaches its phase.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import { bundleOperator } from "../support/bundle.ts";
import {
  type Env,
  eventually,
  lftPath,
  listJobs,
  podOf,
  podRunning,
  setup,
  teardown,
} from "../support/cluster.ts";
import { manifest } from "../support/fixtures.ts";

const RUNS = 100;
const RESTARTS = 20;

type Expect = "Pending" | "Suspended" | "Failed" | "Running";
const kindOf = (i: number): Expect =>
  i % 10 === 0 ? "Failed" : i % 10 === 1 ? "Suspended" : i % 10 === 2 ? "Running" : "Pending";

describe("operator killed and restarted during a 100-resource load", () => {
  let env: Env;
  let entry: string;
  const children: ChildProcess[] = [];

  before(async () => {
    env = await setup("chaos");
    entry = await bundleOperator();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await teardown(env);
  });

  function startOperator(
    i: number,
    lease = { duration: "1", renew: "0.8" },
  ): { child: ChildProcess; leading: Promise<void> } {
    const child = spawn(process.execPath, [entry], {
      env: {
        ...process.env,
        KUBECONFIG: env.cluster.kubeconfigPath,
        LORAFORGE_TRAINER_IMAGE: "ghcr.io/loraforge/trainer:test",
        LORAFORGE_WATCH_NAMESPACE: env.ns,
        LORAFORGE_LEADER_ELECT: "true",
        LORAFORGE_LEASE_NAMESPACE: env.ns,
        LORAFORGE_LEASE_DURATION_S: lease.duration,
        LORAFORGE_RENEW_DEADLINE_S: lease.renew,
        LORAFORGE_RETRY_PERIOD_S: "0.2",
        LORAFORGE_POD_NAME: `operator-${i}`,
        LORAFORGE_HTTP_PORT: "0",
        LORAFORGE_LOG_LEVEL: "info",
        LORAFORGE_DEFAULT_MEMORY: "4Gi",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const leading = new Promise<void>((resolve) => {
      let buf = "";
      child.stdout?.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("became leader")) resolve();
      });
      child.on("exit", () => resolve());
    });
    child.stderr?.on("data", () => {});
    return { child, leading };
  }

  const kill = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });

  test("zero duplicate Jobs and every resource reaches its expected phase", {
    timeout: 240_000,
  }, async () => {
    const expected = new Map<string, Expect>();
    let created = 0;
    const createBatch = async (n: number) => {
      const batch: Promise<unknown>[] = [];
      for (let k = 0; k < n && created < RUNS; k++, created++) {
        const i = created;
        const name = `run-${String(i).padStart(3, "0")}`;
        const kind = kindOf(i);
        expected.set(name, kind);
        const m =
          kind === "Failed"
            ? manifest({
                name,
                training: { precision: "bf16" },
                resources: {
                  gpuProduct: undefined,
                  nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB" },
                },
              })
            : manifest({ name, suspend: kind === "Suspended" });
        batch.push(env.client.create(lftPath(env.ns), m));
      }
      await Promise.all(batch);
    };

    const started = Date.now();
    for (let r = 0; r < RESTARTS; r++) {
      const { child, leading } = startOperator(r);
      await createBatch(RUNS / RESTARTS);
      await leading;
      // Let it work a little (or not at all), then kill it mid-flight.
      await new Promise((res) => setTimeout(res, 100 + Math.floor(Math.random() * 500)));
      await kill(child);
    }
    // The survivor gets a roomier renew deadline: this test is about restarts, not load.
    const final = startOperator(RESTARTS, { duration: "5", renew: "4" });
    await final.leading;

    // The "Running" runs: play the kubelet once their pods exist.
    for (const [name, kind] of expected) {
      if (kind !== "Running") continue;
      const pod = await podOf(env, `${name}-train`);
      await podRunning(env, pod.metadata.name);
    }

    const View = z.object({
      items: z.array(
        z.object({
          metadata: z.object({ name: z.string() }),
          status: z.object({ phase: z.string() }).partial().optional(),
        }),
      ),
    });
    await eventually(
      "every run to reach its expected phase",
      async () => {
        const items = View.parse(await env.client.get(lftPath(env.ns))).items;
        const wrong = items.filter((l) => l.status?.phase !== expected.get(l.metadata.name));
        if (items.length !== RUNS || wrong.length > 0) {
          throw new Error(
            `${wrong.length} of ${items.length} not there yet, e.g. ${wrong
              .slice(0, 3)
              .map((l) => `${l.metadata.name}=${l.status?.phase}`)
              .join(", ")}`,
          );
        }
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );

    const jobs = await listJobs(env);
    const perOwner = new Map<string, number>();
    for (const j of jobs) {
      const owner = j.metadata.ownerReferences?.[0]?.uid ?? "none";
      perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1);
    }
    const duplicates = [...perOwner.values()].filter((n) => n > 1).length;
    assert.equal(duplicates, 0, "no run has two Jobs");
    const wantJobs = [...expected.values()].filter((k) => k !== "Failed").length;
    assert.equal(jobs.length, wantJobs, "one Job per valid run, none for refused runs");

    const lease = z
      .object({ spec: z.object({ holderIdentity: z.string(), leaseTransitions: z.number() }) })
      .parse(
        await env.client.get(
          `/apis/coordination.k8s.io/v1/namespaces/${env.ns}/leases/loraforge-operator`,
        ),
      );
    assert.equal(lease.spec.holderIdentity, `operator-${RESTARTS}`);
    assert.ok(
      lease.spec.leaseTransitions >= RESTARTS,
      `lease changed hands ${lease.spec.leaseTransitions} times`,
    );
    console.log(
      `# chaos: ${RESTARTS} kills, ${RUNS} runs, ${jobs.length} Jobs, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    await kill(final.child);
  });
});
