// Benchmark: N LoraFineTunes → N Jobs. Starts its own API server (no controller manager,
// so no pods: this measures the operator, not the Job controller), creates N resources,
// then starts the bundled operator as a plain node process and reports the time until
// every Job exists and every status is written, with the operator's RSS. A backlog of N
// is what an operator meets after an upgrade or a restart; creating the resources is
// timed on its own, since on a small machine it is the API server's work that dominates.
//
//   npm run bench -w @loraforge/operator -- [N=1000] [workers=8]

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { paths } from "@loraforge/kube";
import { eventually, startCluster } from "@loraforge/test-k8s";
import { z } from "zod";
import { buildJob, buildSpecConfigMap } from "../src/builders/job.ts";
import { buildRole, buildRoleBinding, buildServiceAccount } from "../src/builders/rbac.ts";
import { bundleOperator } from "../test/support/bundle.ts";
import { installCrd } from "../test/support/cluster.ts";
import { lft, manifest } from "../test/support/fixtures.ts";

const N = Number(process.argv[2] ?? 1000);
const WORKERS = process.argv[3] ?? "16";
const TARGET_S = 60;
const TARGET_MB = 150;

function rssKiB(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

async function main() {
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const cluster = await startCluster({ controllerManager: false, log });
  const client = cluster.client;
  let op: ChildProcess | undefined;
  try {
    await installCrd(client);
    const ns = "bench";
    await client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
    const c0 = Date.now();
    // Create with bounded concurrency, as a user's kubectl/CI would.
    let next = 0;
    const creators = Array.from({ length: 16 }, async () => {
      for (;;) {
        const i = next++;
        if (i >= N) return;
        await client.create(paths.lfts(ns), manifest({ name: `run-${i}` }));
      }
    });
    await Promise.all(creators);
    const created = (Date.now() - c0) / 1000;
    const entry = await bundleOperator();
    const t0 = Date.now();
    op = spawn(process.execPath, [entry], {
      env: {
        ...process.env,
        KUBECONFIG: cluster.kubeconfigPath,
        LORAFORGE_TRAINER_IMAGE: "ghcr.io/loraforge/trainer:bench",
        LORAFORGE_LEADER_ELECT: "false",
        LORAFORGE_HTTP_PORT: "0",
        LORAFORGE_WORKERS: WORKERS,
        LORAFORGE_LOG_LEVEL: "warn",
        LORAFORGE_DEFAULT_MEMORY: "48Gi",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const pid = op.pid as number;
    let peak = 0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKiB(pid).rss);
      } catch {
        // exited
      }
    }, 100);

    const Count = z.object({
      items: z.array(z.unknown()),
      metadata: z.object({ remainingItemCount: z.number().optional() }),
    });
    const count = async (path: string) => {
      const b = Count.parse(await client.get(`${path}?limit=1`));
      return b.items.length + (b.metadata.remainingItemCount ?? 0);
    };
    await eventually(
      `${N} Jobs`,
      async () => ((await count(`/apis/batch/v1/namespaces/${ns}/jobs`)) >= N ? true : undefined),
      { timeoutMs: 600_000, intervalMs: 250 },
    );
    const jobsAt = (Date.now() - t0) / 1000;
    const Phases = z.object({
      items: z.array(z.object({ status: z.object({ phase: z.string() }).partial().optional() })),
    });
    await eventually(
      "every status written",
      async () => {
        const items = Phases.parse(await client.get(paths.lfts(ns))).items;
        return items.filter((i) => i.status?.phase === "Pending").length >= N ? true : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 1000 },
    );
    const statusAt = (Date.now() - t0) / 1000;
    clearInterval(sampler);
    const final = rssKiB(pid);
    peak = Math.max(peak, final.hwm);
    op.kill("SIGKILL");

    // Reference: the API server's floor for the same work — the objects the operator
    // creates per run (ServiceAccount, Role, RoleBinding, ConfigMap, Job), created
    // directly by 16 concurrent clients, with no operator in between.
    const refNs = "bench-reference";
    await client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: refNs },
    });
    const settings = {
      trainerImage: "ghcr.io/loraforge/trainer:bench",
      pullPolicy: "IfNotPresent" as const,
      backoffLimit: 3,
      gpuProduct: "Tesla-V100-SXM2-32GB",
      pod: {
        terminationGracePeriodSeconds: 120,
        defaultMemory: "48Gi",
        tmpSizeLimit: "8Gi",
        outputSizeLimit: "20Gi",
        imagePullSecrets: [],
      },
    };
    const r0 = Date.now();
    let refNext = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (;;) {
          const i = refNext++;
          if (i >= N) return;
          const run = {
            lft: lft({
              name: `ref-${i}`,
              namespace: refNs,
              uid: `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`,
            }),
            uid: `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`,
            namespace: refNs,
          };
          await Promise.all([
            client.create(`/api/v1/namespaces/${refNs}/serviceaccounts`, buildServiceAccount(run)),
            client.create(
              `/apis/rbac.authorization.k8s.io/v1/namespaces/${refNs}/roles`,
              buildRole(run),
            ),
            client.create(
              `/apis/rbac.authorization.k8s.io/v1/namespaces/${refNs}/rolebindings`,
              buildRoleBinding(run),
            ),
            client.create(`/api/v1/namespaces/${refNs}/configmaps`, buildSpecConfigMap(run)),
          ]);
          await client.create(`/apis/batch/v1/namespaces/${refNs}/jobs`, buildJob(run, settings));
        }
      }),
    );
    const referenceS = (Date.now() - r0) / 1000;
    const mb = (kib: number) => (kib / 1024).toFixed(0);

    const rows = [
      ["resources", String(N), ""],
      ["operator workers", WORKERS, ""],
      [
        "N LoraFineTunes created by a client, before the operator starts (s)",
        created.toFixed(1),
        "API server only",
      ],
      [
        "operator started → all Jobs exist (s)",
        jobsAt.toFixed(1),
        `≤ ${TARGET_S} s: ${jobsAt <= TARGET_S ? "met" : "MISSED"}`,
      ],
      ["operator started → all statuses written (s)", statusAt.toFixed(1), ""],
      [
        "reference: same objects created directly, no operator (s)",
        referenceS.toFixed(1),
        "API server floor",
      ],
      [
        "operator RSS peak (MB)",
        mb(peak),
        `≤ ${TARGET_MB} MB: ${peak / 1024 <= TARGET_MB ? "met" : "MISSED"}`,
      ],
      ["operator RSS with N runs cached, after (MB)", mb(final.rss), ""],
    ];
    console.log(
      `\nLoraFineTune → Job benchmark (kube-apiserver ${cluster.version}, ${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(1)} at the end, node ${process.version})\n`,
    );
    console.log("| measure | value | target |\n| --- | --- | --- |");
    for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
  } finally {
    op?.kill("SIGKILL");
    await cluster.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
