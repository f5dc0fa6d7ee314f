// Runs a command against one shared test cluster (etcd, kube-apiserver and
// kube-controller-manager, plus a real node with --node or LORAFORGE_K8S_NODE=1), then
// tears it down and exits with the command's code.
//
// usage: tsx test/k8s/with-cluster.ts [--node] -- <command> [args...]
// The command sees LORAFORGE_TEST_KUBECONFIG (and KUBECONFIG) naming the cluster, and
// LORAFORGE_TEST_NODE naming the node's description file when there is a node.

import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startCluster } from "./src/cluster.ts";
import { describeNode } from "./src/node.ts";

async function run(): Promise<number> {
  const separator = process.argv.indexOf("--");
  const own = separator === -1 ? [] : process.argv.slice(2, separator);
  const command = separator === -1 ? process.argv.slice(2) : process.argv.slice(separator + 1);
  const [file, ...args] = command;
  const unknown = own.filter((arg) => arg !== "--node");
  if (!file || unknown.length > 0) {
    console.error("usage: tsx test/k8s/with-cluster.ts [--node] -- <command> [args...]");
    return 2;
  }
  const node = own.includes("--node") || process.env.LORAFORGE_K8S_NODE === "1";
  const cluster = await startCluster({ controllerManager: true, node });
  try {
    const nodeEnv: Record<string, string> = {};
    if (cluster.node && cluster.dir) {
      const path = join(cluster.dir, "node.json");
      writeFileSync(path, JSON.stringify(describeNode(cluster.node)));
      nodeEnv.LORAFORGE_TEST_NODE = path;
    }
    const child = spawn(file, args, {
      stdio: "inherit",
      env: {
        ...process.env,
        LORAFORGE_TEST_KUBECONFIG: cluster.kubeconfigPath,
        LORAFORGE_TEST_CONTROLLER_MANAGER: "1",
        KUBECONFIG: cluster.kubeconfigPath,
        ...nodeEnv,
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
