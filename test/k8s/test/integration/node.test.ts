// The harness's real node against itself: containerd + runc + bridge CNI, kubelet,
// kube-scheduler and kube-proxy on this machine, driven only through the API server.
// It owns its cluster (one node per machine: run it while no shared node is up), and ends
// by checking that stop() — and a SIGINT to with-cluster.ts — put the host back.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import { hostDifferences, snapshotHost } from "../../src/host.mjs";
import { BUSYBOX_IMAGE } from "../../src/images.ts";
import { eventually, startCluster, type TestCluster } from "../../src/index.ts";
import { NODE_IP, NODE_NAME } from "../../src/node.ts";

const Pod = z.object({
  metadata: z.object({ name: z.string(), creationTimestamp: z.string() }),
  spec: z.object({ nodeName: z.string().optional() }),
  status: z.object({
    phase: z.string().optional(),
    podIP: z.string().optional(),
    containerStatuses: z
      .array(
        z.object({
          state: z.object({
            running: z.object({ startedAt: z.string() }).optional(),
            terminated: z.object({ startedAt: z.string() }).optional(),
          }),
        }),
      )
      .optional(),
  }),
});

const NS = "node-test";
const hostBefore = snapshotHost();
let cluster: TestCluster;

function pod(name: string, script: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "main",
          image: BUSYBOX_IMAGE,
          imagePullPolicy: "Never",
          command: ["/bin/sh", "-c", script],
          ...((extra.container as object | undefined) ?? {}),
        },
      ],
      ...((extra.spec as object | undefined) ?? {}),
    },
  };
}

async function phase(name: string, wanted: string[], timeoutMs = 120_000) {
  return eventually(
    `pod ${name} to reach ${wanted.join("/")}`,
    async () => {
      const p = Pod.parse(await cluster.client.get(`/api/v1/namespaces/${NS}/pods/${name}`));
      if (wanted.includes(p.status.phase ?? "")) return p;
      throw new Error(`pod ${name} is ${JSON.stringify(p.status)}`);
    },
    { timeoutMs, intervalMs: 250 },
  );
}

async function logs(name: string): Promise<string> {
  const res = await cluster.client.request("GET", `/api/v1/namespaces/${NS}/pods/${name}/log`);
  assert.equal(res.status, 200, `logs of ${name}: ${JSON.stringify(res.body)}`);
  return String(res.body);
}

describe("a real node", { timeout: 600_000 }, () => {
  before(async () => {
    cluster = await startCluster({ node: true });
    await cluster.client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: NS },
    });
    // The serviceaccount controller makes `default`; pods are refused until it exists.
    await eventually("the default ServiceAccount", async () =>
      (await cluster.client.request("GET", `/api/v1/namespaces/${NS}/serviceaccounts/default`))
        .status === 200
        ? true
        : undefined,
    );
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the node registers Ready with its on-machine InternalIP", async () => {
    const node = z
      .object({
        status: z.object({
          addresses: z.array(z.object({ type: z.string(), address: z.string() })),
          conditions: z.array(z.object({ type: z.string(), status: z.string() })),
        }),
      })
      .parse(await cluster.client.get(`/api/v1/nodes/${NODE_NAME}`));
    assert.ok(node.status.conditions.some((c) => c.type === "Ready" && c.status === "True"));
    assert.ok(node.status.addresses.some((a) => a.type === "InternalIP" && a.address === NODE_IP));
  });

  test("a pod of a locally imported image runs, and its logs come back over the API", async () => {
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      pod("hello", "echo hello from $(hostname); sleep 1"),
    );
    const running = await phase("hello", ["Running", "Succeeded"]);
    const started =
      running.status.containerStatuses?.[0]?.state.running?.startedAt ??
      running.status.containerStatuses?.[0]?.state.terminated?.startedAt;
    const seconds =
      (Date.parse(started ?? "") - Date.parse(running.metadata.creationTimestamp)) / 1000;
    process.stderr.write(
      `[node.test] pod creation → container started: ${seconds} s (1 s resolution)\n`,
    );
    assert.equal(running.spec.nodeName, NODE_NAME, "scheduled by kube-scheduler onto the node");
    assert.match(
      running.status.podIP ?? "",
      /^198\.18\.0\.\d+$/,
      "pod IP from the bridge's 198.18.0.0/24",
    );
    await phase("hello", ["Succeeded"]);
    assert.equal((await logs("hello")).trim(), "hello from hello");
  });

  test("a Job's pod completes (controller-manager + scheduler + kubelet)", async () => {
    const job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "count", namespace: NS },
      spec: {
        backoffLimit: 0,
        template: { spec: pod("unused", "echo done").spec },
      },
    };
    await cluster.client.create(`/apis/batch/v1/namespaces/${NS}/jobs`, job);
    await eventually(
      "Job count to complete",
      async () => {
        const body = z
          .object({
            status: z
              .object({ succeeded: z.number().optional(), failed: z.number().optional() })
              .optional(),
          })
          .parse(await cluster.client.get(`/apis/batch/v1/namespaces/${NS}/jobs/count`));
        if (body.status?.failed)
          throw new Error(`Job count failed: ${JSON.stringify(body.status)}`);
        return body.status?.succeeded === 1 ? true : undefined;
      },
      { timeoutMs: 120_000 },
    );
  });

  test("a pod reaches the API server through the kubernetes Service with its service-account token", async () => {
    // KUBERNETES_SERVICE_HOST is the Service's ClusterIP: kube-proxy's iptables rules take
    // the connection to the API server on the node's IP.
    const script = [
      "token=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)",
      'echo "service $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"',
      "wget -q -O - --no-check-certificate --header \"Authorization: Bearer $token\" --header 'Content-Type: application/json'" +
        ` --post-data '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'` +
        " https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/apis/authentication.k8s.io/v1/selfsubjectreviews",
    ].join("; ");
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, pod("whoami", script));
    const done = await phase("whoami", ["Succeeded", "Failed"]);
    const text = await logs("whoami");
    assert.equal(done.status.phase, "Succeeded", text);
    assert.match(text, /^service 198\.19\.0\.1:443$/m);
    assert.match(text, new RegExp(`"username":\\s*"system:serviceaccount:${NS}:default"`));
  });

  test("a claim binds to a local volume, and a pod's file lands on the host", async () => {
    await cluster.client.create(`/api/v1/namespaces/${NS}/persistentvolumeclaims`, {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "runs", namespace: NS },
      spec: {
        accessModes: ["ReadWriteOnce"],
        resources: { requests: { storage: "1Gi" } },
        selector: { matchLabels: { "loraforge.dev/volume": "runs" } },
      },
    });
    await eventually("claim runs to bind", async () => {
      const claim = z
        .object({
          spec: z.object({ volumeName: z.string().optional() }),
          status: z.object({ phase: z.string().optional() }),
        })
        .parse(await cluster.client.get(`/api/v1/namespaces/${NS}/persistentvolumeclaims/runs`));
      return claim.status.phase === "Bound" ? claim : undefined;
    });
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      pod("writer", "echo adapter-bytes > /runs/out.txt", {
        container: { volumeMounts: [{ name: "runs", mountPath: "/runs" }] },
        spec: { volumes: [{ name: "runs", persistentVolumeClaim: { claimName: "runs" } }] },
      }),
    );
    await phase("writer", ["Succeeded"]);
    const runsDir = cluster.node?.volumeDirs.runs ?? "";
    assert.equal(readFileSync(join(runsDir, "out.txt"), "utf8"), "adapter-bytes\n");
  });

  test("the Eviction API evicts a running pod", async () => {
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, pod("victim", "sleep 3600"));
    await phase("victim", ["Running"]);
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods/victim/eviction`, {
      apiVersion: "policy/v1",
      kind: "Eviction",
      metadata: { name: "victim", namespace: NS },
    });
    await eventually(
      "the evicted pod to be gone",
      async () => {
        const res = await cluster.client.request("GET", `/api/v1/namespaces/${NS}/pods/victim`);
        return res.status === 404 ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
  });

  test("stop() puts the host back as it was", async () => {
    await cluster.stop();
    assert.deepEqual(hostDifferences(hostBefore), []);
  });

  test("with-cluster.ts --node shares its node; after SIGINT the host is as before", async () => {
    const withCluster = join(import.meta.dirname, "..", "..", "with-cluster.ts");
    const probe = join(import.meta.dirname, "..", "support", "shared-node-probe.ts");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", withCluster, "--node", "--", process.execPath, "--import", "tsx", probe],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    await new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes(`shared node ${NODE_NAME} ok`)) resolve();
      });
      child.on("exit", (code) =>
        reject(new Error(`with-cluster.ts exited (${code}) early:\n${stderr}`)),
      );
    });
    child.kill("SIGINT");
    await eventually(
      "the watchdog to restore the host and release the node lock",
      async () => (existsSync("/run/loraforge-k8s-node.lock") ? undefined : true),
      { timeoutMs: 60_000 },
    );
    assert.deepEqual(hostDifferences(hostBefore), []);
  });

  test("the watchdog restores the host when its parent is killed (SIGKILL)", async () => {
    // A host change of the kind a node makes (a new link, a sysctl), recorded in a restore
    // plan as stop() would; the "parent" is a process that then dies.
    const dir = mkdtempSync(join(tmpdir(), "loraforge-watchdog-"));
    const plan = join(dir, "host-restore.json");
    writeFileSync(plan, JSON.stringify({ snapshot: snapshotHost(), cleanups: [] }));
    const routeLocalnet = "/proc/sys/net/ipv4/conf/all/route_localnet";
    const before = readFileSync(routeLocalnet, "utf8").trim();
    writeFileSync(routeLocalnet, before === "1" ? "0" : "1");
    const link = spawnSync("ip", [
      "link",
      "add",
      "lfwatch0",
      "type",
      "veth",
      "peer",
      "name",
      "lfwatch0p",
    ]);
    assert.equal(link.status, 0, String(link.stderr));
    const parent = spawn("sleep", ["600"], { stdio: "ignore" });
    const watchdog = spawn(
      process.execPath,
      [join(import.meta.dirname, "..", "..", "src", "watchdog.mjs"), String(parent.pid), dir, plan],
      { stdio: "ignore" },
    );
    const watchdogExit = new Promise((resolve) => watchdog.on("exit", resolve));
    parent.kill("SIGKILL");
    await watchdogExit;
    assert.deepEqual(hostDifferences(hostBefore), []);
    assert.equal(existsSync(dir), false, "the watchdog removes the run's directory");
  });

  test("a second node on the same machine waits for the first, then starts", async () => {
    // another live process holds the lock (as a second e2e file's does while the first runs)
    const lock = "/run/loraforge-k8s-node.lock";
    const holder = spawn("sleep", ["600"], { stdio: "ignore" });
    mkdirSync(lock);
    writeFileSync(join(lock, "pid"), String(holder.pid));
    const lines: string[] = [];
    let second: TestCluster | undefined;
    try {
      let started = false;
      const starting = startCluster({ node: true, log: (l) => lines.push(l) }).then((c) => {
        started = true;
        second = c;
        return c;
      });
      await eventually("the second start to say it waits", async () =>
        lines.some((l) => l.includes(`waiting for the node of pid ${holder.pid} to stop`))
          ? true
          : undefined,
      );
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(started, false, "no node starts while the lock is held");
      holder.kill("SIGKILL"); // the first node's process ends: its lock is stale
      const cluster = await starting;
      assert.equal(cluster.node?.name, NODE_NAME);
    } finally {
      holder.kill("SIGKILL");
      await second?.stop();
      if (!second) rmSync(lock, { recursive: true, force: true });
    }
    assert.equal(existsSync(lock), false, "the lock is released with the node");
    assert.deepEqual(hostDifferences(hostBefore), []);
  });
});
