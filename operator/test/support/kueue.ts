// Kueue's own CRDs, for checking the chart's sample Kueue objects against the schemas a real
// Kueue installs: taken from the sigs.k8s.io/kueue Go module (the Go module cache, filled
// from the module proxy once, as helm is built in helm.ts), never copied by hand.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeClient } from "@loraforge/test-k8s";
import { parse } from "yaml";
import { z } from "zod";
import { eventually } from "./cluster.ts";

/** The Kueue release the chart's samples are written for (it serves v1beta1 and v1beta2). */
export const KUEUE_VERSION = "v0.17.0";
const MODULE = "sigs.k8s.io/kueue";

/** The kinds the chart's samples use → their CRD file in config/components/crd/bases. */
export const KUEUE_SAMPLE_CRDS = {
  ResourceFlavor: "kueue.x-k8s.io_resourceflavors.yaml",
  ClusterQueue: "kueue.x-k8s.io_clusterqueues.yaml",
  LocalQueue: "kueue.x-k8s.io_localqueues.yaml",
  WorkloadPriorityClass: "kueue.x-k8s.io_workloadpriorityclasses.yaml",
} as const;

const Crd = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({
    group: z.string(),
    names: z.object({ kind: z.string(), plural: z.string() }),
    versions: z.array(
      z.object({
        name: z.string(),
        served: z.boolean(),
        storage: z.boolean(),
        deprecated: z.boolean().optional(),
      }),
    ),
  }),
});
/** A CRD as Kueue ships it (`raw`), with what the tests read of it. */
export type KueueCrd = z.infer<typeof Crd> & { raw: unknown };

/** The module's directory in the Go module cache, downloading it if it is not there. */
function moduleDir(): string {
  const env = { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" };
  const r = spawnSync("go", ["mod", "download", "-json", `${MODULE}@${KUEUE_VERSION}`], {
    env,
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(`go mod download ${MODULE}@${KUEUE_VERSION} failed:\n${r.stdout}${r.stderr}`);
  return z.object({ Dir: z.string() }).parse(JSON.parse(r.stdout)).Dir;
}

/** Kueue's CRDs of the sample kinds, as Kueue ships them. */
export function kueueCrds(): KueueCrd[] {
  const bases = join(moduleDir(), "config", "components", "crd", "bases");
  return Object.values(KUEUE_SAMPLE_CRDS).map((file) => {
    const raw: unknown = parse(readFileSync(join(bases, file), "utf8"));
    return { ...Crd.parse(raw), raw };
  });
}

/** Installs the CRDs (server-side apply, so a second suite in the same cluster is harmless). */
export async function installKueueCrds(client: KubeClient, crds: KueueCrd[]) {
  for (const crd of crds) {
    await client.patch(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=loraforge-tests&force=true`,
      crd.raw,
      "apply",
    );
  }
  for (const crd of crds) {
    const storage = crd.spec.versions.find((v) => v.storage)?.name;
    await eventually(`${crd.metadata.name} to be served`, async () => {
      const r = await client.request(
        "GET",
        `/apis/${crd.spec.group}/${storage}/${crd.spec.names.plural}?limit=1`,
      );
      return r.status === 200 ? true : undefined;
    });
  }
}
