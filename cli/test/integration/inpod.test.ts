// `loraforge job` against a real API server: it reports progress, checkpoints, the adapter
// and the evaluation summary through the per-run ServiceAccount's token (made by the
// operator's own RBAC builders), throttled, surviving API errors; exit codes and the
// termination message follow docs/CONTRACTS.md.
//
// The training itself is a scripted sequence of the core's events: this file tests the
// job's reporting, not training.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { API_VERSION, KIND } from "@loraforge/crds";
import { KubeClient } from "@loraforge/kube";
import { buildRole, buildRoleBinding, buildServiceAccount } from "@loraforge/operator";
import { connectTestCluster, eventually, type TestCluster } from "@loraforge/test-k8s";
import { parse, stringify } from "yaml";
import { z } from "zod";
import {
  patchStatus,
  type ReportedEvent,
  runJob,
  StatusReporter,
  TrainingFailure,
} from "../../src/inpod/index.ts";

import { ASSETS, cliBin } from "../support/helpers.ts";

const repo = join(import.meta.dirname, "..", "..", "..");
const t = () => new Date().toISOString();
const step = (n: number, total = 200): ReportedEvent => ({
  event: "step",
  time: t(),
  step: n,
  total_steps: total,
  epoch: n / total,
  loss: 2 - n / total,
  lr: 3e-4,
  tokens_per_s: 1234,
  eta_s: total - n,
});

describe("loraforge job against a real API server", () => {
  let cluster: TestCluster;
  const ns = `job-${randomBytes(3).toString("hex")}`;
  const lftPath = (name: string) => `/apis/${API_VERSION}/namespaces/${ns}/lorafinetunes/${name}`;
  let kube: KubeClient;
  /** The API server as the holder of `token` (a ServiceAccount's), as the pod reaches it. */
  const as = (token: string, server = cluster.server, timeoutMs?: number) =>
    KubeClient.connect({ server, caPem: cluster.caPem, token }, timeoutMs ? { timeoutMs } : {});
  const dir = mkdtempSync(join(tmpdir(), "lf-job-"));

  const spec = (name: string) => ({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: ns },
    spec: {
      baseModel: { source: { pvc: { claimName: "models", path: "stories260K" } } },
      dataset: { source: { pvc: { claimName: "data", path: "alpaca.json" } } },
      training: { precision: "fp32" },
      resources: { gpus: 0 },
      output: { pvc: { claimName: "runs", path: name } },
    },
  });

  before(async () => {
    cluster = await connectTestCluster();
    const c = cluster.client;
    await c.patch(
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/lorafinetunes.loraforge.dev?fieldManager=loraforge-tests&force=true",
      parse(readFileSync(join(repo, "crds", "loraforge.dev_lorafinetunes.yaml"), "utf8")),
      "apply",
    );
    await eventually("the CRD", async () =>
      (await c.request("GET", `/apis/${API_VERSION}/lorafinetunes?limit=1`)).status === 200
        ? true
        : undefined,
    );
    await c.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
    for (const name of ["tuned", "throttled", "flaky", "other", "e2e", "retried"]) {
      const created = z
        .object({ metadata: z.object({ uid: z.string() }) })
        .parse(await c.create(`/apis/${API_VERSION}/namespaces/${ns}/lorafinetunes`, spec(name)));
      if (name === "other") continue;
      const run = {
        lft: { ...spec(name), metadata: { name } } as never,
        uid: created.metadata.uid,
        namespace: ns,
      };
      await c.create(`/api/v1/namespaces/${ns}/serviceaccounts`, buildServiceAccount(run));
      await c.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, buildRole(run));
      await c.create(
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
        buildRoleBinding(run),
      );
    }
    const token = z.object({ status: z.object({ token: z.string() }) }).parse(
      await c.create(`/api/v1/namespaces/${ns}/serviceaccounts/tuned-trainer/token`, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 600 },
      }),
    ).status.token;
    kube = as(token);
  });
  after(async () => {
    await cluster?.client.request("DELETE", `/api/v1/namespaces/${ns}`);
    await cluster?.stop();
  });

  const statusOf = async (name: string) =>
    z
      .object({ status: z.record(z.string(), z.any()).optional() })
      .parse(await cluster.client.get(lftPath(name))).status ?? {};

  test("runs the pipeline and reports progress, checkpoints, adapter and evaluation", async () => {
    const specFile = join(dir, "spec.yaml");
    writeFileSync(specFile, stringify(spec("tuned")));
    const seen: string[] = [];
    const code = await runJob(["--spec", specFile], {
      env: {
        LORAFORGE_OUTPUT_DIR: "/out/tuned",
        LORAFORGE_MODEL_DIR: "/m",
        LORAFORGE_TERMINATION_LOG: join(dir, "term-ok"),
      },
      kube,
      log: () => {},
      pipeline: async (run) => {
        seen.push(run.lft.metadata.name, run.outputDir, run.modelDir ?? "");
        run.onEvent({ event: "start", time: t(), total_steps: 200, resumed_from_step: 0 });
        for (let i = 1; i <= 200; i++) run.onEvent(step(i));
        run.onEvent({
          event: "checkpoint",
          time: t(),
          step: 200,
          path: "/out/tuned/checkpoints/checkpoint-200",
          train_loss: 1.1,
          val_loss: 1.3,
        });
        run.onEvent({ event: "done", time: t(), step: 200, adapter_dir: "/out/tuned/final" });
        return {
          adapter: {
            path: "/out/tuned/final",
            digest: `sha256:${"a".repeat(64)}`,
            sizeBytes: 4096,
            verified: true,
          },
          selectedCheckpoint: {
            step: 200,
            path: "/out/tuned/checkpoints/checkpoint-200",
            policy: "lowestTrainLoss",
          },
          evaluation: {
            base: { rougeL: 0.1 },
            tuned: { rougeL: 0.4, promptRepetition: 0 },
            samples: 50,
          },
        };
      },
    });
    assert.equal(code, 0);
    assert.deepEqual(seen, ["tuned", "/out/tuned", "/m"]);
    const s = await statusOf("tuned");
    assert.equal(s.progress.step, 200);
    assert.equal(s.progress.totalSteps, 200);
    assert.equal(s.progress.percent, 100);
    assert.equal(s.progress.summary, "200/200 (100%)");
    assert.equal(s.progress.eta, "0s", "the ETA column reads 0s once training is done");
    assert.equal(s.checkpoints[0].step, 200);
    assert.equal(s.adapter.verified, true);
    assert.equal(s.evaluation.tuned.rougeL, 0.4);
    assert.equal(s.selectedCheckpoint.policy, "lowestTrainLoss");
  });

  test("a retried pod keeps the checkpoints the earlier attempt reported (merged by step)", async () => {
    const token = z
      .object({ status: z.object({ token: z.string() }) })
      .parse(
        await cluster.client.create(
          `/api/v1/namespaces/${ns}/serviceaccounts/retried-trainer/token`,
          { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
        ),
      ).status.token;
    const checkpoint = (n: number, loss: number) => ({
      step: n,
      path: `/out/retried/checkpoints/checkpoint-${n}`,
      createdAt: t(),
      trainLoss: loss,
    });
    // The first pod reported two checkpoints, then was evicted.
    await patchStatus(as(token), ns, "retried", {
      progress: { step: 450, totalSteps: 600 },
      checkpoints: [checkpoint(200, 1.5), checkpoint(400, 1.2)],
    });
    const specFile = join(dir, "spec-retried.yaml");
    writeFileSync(specFile, stringify(spec("retried")));
    const code = await runJob(["--spec", specFile], {
      env: {
        LORAFORGE_OUTPUT_DIR: "/out/retried",
        LORAFORGE_MODEL_DIR: "/m",
        LORAFORGE_TERMINATION_LOG: join(dir, "term-retried"),
      },
      kube: as(token),
      log: () => {},
      pipeline: async (run) => {
        // The second pod resumes from checkpoint 400 and saves 600.
        run.onEvent({ event: "start", time: t(), total_steps: 600, resumed_from_step: 400 });
        for (let i = 401; i <= 600; i++) run.onEvent(step(i, 600));
        run.onEvent({
          event: "checkpoint",
          time: t(),
          step: 600,
          path: "/out/retried/checkpoints/checkpoint-600",
          train_loss: 1.0,
          val_loss: null,
        });
        run.onEvent({ event: "done", time: t(), step: 600, adapter_dir: "/out/retried/final" });
        return {};
      },
    });
    assert.equal(code, 0);
    const s = await statusOf("retried");
    assert.deepEqual(
      s.checkpoints.map((c: { step: number; trainLoss: number }) => [c.step, c.trainLoss]),
      [
        [200, 1.5],
        [400, 1.2],
        [600, 1.0],
      ],
    );
    assert.equal(s.progress.step, 600);
  });

  test("with the same token it cannot touch another run (RBAC by resourceNames)", async () => {
    await assert.rejects(
      patchStatus(kube, ns, "other", { progress: { step: 1, totalSteps: 1 } }),
      /403/,
    );
  });

  test("throttled: hundreds of steps in a second become at most two requests", async () => {
    const token = z
      .object({ status: z.object({ token: z.string() }) })
      .parse(
        await cluster.client.create(
          `/api/v1/namespaces/${ns}/serviceaccounts/throttled-trainer/token`,
          { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
        ),
      ).status.token;
    const mine = as(token);
    const reporter = new StatusReporter({
      send: (s) => patchStatus(mine, ns, "throttled", s),
      intervalMs: 5000,
    });
    const started = Date.now();
    for (let i = 1; i <= 300; i++) {
      reporter.onEvent(step(i, 300));
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(Date.now() - started < 5000);
    await new Promise((r) => setTimeout(r, 300)); // let the first request land
    assert.equal(reporter.sent, 1, "one request so far: the rest waits for the interval");
    const before = await statusOf("throttled");
    assert.equal(before.progress?.step, 1, "only the first step was sent within the interval");
    assert.ok(await reporter.close());
    assert.equal(reporter.sent, 2);
    assert.equal((await statusOf("throttled")).progress.step, 300);
  });

  test("API errors never stop training; the status catches up when the API is back", async () => {
    const token = z
      .object({ status: z.object({ token: z.string() }) })
      .parse(
        await cluster.client.create(
          `/api/v1/namespaces/${ns}/serviceaccounts/flaky-trainer/token`,
          { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
        ),
      ).status.token;
    let down = true;
    const unreachable = as(token, "https://127.0.0.1:9", 2000);
    const up = as(token);
    const logs: string[] = [];
    const reporter = new StatusReporter({
      send: (s) => patchStatus(down ? unreachable : up, ns, "flaky", s),
      intervalMs: 100,
      log: (l) => logs.push(l),
    });
    for (let i = 1; i <= 30; i++) {
      reporter.onEvent(step(i, 30)); // must not throw
      await new Promise((r) => setTimeout(r, 20));
    }
    await reporter.flush();
    assert.ok(reporter.failed >= 1, "the outage was noticed");
    assert.match(logs[0] ?? "", /status update failed \(training continues\)/);
    down = false;
    assert.ok(await reporter.close(5, 200));
    assert.equal((await statusOf("flaky")).progress.step, 30);
  });

  test("exit codes: a NaN failure exits 4 with a termination message; a bad spec exits 3; no --spec exits 2", async () => {
    const specFile = join(dir, "spec-nan.yaml");
    writeFileSync(specFile, stringify(spec("tuned")));
    const term = join(dir, "term-nan");
    const code = await runJob(["--spec", specFile], {
      env: { LORAFORGE_OUTPUT_DIR: "/out", LORAFORGE_TERMINATION_LOG: term },
      kube,
      log: () => {},
      pipeline: async () => {
        throw new TrainingFailure("step 12: loss is NaN in layer 31 (down_proj)", 4);
      },
    });
    assert.equal(code, 4);
    assert.match(readFileSync(term, "utf8"), /loss is NaN in layer 31/);

    const bad = join(dir, "bad.yaml");
    writeFileSync(
      bad,
      "apiVersion: loraforge.dev/v1alpha1\nkind: LoraFineTune\nmetadata: {name: x}\nspec: {}\n",
    );
    const badTerm = join(dir, "term-bad");
    const pipeline = async () => ({});
    assert.equal(
      await runJob(["--spec", bad], {
        env: { LORAFORGE_OUTPUT_DIR: "/o", LORAFORGE_TERMINATION_LOG: badTerm },
        kube,
        log: () => {},
        pipeline,
      }),
      3,
    );
    assert.match(readFileSync(badTerm, "utf8"), /spec\.baseModel/);
    assert.equal(
      await runJob([], {
        env: { LORAFORGE_OUTPUT_DIR: "/o", LORAFORGE_TERMINATION_LOG: join(dir, "t2") },
        kube,
        log: () => {},
        pipeline,
      }),
      2,
    );
  });

  test("end to end: `loraforge job` trains stories260K on CPU through the native core and reports into status", {
    timeout: 180_000,
  }, async () => {
    const work = mkdtempSync(join(tmpdir(), "lf-job-e2e-"));
    const bin = await cliBin();
    const models = join(work, "models");
    const imported = spawnSync(
      process.execPath,
      [
        bin,
        "import",
        "llama2c",
        join(ASSETS, "stories260K", "stories260K.bin"),
        join(ASSETS, "stories260K", "tok512.model"),
        "--out",
        join(models, "stories260K"),
      ],
      { encoding: "utf8" },
    );
    assert.equal(imported.status, 0, imported.stderr);
    const e2eSpec = {
      ...spec("e2e"),
      spec: {
        baseModel: { source: { pvc: { claimName: "models", path: "stories260K" } } },
        dataset: {
          source: { pvc: { claimName: "examples", path: "stories-instruct/stories.jsonl" } },
          promptTemplate: "alpaca_short",
          valSetSize: 16,
          cutoffLen: 128,
        },
        lora: { r: 4, alpha: 8, dropout: 0 },
        training: {
          maxSteps: 6,
          batchSize: 8,
          microBatchSize: 8,
          warmupSteps: 1,
          evalSteps: 3,
          saveSteps: 3,
          learningRate: 0.003,
        },
        resources: { gpus: 0 },
        output: { pvc: { claimName: "runs", path: "e2e" } },
      },
    };
    const specFile = join(work, "spec.yaml");
    writeFileSync(specFile, stringify(e2eSpec));
    const saDir = join(work, "sa");
    mkdirSync(saDir);
    const token = z.object({ status: z.object({ token: z.string() }) }).parse(
      await cluster.client.create(`/api/v1/namespaces/${ns}/serviceaccounts/e2e-trainer/token`, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {},
      }),
    ).status.token;
    writeFileSync(join(saDir, "token"), token);
    writeFileSync(join(saDir, "ca.crt"), cluster.caPem);
    const out = join(work, "runs", "e2e");
    const url = new URL(cluster.server);
    const child = spawn(process.execPath, [bin, "job", "--spec", specFile], {
      env: {
        ...process.env,
        KUBERNETES_SERVICE_HOST: url.hostname,
        KUBERNETES_SERVICE_PORT: url.port,
        LORAFORGE_SA_DIR: saDir,
        LORAFORGE_MODEL_DIR: join(models, "stories260K"),
        LORAFORGE_DATASET_PATH: join(repo, "examples", "stories-instruct", "stories.jsonl"),
        LORAFORGE_OUTPUT_DIR: out,
        LORAFORGE_STATUS_INTERVAL_S: "1",
        LORAFORGE_TERMINATION_LOG: join(work, "termination-log"),
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    assert.equal(code, 0, stderr.slice(-2000));
    // The same job with a dataset that is not there: exit 3, the reason in the termination log.
    const badTerm = join(work, "termination-log-bad");
    const bad = spawnSync(process.execPath, [bin, "job", "--spec", specFile], {
      env: {
        ...process.env,
        KUBERNETES_SERVICE_HOST: url.hostname,
        KUBERNETES_SERVICE_PORT: url.port,
        LORAFORGE_SA_DIR: saDir,
        LORAFORGE_MODEL_DIR: join(models, "stories260K"),
        LORAFORGE_DATASET_PATH: join(work, "missing.jsonl"),
        LORAFORGE_OUTPUT_DIR: join(work, "runs", "bad"),
        LORAFORGE_TERMINATION_LOG: badTerm,
      },
      encoding: "utf8",
    });
    assert.equal(bad.status, 3, bad.stderr.slice(-1000));
    assert.match(readFileSync(badTerm, "utf8"), /missing\.jsonl/);
    const s = await statusOf("e2e");
    assert.equal(s.progress.step, 6);
    assert.equal(s.progress.totalSteps, 6);
    assert.ok(Number.isFinite(s.progress.loss));
    assert.ok(s.checkpoints.length >= 1, "checkpoints reported");
    const adapterFile = join(out, "adapter", "adapter_model.safetensors");
    assert.equal(
      s.adapter.digest,
      `sha256:${createHash("sha256").update(readFileSync(adapterFile)).digest("hex")}`,
    );
    assert.equal(s.adapter.sizeBytes, readFileSync(adapterFile).length);
    assert.equal(s.selectedCheckpoint.policy, "lowestTrainLoss");
    // spec.evaluation is on by default: the job evaluated base vs tuned after training, and
    // status.evaluation is eval.json's summary (the metrics of spec.evaluation.metrics)
    const evalJson = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    assert.equal(s.evaluation.path, join(out, "eval.json"));
    assert.equal(s.evaluation.samples, evalJson.data.examples);
    for (const variant of ["base", "tuned"])
      for (const key of ["evalLoss", "exactMatch", "rougeL", "promptRepetition"])
        assert.equal(
          s.evaluation[variant][key],
          evalJson.metrics[variant][key],
          `${variant}.${key}`,
        );
    assert.ok(s.evaluation.examples.length >= 1 && s.evaluation.examples.length <= 3);
  });
});
