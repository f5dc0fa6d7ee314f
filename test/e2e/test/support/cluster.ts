// The end-to-end set-up a user goes through, once per test file, on one real node:
// images imported, the operator installed from the Helm chart (running from its image), the
// stories260K model and the demo dataset put on the local volumes, claims made.

import { spawnSync } from "node:child_process";
import { chownSync, copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { API_VERSION, KIND } from "@loraforge/crds";
import {
  connectTestCluster,
  eventually,
  getTable,
  type RunningKueue,
  renderTable,
  startKueue,
  type TestCluster,
} from "@loraforge/test-k8s";
import { parse } from "yaml";
import { z } from "zod";
import { type BuiltImage, ensureImages } from "../../../../images/build.mjs";
import { docs, ensureHelm, helmTemplate, pathOf } from "../../../../operator/test/support/helm.ts";
import { cliBundle, REPO } from "../../../../scripts/bundle.mjs";

export const NS = "e2e";
export const OPERATOR_NS = "loraforge-system";
/** The trainer images run as this user; a hostPath volume ignores fsGroup, so the admin chowns. */
const TRAINER_UID = 1000;
export const log = (line: string) => process.stderr.write(`[e2e] ${line}\n`);

export interface E2eEnv {
  cluster: TestCluster;
  /** node cli/dist/loraforge.mjs */
  cli: string;
  trainerImage: string;
  /** every imported image's reference by name */
  images: Record<string, string>;
  volumes: { models: string; datasets: string; runs: string };
}

/** Runs the bundled cli here (a local run, `loraforge import`), throwing with its output. */
export function loraforge(cli: string, args: string[]): string {
  const r = spawnSync("node", [cli, ...args], { encoding: "utf8", cwd: REPO });
  if (r.status !== 0)
    throw new Error(`loraforge ${args.join(" ")} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

async function waitFor(
  cluster: TestCluster,
  what: string,
  path: string,
  ok: (o: unknown) => boolean,
) {
  await eventually(
    what,
    async () => {
      const o = await cluster.client.find(path);
      if (o && ok(o)) return true;
      throw new Error(`${what}: not yet (${JSON.stringify((o as { status?: unknown })?.status)})`);
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

/** What a test file adds to the chart's values (as an admin's values file would). */
export interface ChartExtras {
  /** `--set key=value` */
  values?: Record<string, string>;
  /** `--set-json key=<JSON>`, e.g. the admin's Kueue setup under `kueue` */
  json?: Record<string, unknown>;
}

/** Apply order: CRDs (established before use), then what the rest names. */
const APPLY_ORDER = [
  "CustomResourceDefinition",
  "ResourceFlavor",
  "WorkloadPriorityClass",
  "ClusterQueue",
  "LocalQueue",
];
const applyRank = (kind: string) =>
  APPLY_ORDER.includes(kind) ? APPLY_ORDER.indexOf(kind) : APPLY_ORDER.length;

/** `helm template` of charts/loraforge with the local images, applied object by object. */
async function installChart(
  cluster: TestCluster,
  operatorRef: string,
  trainerRef: string,
  extras: ChartExtras,
) {
  const [repository, tag] = operatorRef.split(/:(?=[^:]+$)/);
  const rendered = helmTemplate(
    ensureHelm(log),
    "loraforge",
    join(REPO, "charts", "loraforge"),
    OPERATOR_NS,
    {
      "image.repository": repository ?? "",
      "image.tag": tag ?? "",
      "image.pullPolicy": "Never",
      "trainer.image": trainerRef,
      "trainer.pullPolicy": "Never",
      // a CPU run of a 260K model: the default 8Gi would not fit beside the others here
      "trainer.defaultMemory": "2Gi",
      "trainer.terminationGracePeriodSeconds": "30",
      // one retry after a retryable failure (an unreachable source): a failing run ends soon
      "trainer.backoffLimit": "1",
      // the admin's policy that lets https sources and s3 endpoints point at the node's network
      "policy.allowedSourceNetworks": "{198.18.0.0/15}",
      "leaderElection.enabled": "false",
      // no DNS add-on on the test node: the chart's egress rule names kube-dns
      "networkPolicy.enabled": "false",
      ...extras.values,
    },
    [
      "--include-crds",
      "--kube-version",
      cluster.version,
      ...Object.entries(extras.json ?? {}).flatMap(([k, v]) => [
        "--set-json",
        `${k}=${JSON.stringify(v)}`,
      ]),
    ],
  );
  await cluster.client.create("/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: OPERATOR_NS },
  });
  const objects = docs(rendered);
  // CRDs first, and established, before anything names them; Kueue's queues after the
  // flavors and priority classes they name (a stable sort keeps the chart's order otherwise)
  objects.sort((a, b) => applyRank(a.kind) - applyRank(b.kind));
  for (const o of objects) {
    await cluster.client.patch(`${pathOf(o)}?fieldManager=e2e&force=true`, o, "apply");
    if (o.kind === "CustomResourceDefinition")
      await waitFor(cluster, `CRD ${o.metadata.name} established`, pathOf(o), (c) =>
        z
          .object({
            status: z.object({
              conditions: z.array(z.object({ type: z.string(), status: z.string() })),
            }),
          })
          .parse(c)
          .status.conditions.some((x) => x.type === "Established" && x.status === "True"),
      );
  }
  log(
    `applied ${objects.length} objects of the chart: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`,
  );
  const deployment = objects.find((o) => o.kind === "Deployment");
  if (!deployment) throw new Error("the chart rendered no Deployment");
  await waitFor(cluster, "the operator Deployment available", pathOf(deployment), (d) => {
    const s = z.object({ status: z.object({ availableReplicas: z.number().optional() }) }).parse(d);
    return (s.status.availableReplicas ?? 0) >= 1;
  });
}

/** The cluster of this file, kept where `tearDown` finds it even when set-up fails half-way. */
let started: TestCluster | undefined;
let kueue: RunningKueue | undefined;

export async function tearDown() {
  // Kueue first: its webhooks would refuse Jobs once it is gone
  await kueue?.stop();
  kueue = undefined;
  await started?.stop();
  started = undefined;
}

export interface SetUpOptions {
  /** Start a real Kueue against the cluster before the chart (whose Kueue objects need its CRDs). */
  kueue?: boolean;
  /** Hook between the node being up and the chart being applied (e.g. advertise GPUs). */
  beforeChart?: (cluster: TestCluster) => Promise<void>;
  chart?: ChartExtras;
  /** More images to build and import into the node (a model image). */
  extraImages?: BuiltImage["name"][];
}

export async function setUp(options: SetUpOptions = {}): Promise<E2eEnv> {
  const t0 = Date.now();
  const images = await ensureImages(["operator", "trainer-cpu", ...(options.extraImages ?? [])]);
  const ref = (name: string) => {
    const image = images.find((i) => i.name === name);
    if (!image) throw new Error(`ensureImages gave no ${name}`);
    return image;
  };
  log(
    `images ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${images.map((i) => i.ref).join(", ")}`,
  );
  const cli = await cliBundle();
  const cluster = await connectTestCluster({ node: true, controllerManager: true, log });
  started = cluster;
  const node = cluster.node;
  if (!node) throw new Error("connectTestCluster({node: true}) gave a cluster without a node");
  for (const image of images) await node.importImage(image.tar, image.ref);

  // What a user does: put the model (imported from llama2.c) and the dataset on the volumes.
  const assets = join(REPO, "..", "shared", "assets", "stories260K");
  const volumes = node.volumeDirs;
  loraforge(cli, [
    "import",
    "llama2c",
    join(assets, "stories260K.bin"),
    join(assets, "tok512.model"),
    "--out",
    join(volumes.models, "stories260K"),
  ]);
  mkdirSync(join(volumes.datasets, "stories-instruct"), { recursive: true });
  copyFileSync(
    join(REPO, "examples", "stories-instruct", "stories.jsonl"),
    join(volumes.datasets, "stories-instruct", "stories.jsonl"),
  );
  chownSync(volumes.runs, TRAINER_UID, TRAINER_UID);

  if (options.kueue) kueue = await startKueue(cluster, { log });
  await options.beforeChart?.(cluster);
  // the runs' namespace before the chart: the admin's LocalQueues live there
  await cluster.client.create("/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: NS },
  });
  await installChart(cluster, ref("operator").ref, ref("trainer-cpu").ref, options.chart ?? {});
  for (const claim of ["models", "datasets", "runs"]) {
    await cluster.client.create(`/api/v1/namespaces/${NS}/persistentvolumeclaims`, {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: claim, namespace: NS },
      spec: {
        accessModes: ["ReadWriteMany"],
        resources: { requests: { storage: "1Gi" } },
        selector: { matchLabels: { "loraforge.dev/volume": claim } },
      },
    });
  }
  log(`set-up done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return {
    cluster,
    cli,
    trainerImage: ref("trainer-cpu").ref,
    images: Object.fromEntries(images.map((i) => [i.name, i.ref])),
    volumes,
  };
}

/**
 * The stories260K example (examples/stories260k-demo.yaml) as a test would `kubectl apply` it:
 * the dataset on the `datasets` claim, 10 epochs with a checkpoint every 10 steps, a short evaluation.
 */
// biome-ignore lint/suspicious/noExplicitAny: a manifest edited the way a user edits YAML
export function storiesRun(name: string, edit: (spec: Record<string, any>) => void = () => {}) {
  const lft = parse(readFileSync(join(REPO, "examples", "stories260k-demo.yaml"), "utf8"));
  if (lft.apiVersion !== API_VERSION || lft.kind !== KIND)
    throw new Error("examples/stories260k-demo.yaml: not a LoraFineTune");
  lft.metadata = { name, namespace: NS };
  lft.spec.dataset.source = {
    pvc: { claimName: "datasets", path: "stories-instruct/stories.jsonl" },
  };
  // 10 epochs (210 steps, ~20 s on an idle core): status progress comes every 10 s, and a
  // 63-step run could finish before `kubectl get lft` ever showed it mid-run
  lft.spec.training.epochs = 10;
  lft.spec.training.saveSteps = 10;
  lft.spec.training.evalSteps = 30;
  lft.spec.evaluation = { ...(lft.spec.evaluation ?? {}), maxNewTokens: 32 };
  lft.spec.output = { pvc: { claimName: "runs", path: name } };
  edit(lft.spec);
  return lft;
}

/** `kubectl get lft -n e2e -o wide`: the API server's Table of the printer columns, as text. */
export async function getLftTable(cluster: TestCluster): Promise<string> {
  const table = await getTable(
    cluster.client,
    `/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes`,
  );
  return renderTable(table, { wide: true });
}
