// The upgrade that docs/INSTALL.md and the chart README describe, done for real: `helm install`
// of an older chart (its CRD one printer column short) creates the CRD from crds/; the new CRD
// is applied server-side the way `kubectl apply --server-side --force-conflicts` sends it
// (there is no kubectl binary here: the same PATCH, fieldManager kubectl); `helm upgrade
// --reuse-values` then succeeds and leaves that CRD alone; `helm uninstall` leaves it in place.
// Its own API server: the CRD is cluster-wide, and the shared cluster's suites apply theirs.

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getTable, startCluster, type TestCluster } from "@loraforge/test-k8s";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { eventually } from "../support/cluster.ts";
import { ensureHelm, helmRun } from "../support/helm.ts";

const chart = join(import.meta.dirname, "..", "..", "..", "charts", "loraforge");
const CRD_PATH =
  "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/lorafinetunes.loraforge.dev";
const NS = "loraforge-system";

const Crd = z.object({
  metadata: z.object({
    managedFields: z.array(z.object({ manager: z.string(), operation: z.string() })),
  }),
  spec: z.object({
    versions: z.array(
      z.object({ additionalPrinterColumns: z.array(z.object({ name: z.string() })) }),
    ),
  }),
  status: z
    .object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })) })
    .optional(),
});

describe("upgrading the chart and its CRD as docs/INSTALL.md says", () => {
  let cluster: TestCluster;
  let helm: string;
  let oldChart: string;
  const helmAt = (args: string[]) =>
    helmRun(helm, [...args, "--kubeconfig", cluster.kubeconfigPath, "--namespace", NS]);
  const crd = async () => Crd.parse(await cluster.client.get(CRD_PATH));
  const columns = async () =>
    (await crd()).spec.versions[0]?.additionalPrinterColumns.map((c) => c.name) ?? [];

  before(async () => {
    helm = ensureHelm();
    cluster = await startCluster();
    // The previous release of the chart: the same, but its CRD has no ETA column.
    oldChart = join(mkdtempSync(join(tmpdir(), "lf-old-chart-")), "loraforge");
    cpSync(chart, oldChart, { recursive: true });
    const crdDir = join(oldChart, "crds");
    for (const f of readdirSync(crdDir)) {
      const doc = parse(readFileSync(join(crdDir, f), "utf8"));
      for (const v of doc.spec.versions)
        v.additionalPrinterColumns = v.additionalPrinterColumns.filter(
          (c: { name: string }) => c.name !== "ETA",
        );
      writeFileSync(join(crdDir, f), stringify(doc));
    }
  });
  after(async () => {
    await cluster?.stop();
    if (oldChart) rmSync(join(oldChart, ".."), { recursive: true, force: true });
  });

  test("install the old chart, apply the new CRD server-side, helm upgrade, helm uninstall", async () => {
    const install = helmAt([
      "install",
      "loraforge",
      oldChart,
      "--create-namespace",
      "--set",
      "trainer.image=ghcr.io/loraforge/trainer:old",
    ]);
    assert.equal(install.status, 0, install.stderr);
    assert.ok(!(await columns()).includes("ETA"), "the old CRD, from the old chart's crds/");
    assert.ok((await crd()).metadata.managedFields.some((f) => f.manager === "helm"));

    // kubectl apply --server-side --force-conflicts -f charts/loraforge/crds/
    const files = readdirSync(join(chart, "crds"));
    assert.deepEqual(files, ["loraforge.dev_lorafinetunes.yaml"]);
    const newCrd = parse(readFileSync(join(chart, "crds", files[0] as string), "utf8"));
    const apply = (force: boolean) =>
      cluster.client.request(
        "PATCH",
        `${CRD_PATH}?fieldManager=kubectl${force ? "&force=true" : ""}`,
        newCrd,
        "application/apply-patch+yaml",
      );
    // Without --force-conflicts the fields Helm wrote are another manager's: refused.
    const plain = await apply(false);
    assert.equal(plain.status, 409, JSON.stringify(plain.body).slice(0, 300));
    assert.match(JSON.stringify(plain.body), /conflict.*helm/i);
    const forced = await apply(true);
    assert.equal(forced.status, 200, JSON.stringify(forced.body).slice(0, 300));
    // kubectl wait --for condition=Established crd/lorafinetunes.loraforge.dev
    await eventually("the new CRD to be Established, with the ETA column", async () => {
      const c = await crd();
      const established = c.status?.conditions.some(
        (x) => x.type === "Established" && x.status === "True",
      );
      return established && (await columns()).includes("ETA") ? true : undefined;
    });

    // helm upgrade loraforge charts/loraforge -n loraforge-system --reuse-values
    const upgrade = helmAt(["upgrade", "loraforge", chart, "--reuse-values"]);
    assert.equal(upgrade.status, 0, upgrade.stderr);
    assert.ok((await columns()).includes("ETA"), "helm upgrade left the applied CRD alone");
    const values = helmAt(["get", "values", "loraforge", "--output", "json"]);
    assert.deepEqual(JSON.parse(values.stdout), {
      trainer: { image: "ghcr.io/loraforge/trainer:old" },
    });
    // The API server serves the new CRD's column to kubectl get -o wide (once the resource's
    // storage is re-initialised for the new CRD: 429 until then).
    await eventually("kubectl get lft to show the ETA column", async () => {
      const table = await getTable(cluster.client, "/apis/loraforge.dev/v1alpha1/lorafinetunes");
      return table.columnDefinitions.some((c) => c.name === "ETA") ? true : undefined;
    });

    // helm uninstall leaves the CRD (and so every run) in place.
    const uninstall = helmAt(["uninstall", "loraforge"]);
    assert.equal(uninstall.status, 0, uninstall.stderr);
    assert.equal((await cluster.client.request("GET", CRD_PATH)).status, 200);
  });
});
