// A real node for the test cluster: containerd (runc, cgroupfs) with a private root, state
// and socket, the bridge CNI plugin, kube-scheduler, the kubelet and kube-proxy (iptables),
// plus a local StorageClass with hostPath PersistentVolumes for `models`, `datasets` and
// `runs` claims.
//
// Every address stays on this machine, in the benchmarking block 198.18.0.0/15: the node's
// IP sits on a host-only veth pair (created here before the API server starts, so it can
// bind to it), pods get 198.18.0.0/24, Services 198.19.0.0/24. The host changes the node makes
// (sysctls, iptables chains, netns, the bridge, cgroups, /var/lib/kubelet …) are recorded
// before it starts and undone by restoreFromFile() (host.mjs) on stop, or by the watchdog.
// Only one node can run on a machine at a time (the kubelet and kube-proxy own host-wide
// paths and iptables chains); a lock directory enforces that.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KubeClient } from "@loraforge/kube";
import { stringify } from "yaml";
import type { K8sBinaries } from "./binaries.ts";
import { snapshotHost } from "./host.mjs";
import { ensureTestImages } from "./images.ts";
import type { Connection } from "./kubeconfig.ts";
import { renderKubeconfig } from "./kubeconfig.ts";
import { type Component, freePort, launch, waitReady } from "./processes.ts";

export const NODE_NAME = "loraforge-node";
/** The node's InternalIP; the API server binds here so pods reach it. */
export const NODE_IP = "198.18.255.1";
export const POD_CIDR = "198.18.0.0/24";
const POD_GATEWAY = "198.18.0.1";
export const SERVICE_CIDR = "198.19.0.0/24";
export const STORAGE_CLASS = "loraforge-local";
/** The claims the local PersistentVolumes are made for (one volume each). */
export const VOLUME_NAMES = ["models", "datasets", "runs"] as const;
const BRIDGE = "lfbr0";
/** The host link that carries NODE_IP. */
const NODE_LINK = "lfnode0";
const LOCK = "/run/loraforge-k8s-node.lock";

export interface HostPreparation {
  /** The restore plan restoreFromFile() runs. */
  restorePath: string;
  /** The token-file line that makes the kubelet user system:node:<name> in system:nodes. */
  nodeTokenLine: string;
  nodeToken: string;
}

function ip(args: string[], what: string) {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.error || result.status !== 0) {
    throw new Error(
      `${what}: \`ip ${args.join(" ")}\` failed: ${result.error?.message ?? result.stderr.trim()}`,
    );
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Another live process holds the node lock. */
class NodeBusyError extends Error {
  override name = "NodeBusyError";
  constructor(readonly owner: number) {
    super(
      `${LOCK}: a test node already runs on this machine (pid ${owner}); the kubelet and kube-proxy own host-wide state, so only one node at a time`,
    );
  }
}

/** Takes the machine's node lock; a no-op when this process holds it already. */
function takeLock() {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "pid"), String(process.pid));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(
        readFileSync(join(LOCK, "pid"), { encoding: "utf8", flag: "a+" }).trim(),
      );
      if (owner === process.pid) return;
      if (owner && processAlive(owner)) throw new NodeBusyError(owner);
      rmSync(LOCK, { recursive: true, force: true }); // its owner died
    }
  }
  throw new Error(`${LOCK}: could not take the node lock`);
}

/**
 * Waits for the machine's node lock and takes it: test files that each start a node (the
 * e2e workspace) run one after another even where the test runner starts them side by side
 * (it runs as many files at once as the machine has cores, less one).
 */
export async function acquireNodeLock(
  log: (line: string) => void,
  timeoutMs = 40 * 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      takeLock();
      return;
    } catch (error) {
      if (!(error instanceof NodeBusyError) || Date.now() > deadline) throw error;
      if (!said) log(`waiting for the node of pid ${error.owner} to stop (one node per machine)`);
      said = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** Checks what the node needs from the host, records the host, and adds the node's IP. */
export function prepareHost(dir: string, bin: K8sBinaries): HostPreparation {
  if (process.getuid?.() !== 0)
    throw new Error("a test node needs root (the kubelet, containerd, iptables)");
  for (const [path, pkg] of [
    ["/usr/bin/containerd", "containerd"],
    ["/usr/sbin/runc", "runc"],
    ["/usr/lib/cni/bridge", "containernetworking-plugins"],
    ["/usr/sbin/iptables", "iptables"],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${path} is missing: apt-get install ${pkg}`);
  }
  takeLock();
  const restorePath = join(dir, "host-restore.json");
  const snapshot = snapshotHost();
  writeFileSync(
    restorePath,
    JSON.stringify({
      snapshot,
      cleanups: [[bin.kubeProxy, "--cleanup"]],
      shimAddress: containerdSocket(dir),
      unmount: dir,
      lock: LOCK,
    }),
  );
  // The machine may lack the dummy link type; a veth pair whose ends both stay on the
  // host works everywhere. (Not the CNI bridge: the bridge plugin refuses a bridge that
  // already carries another IPv4 address.)
  ip(
    ["link", "add", NODE_LINK, "type", "veth", "peer", "name", `${NODE_LINK}p`],
    "creating the node's link",
  );
  ip(["addr", "add", `${NODE_IP}/32`, "dev", NODE_LINK], "giving the node its IP");
  ip(["link", "set", `${NODE_LINK}p`, "up"], "bringing the node's link up");
  ip(["link", "set", NODE_LINK, "up"], "bringing the node's link up");
  const nodeToken = randomBytes(32).toString("hex");
  return {
    restorePath,
    nodeToken,
    nodeTokenLine: `${nodeToken},system:node:${NODE_NAME},node-uid,"system:nodes"\n`,
  };
}

function containerdSocket(dir: string) {
  return join(dir, "containerd", "containerd.sock");
}

export interface NodeContext {
  dir: string;
  bin: K8sBinaries;
  /** The admin connection (scheduler, kube-proxy and the harness use it). */
  connection: Connection;
  adminKubeconfigPath: string;
  client: KubeClient;
  nodeToken: string;
  components: Component[];
  timeoutMs: number;
  log: (line: string) => void;
}

/** What a test process needs to use a node another process started (see describeNode()). */
export interface NodeDescription {
  name: string;
  ip: string;
  /** The containerd socket (for `ctr --address`). */
  containerdSocket: string;
  /** Host directory behind each local PersistentVolume, by claim name. */
  volumeDirs: Record<(typeof VOLUME_NAMES)[number], string>;
}

export interface TestNode extends NodeDescription {
  name: string;
  ip: string;
  /** Imports an image archive (docker save or OCI layout tar) for `imagePullPolicy: Never`. */
  importImage(tarPath: string, ref: string): void;
}

function containerdConfig(dir: string): string {
  const d = join(dir, "containerd");
  return `version = 2
root = "${d}/root"
state = "${d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${d}/containerd.sock"
[ttrpc]
  address = "${d}/containerd.sock.ttrpc"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "${d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "loraforge.local/pause:test"
  # The sandbox lacks CAP_SYS_RESOURCE: runc cannot set the negative oom_score_adj of
  # the pause container, so keep every score at or above containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni/net.d"
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "loraforge",
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false, // nothing leaves the machine
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: join(dir, "cni", "ipam"),
            ranges: [[{ subnet: POD_CIDR, gateway: POD_GATEWAY }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
      ],
    },
    null,
    2,
  );
}

async function healthz(url: string): Promise<boolean> {
  try {
    const res = await fetch(url);
    return res.status === 200;
  } catch {
    return false;
  }
}

export async function startNode(ctx: NodeContext): Promise<TestNode> {
  const { dir, bin, log, timeoutMs } = ctx;
  const started = Date.now();
  const images = ensureTestImages(log);
  const socket = containerdSocket(dir);

  // --- containerd -------------------------------------------------------------------------
  mkdirSync(join(dir, "containerd"), { recursive: true });
  mkdirSync(join(dir, "cni", "net.d"), { recursive: true });
  writeFileSync(join(dir, "containerd", "config.toml"), containerdConfig(dir));
  const containerd = launch(
    "containerd",
    "/usr/bin/containerd",
    ["--config", join(dir, "containerd", "config.toml")],
    dir,
  );
  ctx.components.push(containerd);
  await waitReady(containerd, async () => ctr(socket, ["version"]).ok, timeoutMs);
  const importImage = importer(socket);
  for (const image of images) importImage(image.tarPath, image.ref);
  writeFileSync(join(dir, "cni", "net.d", "10-loraforge.conflist"), cniConfig(dir));

  // --- kube-scheduler -----------------------------------------------------------------------
  const [schedulerPort, kubeletPort, kubeletHealthzPort, proxyHealthzPort, proxyMetricsPort] =
    await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const scheduler = launch(
    "kube-scheduler",
    bin.kubeScheduler,
    [
      `--kubeconfig=${ctx.adminKubeconfigPath}`,
      `--authentication-kubeconfig=${ctx.adminKubeconfigPath}`,
      `--authorization-kubeconfig=${ctx.adminKubeconfigPath}`,
      "--leader-elect=false",
      `--secure-port=${schedulerPort}`,
      "--bind-address=127.0.0.1",
      `--cert-dir=${join(dir, "scheduler-certs")}`,
      "--profiling=false",
    ],
    dir,
  );
  ctx.components.push(scheduler);

  // --- kubelet ---------------------------------------------------------------------------------
  const kubeletDir = join(dir, "kubelet");
  mkdirSync(join(kubeletDir, "manifests"), { recursive: true });
  const kubeletKubeconfig = join(dir, "kubelet.kubeconfig");
  writeFileSync(kubeletKubeconfig, renderKubeconfig({ ...ctx.connection, token: ctx.nodeToken }), {
    mode: 0o600,
  });
  const kubeletConfig = join(dir, "kubelet-config.yaml");
  writeFileSync(
    kubeletConfig,
    stringify({
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      address: NODE_IP,
      port: kubeletPort,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      healthzPort: kubeletHealthzPort,
      // The API server calls the kubelet (logs, exec) without a client certificate; the
      // kubelet listens only on the node's on-machine address.
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: "AlwaysAllow" },
      cgroupDriver: "cgroupfs",
      failSwapOn: false,
      failCgroupV1: false,
      containerRuntimeEndpoint: `unix://${socket}`,
      staticPodPath: join(kubeletDir, "manifests"),
      podLogsDir: join(dir, "pod-logs"),
      volumePluginDir: join(kubeletDir, "volume-plugins"),
      // Locally imported images have no registry to come back from: never collect them.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      evictionHard: { "memory.available": "100Mi" },
      serializeImagePulls: false,
      resolvConf: "",
      registerNode: true,
      nodeStatusUpdateFrequency: "2s",
      syncFrequency: "5s",
      fileCheckFrequency: "5s",
    }),
  );
  const kubelet = launch(
    "kubelet",
    bin.kubelet,
    [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${kubeletKubeconfig}`,
      `--root-dir=${kubeletDir}`,
      `--cert-dir=${join(kubeletDir, "pki")}`,
      `--node-ip=${NODE_IP}`,
      `--hostname-override=${NODE_NAME}`,
      "--v=1",
    ],
    dir,
  );
  ctx.components.push(kubelet);

  // --- kube-proxy ------------------------------------------------------------------------------
  const proxyConfig = join(dir, "kube-proxy-config.yaml");
  writeFileSync(
    proxyConfig,
    stringify({
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      clientConnection: { kubeconfig: ctx.adminKubeconfigPath },
      mode: "iptables",
      hostnameOverride: NODE_NAME,
      clusterCIDR: POD_CIDR,
      healthzBindAddress: `127.0.0.1:${proxyHealthzPort}`,
      metricsBindAddress: `127.0.0.1:${proxyMetricsPort}`,
      // NodePorts only on the node's own address (no route_localnet for 127.0.0.1).
      nodePortAddresses: [`${NODE_IP}/32`],
      // Leave the host's conntrack table settings alone.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
    }),
  );
  const proxy = launch("kube-proxy", bin.kubeProxy, [`--config=${proxyConfig}`, "--v=1"], dir);
  ctx.components.push(proxy);

  // --- ready: the node, the scheduler and kube-proxy ---------------------------------------
  await waitReady(kubelet, () => nodeReady(ctx.client), timeoutMs);
  await waitReady(proxy, () => healthz(`http://127.0.0.1:${proxyHealthzPort}/healthz`), timeoutMs);
  await waitReady(
    scheduler,
    () => schedulerHealthy(dir, schedulerPort, ctx.connection.token),
    timeoutMs,
  );

  // --- local storage -----------------------------------------------------------------------
  const volumeDirs = await createLocalVolumes(ctx.client, dir);
  log(
    `[k8s] node ${NODE_NAME} (${NODE_IP}) Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return { name: NODE_NAME, ip: NODE_IP, containerdSocket: socket, volumeDirs, importImage };
}

function ctr(socket: string, args: string[]) {
  const result = spawnSync("ctr", ["--address", socket, ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return {
    ok: !result.error && result.status === 0,
    out: result.stdout ?? "",
    err: result.stderr || String(result.error ?? ""),
  };
}

async function schedulerHealthy(dir: string, port: number, token: string): Promise<boolean> {
  const cert = join(dir, "scheduler-certs", "kube-scheduler.crt");
  if (!existsSync(cert)) return false;
  const client = KubeClient.connect({
    server: `https://127.0.0.1:${port}`,
    token,
    caPem: readFileSync(cert, "utf8"),
  });
  try {
    return (await client.request("GET", "/healthz", undefined, undefined, 5_000)).status === 200;
  } catch {
    return false;
  }
}

async function nodeReady(client: KubeClient): Promise<boolean> {
  const res = await client.request(
    "GET",
    `/api/v1/nodes/${NODE_NAME}`,
    undefined,
    undefined,
    5_000,
  );
  if (res.status !== 200) return false;
  const node = res.body as {
    spec?: { taints?: { key: string }[] };
    status?: { conditions?: { type: string; status: string }[] };
  };
  const ready = (node.status?.conditions ?? []).some(
    (c) => c.type === "Ready" && c.status === "True",
  );
  // Schedulable too: the node-lifecycle controller has lifted node.kubernetes.io/not-ready.
  return ready && (node.spec?.taints ?? []).length === 0;
}

async function createLocalVolumes(client: KubeClient, dir: string) {
  await client.create("/apis/storage.k8s.io/v1/storageclasses", {
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: {
      name: STORAGE_CLASS,
      annotations: { "storageclass.kubernetes.io/is-default-class": "true" },
    },
    provisioner: "kubernetes.io/no-provisioner",
    reclaimPolicy: "Retain",
    volumeBindingMode: "Immediate",
  });
  const volumeDirs = {} as Record<(typeof VOLUME_NAMES)[number], string>;
  for (const name of VOLUME_NAMES) {
    const path = join(dir, "volumes", name);
    mkdirSync(path, { recursive: true });
    volumeDirs[name] = path;
    await client.create("/api/v1/persistentvolumes", {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: `loraforge-${name}`, labels: { "loraforge.dev/volume": name } },
      spec: {
        storageClassName: STORAGE_CLASS,
        capacity: { storage: "20Gi" },
        accessModes: ["ReadWriteOnce", "ReadWriteMany"],
        persistentVolumeReclaimPolicy: "Retain",
        hostPath: { path, type: "Directory" },
      },
    });
  }
  return volumeDirs;
}

/** `ctr images import` into the node's containerd, checking the image is then listed. */
function importer(socket: string) {
  return (tarPath: string, ref: string) => {
    const result = ctr(socket, [
      "-n",
      "k8s.io",
      "images",
      "import",
      "--snapshotter",
      "overlayfs",
      tarPath,
    ]);
    if (!result.ok)
      throw new Error(
        `importing ${tarPath} into the node's containerd failed: ${result.err.trim()}`,
      );
    const known = ctr(socket, ["-n", "k8s.io", "images", "list", "-q"])
      .out.split("\n")
      .map((line) => line.trim());
    if (
      !known.some(
        (name) =>
          name === ref || name === `docker.io/${ref}` || name === `docker.io/library/${ref}`,
      )
    ) {
      throw new Error(
        `${tarPath}: imported, but containerd does not list ${ref} (it has: ${known.filter(Boolean).join(", ")})`,
      );
    }
  };
}

/** The node as a JSON-able description, for the processes with-cluster.ts starts. */
export function describeNode(node: TestNode): NodeDescription {
  const { name, ip, containerdSocket, volumeDirs } = node;
  return { name, ip, containerdSocket, volumeDirs };
}

/** The node a description file (LORAFORGE_TEST_NODE) names. */
export function readNodeDescription(path: string): TestNode {
  let description: NodeDescription;
  try {
    description = JSON.parse(readFileSync(path, "utf8")) as NodeDescription;
  } catch (error) {
    throw new Error(
      `LORAFORGE_TEST_NODE=${path}: cannot read the node description: ${(error as Error).message}`,
    );
  }
  if (
    typeof description.containerdSocket !== "string" ||
    typeof description.volumeDirs !== "object"
  ) {
    throw new Error(
      `LORAFORGE_TEST_NODE=${path}: not a node description (no containerdSocket/volumeDirs)`,
    );
  }
  return { ...description, importImage: importer(description.containerdSocket) };
}
