// The real API server for the LoraFineTune side: the shared cluster of `npm test`
// (LORAFORGE_TEST_KUBECONFIG) or one of our own, with the CRD applied and a fresh namespace.
// No operator runs: tests drive status through the status subresource, as the operator would.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { API_VERSION, GROUP, type LoraFineTuneStatus, PLURAL } from "@loraforge/crds";
import {
  connectTestCluster,
  eventually,
  type KubeClient,
  type TestCluster,
} from "@loraforge/test-k8s";
import { parse } from "yaml";
import { z } from "zod";

const CRD_FILE = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "crds",
  "loraforge.dev_lorafinetunes.yaml",
);
const CRD_NAME = `${PLURAL}.${GROUP}`;

export interface ActionCluster {
  cluster: TestCluster;
  client: KubeClient;
  namespace: string;
  collection: string;
  patchStatus(name: string, status: LoraFineTuneStatus): Promise<void>;
  list(
    selector?: string,
  ): Promise<{ name: string; labels: Record<string, string>; raw: unknown }[]>;
  stop(): Promise<void>;
}

const ListSchema = z.object({
  items: z.array(
    z
      .object({
        metadata: z
          .object({
            name: z.string(),
            labels: z.record(z.string(), z.string()).optional(),
          })
          .passthrough(),
      })
      .passthrough(),
  ),
});

export async function actionCluster(): Promise<ActionCluster> {
  const cluster = await connectTestCluster();
  const client = cluster.client;
  const crd = parse(readFileSync(CRD_FILE, "utf8"));
  await client.patch(
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}?fieldManager=loraforge-action-tests&force=true`,
    crd,
    "apply",
  );
  const namespace = `action-${randomBytes(3).toString("hex")}`;
  const collection = `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL}`;
  await client.create("/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: namespace },
  });
  await eventually("the lorafinetunes endpoint", async () =>
    (await client.request("GET", collection)).status === 200 ? true : undefined,
  );
  return {
    cluster,
    client,
    namespace,
    collection,
    async patchStatus(name, status) {
      await client.patch(`${collection}/${name}/status`, { status }, "merge");
    },
    async list(selector) {
      const body = ListSchema.parse(
        await client.get(
          `${collection}${selector ? `?labelSelector=${encodeURIComponent(selector)}` : ""}`,
        ),
      );
      return body.items.map((i) => ({
        name: i.metadata.name,
        labels: i.metadata.labels ?? {},
        raw: i,
      }));
    },
    async stop() {
      await client.request("DELETE", `/api/v1/namespaces/${namespace}`);
      await cluster.stop();
    },
  };
}
