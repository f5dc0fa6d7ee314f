// Bundles the operator with the repository's one build script (as the image does), so tests and
// the benchmark run the same artifact a cluster would: plain node, no TypeScript loader.
import { BUNDLES, bundle } from "../../../scripts/bundle.mjs";

export async function bundleOperator(): Promise<string> {
  await bundle(["operator"]);
  return BUNDLES.operator[0].outfile;
}
