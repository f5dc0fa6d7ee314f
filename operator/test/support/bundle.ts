// Bundles the operator into one ESM file with esbuild (as the image does), so tests and
// the benchmark run the same artifact a cluster would: plain node, no TypeScript loader.

import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const operatorDir = join(import.meta.dirname, "..", "..");
const esbuild = join(operatorDir, "..", "node_modules", ".bin", "esbuild");

export function bundleOperator(
  out = join(mkdtempSync(join(tmpdir(), "lf-op-")), "operator.mjs"),
): string {
  const r = spawnSync(
    esbuild,
    [
      "src/main.ts",
      "--bundle",
      "--platform=node",
      "--target=node20",
      "--format=esm",
      `--outfile=${out}`,
      "--log-level=warning",
      "--banner:js=import{createRequire as __lfCreateRequire}from'node:module';const require=__lfCreateRequire(import.meta.url);",
    ],
    { cwd: operatorDir, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`bundling the operator failed:\n${r.stderr}`);
  return out;
}
