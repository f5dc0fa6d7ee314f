// Starts a real etcd + kube-apiserver (+ kube-controller-manager) on loopback.
//
// Everything is per run: a temp directory, free ports, a random admin token
// (token-auth-file, group system:masters), a fresh service-account signing key (so the
// TokenRequest API works), and a serving certificate the API server generates itself in
// --cert-dir. The processes are killed on stop(), on the parent's exit, and by a
// watchdog process if the parent dies without running its exit handlers.

import type { ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient } from "@loraforge/kube";
import { ensureBinaries } from "./binaries.ts";
import { restoreFromFile } from "./host.mjs";
import { type Connection, readKubeconfig, renderKubeconfig } from "./kubeconfig.ts";
import {
  acquireNodeLock,
  type HostPreparation,
  NODE_IP,
  NODE_NAME,
  prepareHost,
  readNodeDescription,
  SERVICE_CIDR,
  startNode,
  type TestNode,
} from "./node.ts";
import {
  type Component,
  freePort,
  launch,
  startWatchdog,
  terminate,
  waitReady,
} from "./processes.ts";

export interface ClusterOptions {
  /** Also run kube-controller-manager with the Job and garbage-collector controllers. */
  controllerManager?: boolean;
  /**
   * Also run a real node (containerd, kubelet, kube-scheduler, kube-proxy, local volumes);
   * implies the controller manager. Needs root and changes the host until stop().
   */
  node?: boolean;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
  /** Readiness deadline for each component (default 180 s; 2 shared cores are slow). */
  startTimeoutMs?: number;
}

export interface TestCluster extends Connection {
  kubeconfigPath: string;
  /** The kubeconfig file's text (YAML). */
  kubeconfig: string;
  /** gitVersion from the API server's /version, e.g. "v1.34.4". */
  version: string;
  client: KubeClient;
  /** The run's directory (logs, certificates, etcd data); undefined for a shared cluster. */
  dir: string | undefined;
  controllerManager: boolean;
  /** The real node, when started with `node: true` (undefined for a shared cluster's client). */
  node: TestNode | undefined;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const timeoutMs = options.startTimeoutMs ?? 180_000;
  const started = Date.now();
  const bin = await ensureBinaries(log);

  const withNode = Boolean(options.node);
  const withKcm = withNode || Boolean(options.controllerManager);
  const dir = mkdtempSync(join(tmpdir(), "loraforge-k8s-"));
  const components: Component[] = [];
  let watchdog: ChildProcess | undefined;
  let host: HostPreparation | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const component of [...components].reverse()) await terminate(component);
    if (host) {
      const restoreStarted = Date.now();
      const problems = restoreFromFile(host.restorePath);
      const seconds = ((Date.now() - restoreStarted) / 1000).toFixed(1);
      if (problems.length > 0) log(`[k8s] host not fully restored:\n${problems.join("\n")}`);
      else log(`[k8s] node stopped, host restored in ${seconds} s`);
    }
    watchdog?.kill("SIGKILL");
    if (!process.env.LORAFORGE_K8S_KEEP) rmSync(dir, { recursive: true, force: true });
  };

  try {
    // The node's IP must exist before the API server binds to it.
    if (withNode) {
      await acquireNodeLock(log);
      host = prepareHost(dir, bin);
    }
    const [etcdClientPort, etcdPeerPort, apiPort, kcmPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);

    // --- etcd ---------------------------------------------------------------------------
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = launch(
      "etcd",
      bin.etcd,
      [
        "--name=default",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        "--unsafe-no-fsync=true", // test data: speed over durability
        "--log-level=warn",
      ],
      dir,
    );
    components.push(etcd);
    await waitReady(
      etcd,
      async () => {
        const res = await fetch(`${etcdUrl}/health`);
        const body = (await res.json()) as { health?: string };
        return body.health === "true";
      },
      timeoutMs,
    );

    // --- kube-apiserver ---------------------------------------------------------------
    const token = randomBytes(32).toString("hex");
    await writeFile(
      join(dir, "tokens.csv"),
      `${token},admin,admin-uid,"system:masters"\n${host?.nodeTokenLine ?? ""}`,
      { mode: 0o600 },
    );
    const signer = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    await writeFile(join(dir, "sa-signer.pub"), signer.publicKey);
    await writeFile(join(dir, "sa-signer.key"), signer.privateKey, { mode: 0o600 });

    // With a node, pods reach the API server at the node's IP (behind the `kubernetes`
    // Service); without one it stays on loopback.
    const apiHost = withNode ? NODE_IP : "127.0.0.1";
    const server = `https://${apiHost}:${apiPort}`;
    const certDir = join(dir, "apiserver-certs");
    const apiserver = launch(
      "kube-apiserver",
      bin.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${certDir}`, // the API server writes a self-signed serving cert here
        `--secure-port=${apiPort}`,
        `--bind-address=${apiHost}`,
        // Without it the API server looks up the default route's interface and fails
        // on machines that have none.
        `--advertise-address=${apiHost}`,
        // The benchmarking block, so that no test ever sends to a private range.
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        "--allow-privileged=true",
        `--authorization-mode=${withNode ? "Node,RBAC" : "RBAC"}`,
        `--token-auth-file=${join(dir, "tokens.csv")}`,
        ...(withNode
          ? // The kubelet's logs/exec endpoint by the node's IP, not its (unresolvable) name.
            ["--kubelet-preferred-address-types=InternalIP"]
          : // No serviceaccount controller runs, so pods must not require a ServiceAccount.
            ["--disable-admission-plugins=ServiceAccount"]),
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${join(dir, "sa-signer.pub")}`,
        `--service-account-signing-key-file=${join(dir, "sa-signer.key")}`,
        "--profiling=false",
      ],
      dir,
    );
    components.push(apiserver);
    const certFile = join(certDir, "apiserver.crt");
    let caPem = "";
    let client: KubeClient | undefined;
    await waitReady(
      apiserver,
      async () => {
        if (!client) {
          if (!existsSync(certFile)) return false;
          // The file holds the serving certificate followed by the CA that signed it.
          caPem = readFileSync(certFile, "utf8");
          if (!caPem.includes("END CERTIFICATE")) return false;
          client = KubeClient.connect({ server, token, caPem });
        }
        const res = await client.request("GET", "/readyz", undefined, undefined, 5_000);
        return res.status === 200;
      },
      timeoutMs,
    );
    if (!client) throw new Error("unreachable: API server ready without a client");
    const version = await apiVersion(client);

    const connection: Connection = { server, token, caPem };
    const kubeconfig = renderKubeconfig(connection);
    const kubeconfigPath = join(dir, "kubeconfig.yaml");
    await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 });

    // --- kube-controller-manager ----------------------------------------------------
    if (withKcm) {
      const kcmCertDir = join(dir, "kcm-certs");
      const kcm = launch(
        "kube-controller-manager",
        bin.kubeControllerManager,
        [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          `--controllers=${[
            "job-controller",
            "garbage-collector-controller",
            ...(withNode
              ? [
                  // Pods get the `default` ServiceAccount and the kube-root-ca.crt ConfigMap
                  // their projected token volume needs; claims bind; Services get endpoints.
                  "serviceaccount-controller",
                  "root-ca-certificate-publisher-controller",
                  "persistentvolume-binder-controller",
                  "endpointslice-controller",
                  "pod-garbage-collector-controller",
                  // Lifts the not-ready taint the kubelet registers with once the node is Ready.
                  "node-lifecycle-controller",
                  // A Deployment (the operator installed by the Helm chart) gets its pods.
                  "deployment-controller",
                  "replicaset-controller",
                ]
              : []),
          ].join(",")}`,
          ...(withNode ? [`--root-ca-file=${certFile}`] : []),
          "--leader-elect=false",
          // A secure port only so that /healthz tells us when it is up.
          `--secure-port=${kcmPort}`,
          "--bind-address=127.0.0.1",
          `--cert-dir=${kcmCertDir}`,
          "--profiling=false",
        ],
        dir,
      );
      components.push(kcm);
      const kcmCert = join(kcmCertDir, "kube-controller-manager.crt");
      let kcmClient: KubeClient | undefined;
      await waitReady(
        kcm,
        async () => {
          if (!kcmClient) {
            if (!existsSync(kcmCert)) return false;
            kcmClient = KubeClient.connect({
              server: `https://127.0.0.1:${kcmPort}`,
              token,
              caPem: readFileSync(kcmCert, "utf8"),
            });
          }
          const res = await kcmClient.request("GET", "/healthz", undefined, undefined, 5_000);
          return res.status === 200;
        },
        timeoutMs,
      );
    }

    const spawnWatchdog = () => {
      watchdog?.kill("SIGKILL");
      const keep = Boolean(process.env.LORAFORGE_K8S_KEEP);
      watchdog = startWatchdog(keep ? undefined : dir, components, host?.restorePath);
    };
    spawnWatchdog();

    let node: TestNode | undefined;
    if (host) {
      node = await startNode({
        dir,
        bin,
        connection,
        adminKubeconfigPath: kubeconfigPath,
        client,
        nodeToken: host.nodeToken,
        components,
        timeoutMs,
        log,
      });
      spawnWatchdog(); // now watching the node's processes too
    }

    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const parts = withNode
      ? `etcd, kube-controller-manager, node ${NODE_NAME}`
      : withKcm
        ? "etcd, kube-controller-manager"
        : "etcd";
    log(
      `[k8s] kube-apiserver ${version} ready at ${server} in ${seconds} s (with ${parts}; ${dir})`,
    );
    return {
      ...connection,
      kubeconfigPath,
      kubeconfig,
      version,
      client,
      dir,
      controllerManager: withKcm,
      node,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function apiVersion(client: KubeClient): Promise<string> {
  const body = (await client.get("/version")) as { gitVersion?: unknown };
  if (typeof body.gitVersion !== "string") {
    throw new Error(`/version has no gitVersion: ${JSON.stringify(body)}`);
  }
  return body.gitVersion;
}

/**
 * The cluster for a test file: the shared one named by LORAFORGE_TEST_KUBECONFIG (started
 * by with-cluster.ts or `npm test`, which also set LORAFORGE_TEST_CONTROLLER_MANAGER=1, and
 * LORAFORGE_TEST_NODE when it runs a node; stop() leaves it running), else a fresh one of
 * its own.
 */
export async function connectTestCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const path = process.env.LORAFORGE_TEST_KUBECONFIG;
  const sharedHasKcm = process.env.LORAFORGE_TEST_CONTROLLER_MANAGER === "1";
  const sharedNode = process.env.LORAFORGE_TEST_NODE;
  if (!path || (options.controllerManager && !sharedHasKcm) || (options.node && !sharedNode)) {
    return startCluster(options);
  }
  const connection = readKubeconfig(path);
  const client = KubeClient.connect(connection);
  const version = await apiVersion(client);
  return {
    ...connection,
    kubeconfigPath: path,
    kubeconfig: readFileSync(path, "utf8"),
    version,
    client,
    dir: undefined,
    controllerManager: sharedHasKcm,
    node: sharedNode ? readNodeDescription(sharedNode) : undefined,
    stop: async () => {},
  };
}
