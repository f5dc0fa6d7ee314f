// Run by node.test.ts under `with-cluster.ts --node`: checks that a test process finds the
// shared node through connectTestCluster({ node: true }) and can import an image into it,
// prints a line node.test.ts waits for, then waits to be interrupted.

import { ensureTestImages } from "../../src/images.ts";
import { BUSYBOX_IMAGE, connectTestCluster, NODE_NAME } from "../../src/index.ts";

const cluster = await connectTestCluster({ node: true });
if (!cluster.node || cluster.node.name !== NODE_NAME || cluster.dir !== undefined) {
  throw new Error(
    `expected the shared node, got ${JSON.stringify(cluster.node)} (dir ${cluster.dir})`,
  );
}
const busybox = ensureTestImages(() => {}).find((image) => image.ref === BUSYBOX_IMAGE);
if (!busybox) throw new Error("no busybox test image");
cluster.node.importImage(busybox.tarPath, busybox.ref);
process.stderr.write(`shared node ${cluster.node.name} ok\n`);
setInterval(() => {}, 60_000);
