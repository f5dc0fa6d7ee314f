// The user's flows on one real node (kubelet, containerd, runc), started once for this file:
// `kubectl apply` of the stories260K example → the operator (installed by the Helm chart,
// running from its image) makes a Job → the trainer-cpu pod trains → `kubectl get lft`
// shows progress → Succeeded with the adapter digest; the adapter equals a local
// `loraforge train` of the same spec byte for byte, and PEFT loads it. Then: eviction, suspend
// and delete mid-run; the model from an image (init container); model, dataset and output on s3
// with a credentials Secret; an unreachable source.
//
// Needs root, the node's apt packages, the images' tools and the Python venv (docs/TESTING.md).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { eventually, NODE_IP, startS3Server } from "@loraforge/test-k8s";
import { stringify } from "yaml";
import { z } from "zod";
import { REPO } from "../../../../scripts/bundle.mjs";
import {
  type E2eEnv,
  getLftTable,
  log,
  loraforge,
  NS,
  setUp,
  storiesRun,
  tearDown,
} from "../support/cluster.ts";
import { type Lft, lftPath, Runs } from "../support/runs.ts";

let env: E2eEnv;
/** The runs of this file, polled as a user polls them (no Kueue here: no Workloads to print). */
let runs: Runs;
/** The adapter digest of the first, uninterrupted run: every interrupted run must end there. */
let uninterrupted: string | undefined;
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
/** Waits for `done` as `runs.until` does, with this file's longer default (10 epochs, a local run). */
const watchRun = (name: string, done: (l: Lft) => boolean, timeoutMs = 600_000) =>
  runs.until(name, done, { timeoutMs });
const notYetFinished = (name: string, l: Lft) => {
  if (l.status?.phase === "Evaluating" || l.status?.phase === "Succeeded")
    throw new Error(`run ${name} reached ${l.status.phase} before the test could act mid-run`);
};

/** Waits until the run trains with progress shown and steps left. */
function watchUntilMidRun(name: string) {
  return watchRun(name, (l) => {
    notYetFinished(name, l);
    return l.status?.phase === "Running" && (l.status?.progress?.step ?? 0) > 0;
  });
}

/**
 * Waits until the run's pod trains and has written a checkpoint to the volume (checkpoints/
 * checkpoint-N in runs/<name>/<name>-<uid>): the moment to interrupt it. Progress in status
 * comes every 10 s, longer than stories260K needs for most of its 63 steps.
 */
async function watchUntilCheckpoint(name: string): Promise<Lft> {
  return watchRun(
    name,
    (l) => {
      notYetFinished(name, l);
      return l.status?.phase === "Running" && Runs.hasCheckpoint(env.volumes.runs, l);
    },
    300_000,
  );
}

/** Names of the run's pods that are not being deleted, oldest first. */
async function runPods(name: string): Promise<string[]> {
  const Pods = z.object({
    metadata: z.object({
      name: z.string(),
      creationTimestamp: z.string(),
      deletionTimestamp: z.string().optional(),
    }),
    status: z.object({ phase: z.string().optional() }).optional(),
  });
  const { items } = await env.cluster.client.list(
    `/api/v1/namespaces/${NS}/pods`,
    `loraforge.dev/run=${name}`,
  );
  return items
    .map((i) => Pods.parse(i))
    .filter((p) => !p.metadata.deletionTimestamp && p.status?.phase !== "Failed")
    .sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp))
    .map((p) => p.metadata.name);
}

/**
 * An interrupted run resumed from its checkpoint (the core's log on the volume says from which)
 * and its final weights (final/) equal, byte for byte, those of the uninterrupted run.
 */
async function assertResumedToSameWeights(name: string, finished: Lft) {
  const dir = Runs.runDir(env.volumes.runs, finished);
  const coreLog = readFileSync(join(dir, "core.log"), "utf8");
  const resumed = /resuming from \S+ \(step \d+\)/.exec(coreLog)?.[0];
  log(`${name}: core.log says ${resumed ?? "(no resume)"}`);
  assert.ok(resumed, `${name} resumed from a checkpoint; core.log:\n${coreLog}`);
  const refDir = Runs.runDir(env.volumes.runs, await runs.get("stories"));
  const same = readFileSync(join(dir, "final", "adapter_model.safetensors")).equals(
    readFileSync(join(refDir, "final", "adapter_model.safetensors")),
  );
  log(
    `${name}: final weights ${same ? "IDENTICAL to" : "DIFFERENT from"} the uninterrupted run's; status.adapter.digest ${finished.status?.adapter?.digest} (uninterrupted ${uninterrupted}); selection ${readFileSync(join(dir, "selection.json"), "utf8").replace(/\s+/g, " ")} vs ${readFileSync(join(refDir, "selection.json"), "utf8").replace(/\s+/g, " ")}`,
  );
  assert.ok(same, `${name}: final/adapter_model.safetensors equals the uninterrupted run's`);
  // and the delivered adapter: the same checkpoints and losses, so the same selection
  assert.equal(
    finished.status?.adapter?.digest,
    uninterrupted,
    `${name}: status.adapter.digest equals the uninterrupted run's`,
  );
}

describe("end to end on a real node", { timeout: 1_800_000 }, () => {
  before(async () => {
    // the model image's registry allowed by the admin's policy (images/model-stories260k)
    env = await setUp({
      chart: { values: { "policy.allowedImageRegistries": "{ghcr.io/loraforge}" } },
      extraImages: ["model-stories260k"],
    });
    runs = new Runs(env.cluster, { workloads: false });
  });
  after(async () => {
    await tearDown();
  });

  test("kubectl apply of the stories260K example trains in a pod; the adapter equals a local run byte for byte and PEFT loads it", async () => {
    const t0 = Date.now();
    const lft = storiesRun("stories");
    await runs.create(lft);

    // mid-run: the Table shows progress (step n of N) while the pod trains
    const running = await watchUntilMidRun("stories");
    const midTable = await getLftTable(env.cluster);
    log(`mid-run, $ kubectl get lft -n ${NS}\n${midTable}`);
    assert.match(midTable, /stories\s+Running/);
    assert.ok((running.status?.progress?.step ?? 0) > 0);

    const finished = await watchRun("stories", (l) => l.status?.phase === "Succeeded");
    const clusterSeconds = (Date.now() - t0) / 1000;
    log(`final, $ kubectl get lft -n ${NS}\n${await getLftTable(env.cluster)}`);
    log(`final status:\n${stringify(finished.status)}`);
    const phases = runs.phases("stories");
    log(`phases seen: ${phases.join(" → ")}`);
    assert.ok(
      !phases.slice(phases.indexOf("Running")).includes("Pending"),
      `once Running, the run never shows Pending again: ${phases.join(" → ")}`,
    );
    const adapter = finished.status?.adapter;
    assert.ok(adapter, "status.adapter is set");
    assert.match(adapter.digest, /^sha256:[0-9a-f]{64}$/);
    uninterrupted = adapter.digest;

    // the adapter on the volume: runs/<path>/<name>-<uid>/adapter
    const runDir = Runs.runDir(env.volumes.runs, finished);
    const podAdapter = join(runDir, "adapter");
    assert.equal(`sha256:${sha256(join(podAdapter, "adapter_model.safetensors"))}`, adapter.digest);

    // the same spec, run here with the bundled cli: same seed, same thread count (all cores)
    const local = mkdtempSync(join(tmpdir(), "lf-e2e-local-"));
    try {
      const specFile = join(local, "stories.yaml");
      writeFileSync(specFile, stringify(lft));
      const t1 = Date.now();
      loraforge(env.cli, [
        "train",
        specFile,
        "--volume",
        `models=${env.volumes.models}`,
        "--volume",
        `datasets=${env.volumes.datasets}`,
        "--out",
        join(local, "out"),
      ]);
      const localSeconds = (Date.now() - t1) / 1000;
      for (const file of ["adapter_model.safetensors", "adapter_config.json"]) {
        const inPod = readFileSync(join(podAdapter, file));
        const here = readFileSync(join(local, "out", "adapter", file));
        const same = inPod.equals(here);
        log(
          `byte-for-byte ${file}: pod ${inPod.length} B sha256:${sha256(join(podAdapter, file))} vs local ${here.length} B sha256:${sha256(join(local, "out", "adapter", file))} → ${same ? "IDENTICAL" : "DIFFERENT"}`,
        );
        assert.ok(same, `${file} of the pod's run equals the local run's`);
      }
      log(
        `cluster run (apply → Succeeded) ${clusterSeconds.toFixed(0)} s; local run ${localSeconds.toFixed(0)} s`,
      );
    } finally {
      rmSync(local, { recursive: true, force: true });
    }

    // PEFT loads the adapter onto the imported HF-format model, and it changes the logits
    const peft = spawnSync(
      join(REPO, ".venv", "bin", "python"),
      [
        join(import.meta.dirname, "..", "support", "peft_load.py"),
        join(env.volumes.models, "stories260K"),
        podAdapter,
      ],
      { encoding: "utf8" },
    );
    log(`peft: ${peft.stdout.trim()}`);
    assert.equal(peft.status, 0, `peft_load.py failed:\n${peft.stderr}`);
    const loaded = z
      .object({ loraTensors: z.number(), maxLogitChange: z.number() })
      .parse(JSON.parse(peft.stdout));
    assert.equal(loaded.loraTensors, 2 * 7 * 5, "lora_A and lora_B of 7 modules in 5 layers");
    assert.ok(loaded.maxLogitChange > 0, "the adapter changes the logits");
  });

  test("a pod evicted mid-run: the Job starts another, which resumes from the checkpoint and ends at the same adapter", async () => {
    assert.ok(uninterrupted, "needs the uninterrupted run of the first test");
    await runs.create(storiesRun("evicted"));
    const mid = await watchUntilCheckpoint("evicted");
    const [pod] = await runPods("evicted");
    assert.ok(pod, "the run has a pod");
    log(`evicting pod ${pod} at step ${mid.status?.progress?.step}`);
    await env.cluster.client.create(`/api/v1/namespaces/${NS}/pods/${pod}/eviction`, {
      apiVersion: "policy/v1",
      kind: "Eviction",
      metadata: { name: pod, namespace: NS },
    });
    // a second pod of the same Job takes over
    const second = await eventually(
      "a new trainer pod",
      async () => (await runPods("evicted")).find((p) => p !== pod),
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const finished = await watchRun("evicted", (l) => l.status?.phase === "Succeeded");
    log(`pod ${second} took over`);
    await assertResumedToSameWeights("evicted", finished);
  });

  test("suspend mid-run stops the pod; resuming continues from the checkpoint to the same adapter", async () => {
    assert.ok(uninterrupted, "needs the uninterrupted run of the first test");
    await runs.create(storiesRun("suspended"));
    await watchUntilCheckpoint("suspended");
    await env.cluster.client.mergePatch(lftPath("suspended"), { spec: { suspend: true } });
    await watchRun("suspended", (l) => l.status?.phase === "Suspended", 120_000);
    await eventually(
      "the suspended run's pods gone",
      async () => ((await runPods("suspended")).length === 0 ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    await env.cluster.client.mergePatch(lftPath("suspended"), { spec: { suspend: false } });
    const finished = await watchRun("suspended", (l) => l.status?.phase === "Succeeded");
    await assertResumedToSameWeights("suspended", finished);
  });

  test("delete mid-run: the pod, the Job and the run's other objects are gone", async () => {
    await runs.create(storiesRun("deleted"));
    await watchUntilCheckpoint("deleted");
    const selector = "loraforge.dev/run=deleted";
    const kinds = {
      jobs: `/apis/batch/v1/namespaces/${NS}/jobs`,
      pods: `/api/v1/namespaces/${NS}/pods`,
      serviceaccounts: `/api/v1/namespaces/${NS}/serviceaccounts`,
      roles: `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`,
      rolebindings: `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`,
    };
    const owned = async () => {
      const found: string[] = [];
      for (const [kind, path] of Object.entries(kinds))
        for (const o of (await env.cluster.client.list(path, selector)).items)
          found.push(
            `${kind}/${z.object({ metadata: z.object({ name: z.string() }) }).parse(o).metadata.name}`,
          );
      return found;
    };
    const before = await owned();
    log(`the run's objects mid-run: ${before.join(", ")}`);
    for (const kind of ["jobs", "pods", "serviceaccounts"])
      assert.ok(
        before.some((o) => o.startsWith(`${kind}/`)),
        `a ${kind} object mid-run`,
      );
    await env.cluster.client.delete(lftPath("deleted"));
    await eventually(
      "the deleted run's objects gone",
      async () => {
        const left = await owned();
        if (left.length === 0) return true;
        throw new Error(`still there: ${left.join(", ")}`);
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  });

  test("s3 model, dataset and output with a credentials Secret: fetched and uploaded by the pod; the adapter, eval.json and the completion marker land in the bucket, and status gives the s3 location", async () => {
    // the S3-compatible server listens on the node's IP: the pod reaches it, nothing leaves the machine
    const s3 = await startS3Server({ host: NODE_IP });
    try {
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      await client.send(new CreateBucketCommand({ Bucket: "runs" }));
      // the model and the dataset, as a user keeps them in a bucket (the same bytes as the volumes')
      const upload = async (key: string, file: string) =>
        client.send(new PutObjectCommand({ Bucket: "runs", Key: key, Body: readFileSync(file) }));
      const modelDir = join(env.volumes.models, "stories260K");
      for (const f of readdirSync(modelDir))
        await upload(`models/stories260K/${f}`, join(modelDir, f));
      await upload(
        "data/stories.jsonl",
        join(env.volumes.datasets, "stories-instruct", "stories.jsonl"),
      );
      client.destroy();
      await env.cluster.client.create(`/api/v1/namespaces/${NS}/secrets`, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "s3-output", namespace: NS },
        stringData: {
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
          region: s3.region,
          endpoint: s3.endpoint,
        },
      });
      await runs.create(
        storiesRun("to-s3", (spec) => {
          spec.baseModel.source = { uri: "s3://runs/models/stories260K", secretName: "s3-output" };
          spec.dataset.source = { uri: "s3://runs/data/stories.jsonl", secretName: "s3-output" };
          spec.output = { uri: "s3://runs/e2e", secretName: "s3-output" };
        }),
      );
      const finished = await watchRun("to-s3", (l) => l.status?.phase === "Succeeded");
      const prefix = `e2e/to-s3-${finished.metadata.uid}`;
      log(`status.adapter: ${JSON.stringify(finished.status?.adapter)}`);
      assert.equal(finished.status?.adapter?.path, `s3://runs/${prefix}/adapter`);
      const bucket = join(s3.root, "runs", prefix);
      const marker = z
        .object({
          adapter: z.object({ path: z.string(), digest: z.string() }),
          files: z.array(z.object({ key: z.string(), bytes: z.number() })),
        })
        .parse(JSON.parse(readFileSync(join(bucket, "loraforge-complete.json"), "utf8")));
      log(
        `s3://runs/${prefix}/loraforge-complete.json lists ${marker.files.map((f) => f.key).join(", ")}`,
      );
      assert.equal(
        `sha256:${sha256(join(bucket, "adapter", "adapter_model.safetensors"))}`,
        finished.status?.adapter?.digest,
      );
      assert.equal(marker.adapter.digest, finished.status?.adapter?.digest);
      if (uninterrupted) assert.equal(finished.status?.adapter?.digest, uninterrupted);
      const evaluation = z
        .object({})
        .passthrough()
        .parse(JSON.parse(readFileSync(join(bucket, "eval.json"), "utf8")));
      assert.ok(Object.keys(evaluation).length > 0, "eval.json in the bucket");
      for (const key of [
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "eval.json",
      ])
        assert.ok(
          marker.files.some((f) => f.key.endsWith(key)),
          `the marker lists ${key}`,
        );
    } finally {
      await s3.stop();
    }
  });

  test("a model shipped as an image: an init container copies it out, and the run ends at the same adapter as from the volume", async () => {
    assert.ok(uninterrupted, "needs the uninterrupted run of the first test");
    const reference = env.images["model-stories260k"];
    assert.ok(reference, "the model image was imported");
    await runs.create(
      storiesRun("from-image", (spec) => {
        spec.baseModel.source = { image: { reference, path: "models/stories260K" } };
      }),
    );
    const finished = await watchRun("from-image", (l) => l.status?.phase === "Succeeded");
    const Pod = z.object({
      spec: z.object({
        initContainers: z.array(z.object({ name: z.string(), image: z.string() })).optional(),
      }),
      status: z
        .object({
          initContainerStatuses: z
            .array(
              z.object({
                name: z.string(),
                state: z
                  .object({ terminated: z.object({ exitCode: z.number() }).optional() })
                  .optional(),
              }),
            )
            .optional(),
        })
        .optional(),
    });
    const pods = (
      await env.cluster.client.list(`/api/v1/namespaces/${NS}/pods`, "loraforge.dev/run=from-image")
    ).items.map((p) => Pod.parse(p));
    const init = pods[0]?.status?.initContainerStatuses?.[0];
    log(
      `from-image: init containers ${JSON.stringify(pods[0]?.spec.initContainers)}, status ${JSON.stringify(init)}; adapter ${finished.status?.adapter?.digest}`,
    );
    assert.equal(pods[0]?.spec.initContainers?.[0]?.image, reference);
    assert.equal(init?.state?.terminated?.exitCode, 0, "the copy out of the image succeeded");
    assert.equal(
      finished.status?.adapter?.digest,
      uninterrupted,
      "the same model bytes from an image train to the same adapter as from the volume",
    );
  });

  test("an unreachable dataset source fails the run with the URL and the reason in status", async () => {
    // a port on the node's IP where nothing listens
    const url = `https://${NODE_IP}:1/stories.jsonl`;
    await runs.create(
      storiesRun("unreachable", (spec) => {
        spec.dataset.source = { uri: url };
      }),
    );
    const failed = await watchRun("unreachable", (l) => l.status?.phase === "Failed", 300_000);
    log(`final status.failure: ${JSON.stringify(failed.status?.failure)}`);
    const message = failed.status?.failure?.message ?? "";
    assert.ok(message.includes(url), `status.failure.message names ${url}: ${message}`);
    assert.match(message, /ECONNREFUSED|refused|connect/i);
  });
});
