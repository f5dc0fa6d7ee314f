// Starts a real etcd + kube-apiserver (+ kube-controller-manager) on loopback.
//
// Everything is per run: a temp directory, free ports, a random admin token
// (token-auth-file, group system:masters), a fresh service-account signing key (so the
// TokenRequest API works), and a serving certificate the API server generates itself in
// --cert-dir. The processes are killed on stop(), on the parent's exit, and by a
// watchdog process if the parent dies without running its exit handlers.

import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureBinaries } from "./binaries.ts";
import { type Connection, eventually, KubeClient } from "./client.ts";
import { readKubeconfig, renderKubeconfig } from "./kubeconfig.ts";

export interface ClusterOptions {
  /** Also run kube-controller-manager with the Job and garbage-collector controllers. */
  controllerManager?: boolean;
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
  stop(): Promise<void>;
}

const WATCHDOG = join(dirname(fileURLToPath(import.meta.url)), "watchdog.mjs");
const running = new Set<ChildProcess>();

function killAllNow() {
  for (const child of running) child.kill("SIGKILL");
}
process.once("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAllNow();
    // Re-raise so the default behaviour (exit with 128+n) still happens.
    process.kill(process.pid, signal);
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function tail(path: string, lines = 30): string {
  if (!existsSync(path)) return "(no log)";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

export interface Component {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<number | null>;
}

export function launch(
  name: string,
  binary: string,
  args: string[],
  dir: string,
  env?: NodeJS.ProcessEnv,
): Component {
  const logPath = join(dir, `${name}.log`);
  const fd = openSync(logPath, "a");
  const child = spawn(binary, args, { cwd: dir, stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
    child.on("error", () => {
      running.delete(child);
      resolve(-1);
    });
  });
  return { name, child, logPath, exited };
}

/** Polls `ready` until it holds, failing early (with the log's tail) if the process exits. */
export async function waitReady(
  component: Component,
  ready: () => Promise<boolean>,
  timeoutMs: number,
) {
  let exitCode: number | null | undefined;
  void component.exited.then((code) => {
    exitCode = code;
  });
  await eventually(
    `${component.name} to become ready`,
    async () => {
      if (exitCode !== undefined) {
        throw new Error(
          `${component.name} exited (${exitCode}) during startup; last lines of ` +
            `${component.logPath}:\n${tail(component.logPath)}`,
        );
      }
      return (await ready()) ? true : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  ).catch((error: Error) => {
    if (exitCode !== undefined) throw error;
    throw new Error(
      `${error.message}\nlast lines of ${component.logPath}:\n${tail(component.logPath)}`,
    );
  });
}

export async function terminate(component: Component, graceMs = 10_000) {
  if (component.child.exitCode !== null || component.child.signalCode !== null) return;
  component.child.kill("SIGTERM");
  const timer = setTimeout(() => component.child.kill("SIGKILL"), graceMs);
  await component.exited;
  clearTimeout(timer);
}

/**
 * A detached process that kills `components` (and removes `dir`) if this process dies
 * without stopping them.
 */
export function startWatchdog(dir: string | undefined, components: Component[]): ChildProcess {
  const watchdog = spawn(
    process.execPath,
    [WATCHDOG, String(process.pid), dir ?? "-", ...components.map((c) => String(c.child.pid))],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();
  return watchdog;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const timeoutMs = options.startTimeoutMs ?? 180_000;
  const started = Date.now();
  const bin = await ensureBinaries(log);

  const dir = mkdtempSync(join(tmpdir(), "loraforge-k8s-"));
  const components: Component[] = [];
  let watchdog: ChildProcess | undefined;
  const stop = async () => {
    for (const component of [...components].reverse()) await terminate(component);
    watchdog?.kill("SIGKILL");
    if (!process.env.LORAFORGE_K8S_KEEP) rmSync(dir, { recursive: true, force: true });
  };

  try {
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
    await writeFile(join(dir, "tokens.csv"), `${token},admin,admin-uid,"system:masters"\n`, {
      mode: 0o600,
    });
    const signer = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    await writeFile(join(dir, "sa-signer.pub"), signer.publicKey);
    await writeFile(join(dir, "sa-signer.key"), signer.privateKey, { mode: 0o600 });

    const server = `https://127.0.0.1:${apiPort}`;
    const certDir = join(dir, "apiserver-certs");
    const apiserver = launch(
      "kube-apiserver",
      bin.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${certDir}`, // the API server writes a self-signed serving cert here
        `--secure-port=${apiPort}`,
        "--bind-address=127.0.0.1",
        // Without it the API server looks up the default route's interface and fails
        // on machines that have none.
        "--advertise-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        `--token-auth-file=${join(dir, "tokens.csv")}`,
        // No token controller runs, so pods must not require a ServiceAccount to exist.
        "--disable-admission-plugins=ServiceAccount",
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
          client = new KubeClient({ server, token, caPem });
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
    if (options.controllerManager) {
      const kcmCertDir = join(dir, "kcm-certs");
      const kcm = launch(
        "kube-controller-manager",
        bin.kubeControllerManager,
        [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          "--controllers=job-controller,garbage-collector-controller",
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
            kcmClient = new KubeClient({
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

    watchdog = startWatchdog(process.env.LORAFORGE_K8S_KEEP ? undefined : dir, components);

    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const parts = options.controllerManager ? "etcd, kube-controller-manager" : "etcd";
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
      controllerManager: Boolean(options.controllerManager),
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
 * by with-cluster.ts or `npm test`, which also set LORAFORGE_TEST_CONTROLLER_MANAGER=1;
 * stop() leaves it running), else a fresh one of its own.
 */
export async function connectTestCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const path = process.env.LORAFORGE_TEST_KUBECONFIG;
  const sharedHasKcm = process.env.LORAFORGE_TEST_CONTROLLER_MANAGER === "1";
  if (!path || (options.controllerManager && !sharedHasKcm)) return startCluster(options);
  const connection = readKubeconfig(path);
  const client = new KubeClient(connection);
  const version = await apiVersion(client);
  return {
    ...connection,
    kubeconfigPath: path,
    kubeconfig: readFileSync(path, "utf8"),
    version,
    client,
    dir: undefined,
    controllerManager: sharedHasKcm,
    stop: async () => {},
  };
}
