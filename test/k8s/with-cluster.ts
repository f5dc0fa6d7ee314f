// Runs a command against one shared test cluster (etcd, kube-apiserver and
// kube-controller-manager), then tears it down and exits with the command's code.
//
// usage: tsx test/k8s/with-cluster.ts -- <command> [args...]
// The command sees LORAFORGE_TEST_KUBECONFIG (and KUBECONFIG) naming the cluster.

import { spawn } from "node:child_process";
import { startCluster } from "./src/cluster.ts";

async function run(): Promise<number> {
  const separator = process.argv.indexOf("--");
  const command = separator === -1 ? process.argv.slice(2) : process.argv.slice(separator + 1);
  const [file, ...args] = command;
  if (!file) {
    console.error("usage: tsx test/k8s/with-cluster.ts -- <command> [args...]");
    return 2;
  }
  const cluster = await startCluster({ controllerManager: true });
  try {
    const child = spawn(file, args, {
      stdio: "inherit",
      env: {
        ...process.env,
        LORAFORGE_TEST_KUBECONFIG: cluster.kubeconfigPath,
        LORAFORGE_TEST_CONTROLLER_MANAGER: "1",
        KUBECONFIG: cluster.kubeconfigPath,
      },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    return await new Promise<number>((resolve) => {
      child.on("error", (error) => {
        console.error(`cannot run ${file}: ${error.message}`);
        resolve(127);
      });
      child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    await cluster.stop();
  }
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
