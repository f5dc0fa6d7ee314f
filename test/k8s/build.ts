// Builds (or finds in the cache) etcd, kube-apiserver and kube-controller-manager.
// usage: tsx test/k8s/build.ts   — prints the binaries' directory and versions.

import { ensureBinaries, reportedVersion } from "./src/binaries.ts";

async function run() {
  const started = Date.now();
  const bin = await ensureBinaries();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`[k8s] binaries in ${bin.dir} (${seconds} s)`);
  console.log(`[k8s] kube-apiserver ${reportedVersion(bin.kubeApiserver)}`);
  console.log(`[k8s] kube-controller-manager ${reportedVersion(bin.kubeControllerManager)}`);
  console.log(`[k8s] etcd ${reportedVersion(bin.etcd)}`);
}

run().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
