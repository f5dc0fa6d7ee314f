// Builds (or finds in the cache) etcd and the Kubernetes components (one multi-call binary).
// usage: tsx test/k8s/build.ts [--kueue]   — prints the binaries' directory and versions;
// --kueue also builds Kueue's controller manager (kueuebin/go.mod).

import { join } from "node:path";
import { COMPONENTS, ensureBinaries, reportedVersion } from "./src/binaries.ts";
import { ensureKueue } from "./src/kueue.ts";

async function run() {
  const started = Date.now();
  const bin = await ensureBinaries();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`[k8s] binaries in ${bin.dir} (${seconds} s)`);
  for (const component of COMPONENTS) {
    console.log(`[k8s] ${component} ${reportedVersion(join(bin.dir, component))}`);
  }
  console.log(`[k8s] etcd ${reportedVersion(bin.etcd)}`);
  if (process.argv.includes("--kueue")) {
    const kueueStarted = Date.now();
    const kueue = await ensureKueue();
    const kueueSeconds = ((Date.now() - kueueStarted) / 1000).toFixed(1);
    console.log(`[kueue] ${kueue.version} in ${kueue.dir} (${kueueSeconds} s)`);
  }
}

run().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
