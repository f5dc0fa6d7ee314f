// Builds (or finds in the cache) versitygw, the S3-compatible server the s3 tests run.
// usage: tsx test/k8s/build-versitygw.ts   — prints the binary's path and the time taken.

import { ensureGoTool } from "./src/goTool.ts";
import { VERSITYGW } from "./src/versitygw.ts";

const started = Date.now();
ensureGoTool(VERSITYGW)
  .then((binary) => {
    console.log(`[versitygw] ${binary} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  })
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
