// CRDs of other projects (Kueue, prometheus-operator), for checking what the chart renders for
// them against the schemas those projects install: read from their Go module (the Go module
// cache, filled from the module proxy once, as helm is built in helm.ts), never copied by hand.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeClient } from "@loraforge/test-k8s";
import { parse } from "yaml";
import { z } from "zod";
import { eventually } from "./cluster.ts";

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
/** A CRD as its project ships it (`raw`), with what the tests read of it. */
export type UpstreamCrd = z.infer<typeof Crd> & { raw: unknown };

/** The module's directory in the Go module cache, downloading it if it is not there. */
export function goModuleDir(module: string, version: string): string {
  const env = { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" };
  const r = spawnSync("go", ["mod", "download", "-json", `${module}@${version}`], {
    env,
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(`go mod download ${module}@${version} failed:\n${r.stdout}${r.stderr}`);
  return z.object({ Dir: z.string() }).parse(JSON.parse(r.stdout)).Dir;
}

/** The CRD in `file` (a path inside the module). */
export function readUpstreamCrd(module: string, version: string, file: string): UpstreamCrd {
  const raw: unknown = parse(readFileSync(join(goModuleDir(module, version), file), "utf8"));
  return { ...Crd.parse(raw), raw };
}

/** Installs the CRDs (server-side apply, so a second suite in the same cluster is harmless). */
export async function installCrds(client: KubeClient, crds: UpstreamCrd[]) {
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

/** The prometheus-operator release whose ServiceMonitor CRD the chart's ServiceMonitor is checked against. */
export const PROMETHEUS_OPERATOR_VERSION = "v0.85.0";

/** prometheus-operator's ServiceMonitor CRD (monitoring.coreos.com/v1), as it ships it. */
export function serviceMonitorCrd(): UpstreamCrd {
  return readUpstreamCrd(
    "github.com/prometheus-operator/prometheus-operator",
    PROMETHEUS_OPERATOR_VERSION,
    "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
  );
}
