import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseLoraFineTune } from "@loraforge/crds";
import { PNG } from "pngjs";
import { decodeShard } from "../src/shards/lfs.ts";
import type { CoreEvent } from "../src/train/events.ts";
import { historyOf, readHistory } from "../src/train/metrics.ts";
import { resolveLocalPaths } from "../src/train/resolve.ts";
import { RunSetupError, runTraining } from "../src/train/run.ts";
import { candidatesOf, selectCheckpoint } from "../src/train/select.ts";
import { importStories260K, REPO_ROOT, tempDir } from "./helpers.ts";

function manifest(overrides: { policy?: string; valSetSize?: number; maxSteps?: number } = {}) {
  return parseLoraFineTune({
    apiVersion: "loraforge.dev/v1alpha1",
    kind: "LoraFineTune",
    metadata: { name: "t" },
    spec: {
      baseModel: { source: { pvc: { claimName: "models", path: "stories260K" } } },
      dataset: {
        source: { pvc: { claimName: "data", path: "stories.jsonl" } },
        promptTemplate: "alpaca_short",
        valSetSize: overrides.valSetSize ?? 8,
        cutoffLen: 128,
      },
      lora: { r: 4, alpha: 8, dropout: 0 },
      training: {
        epochs: 1,
        maxSteps: overrides.maxSteps ?? 6,
        learningRate: 3e-3,
        batchSize: 4,
        microBatchSize: 4,
        warmupSteps: 1,
        evalSteps: 2,
        saveSteps: 2,
        saveTotalLimit: 2,
      },
      checkpointSelection: overrides.policy ?? "lowestTrainLoss",
      resources: { gpus: 0 },
      output: { pvc: { claimName: "runs", path: "t" } },
    },
  });
}

describe("local training runs through loraforge-core", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let volumes: Record<string, string>;
  before(async () => {
    tmp = await tempDir();
    await importStories260K(join(tmp.dir, "models", "stories260K"));
    const lines = (
      await readFile(join(REPO_ROOT, "examples", "stories-instruct", "stories.jsonl"), "utf8")
    )
      .split("\n")
      .slice(0, 48);
    await import("node:fs/promises").then((fs) => fs.mkdir(join(tmp.dir, "data")));
    await writeFile(join(tmp.dir, "data", "stories.jsonl"), `${lines.join("\n")}\n`);
    volumes = { models: join(tmp.dir, "models"), data: join(tmp.dir, "data") };
  });
  after(() => tmp.cleanup());

  const pathsFor = (out: string) =>
    resolveLocalPaths(manifest().spec, {
      specFile: join(tmp.dir, "spec.yaml"),
      volumes,
      outDir: join(tmp.dir, out),
    });

  test("a run: shards, metrics.jsonl, loss curve, selected adapter, summary; a second call is a no-op", async () => {
    const events: CoreEvent[] = [];
    const paths = pathsFor("run1");
    const s = await runTraining(manifest().spec, {
      paths,
      threads: 1,
      onEvent: (e) => events.push(e),
    });
    assert.equal(s.status, "done", JSON.stringify(s.error));
    assert.equal(s.exitCode, 0);
    assert.equal(s.step, 6);
    assert.deepEqual([...new Set(events.map((e) => e.event))].sort(), [
      "checkpoint",
      "done",
      "eval",
      "start",
      "step",
    ]);
    const out = paths.outDir;
    const train = decodeShard(await readFile(join(out, "data", "train.lfs")));
    const val = decodeShard(await readFile(join(out, "data", "val.lfs")));
    assert.equal(train.records.length, 40);
    assert.equal(val.records.length, 8);
    assert.equal(train.records[0]?.ids[0], 1, "BOS first");
    const h = await readHistory(join(out, "metrics.jsonl"));
    assert.equal(h.steps.length, 6);
    assert.ok(h.evals.length >= 2 && h.evals[0]?.step === 0);
    assert.ok(
      s.valLoss.before !== null && s.valLoss.after !== null && s.valLoss.after < s.valLoss.before,
      "validation loss drops",
    );
    const png = PNG.sync.read(await readFile(join(out, "loss_curve.png")));
    assert.deepEqual([png.width, png.height], [800, 480]);
    assert.ok(existsSync(join(out, "adapter", "adapter_model.safetensors")));
    const cfg = JSON.parse(await readFile(join(out, "adapter", "adapter_config.json"), "utf8"));
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.r, 4);
    assert.equal(s.selection?.applied, "lowestTrainLoss");
    const again = await runTraining(manifest().spec, {
      paths,
      threads: 1,
      onEvent: () => assert.fail("no training expected"),
    });
    assert.deepEqual(again, s);
  });

  test("checkpointSelection: last and lowestEvalLoss pick what they say", async () => {
    const last = await runTraining(manifest({ policy: "last" }).spec, {
      paths: pathsFor("last"),
      threads: 1,
    });
    assert.equal(last.selection?.step, 6);
    const byEval = await runTraining(manifest({ policy: "lowestEvalLoss" }).spec, {
      paths: pathsFor("eval"),
      threads: 1,
    });
    const sel = JSON.parse(await readFile(join(tmp.dir, "eval", "selection.json"), "utf8"));
    const vals = sel.candidates.map((c: { valLoss: number }) => c.valLoss);
    assert.equal(byEval.selection?.valLoss, Math.min(...vals));
  });

  test("stopping saves a checkpoint; running again resumes from it and finishes", async () => {
    const paths = pathsFor("resume");
    const controller = new AbortController();
    const first = await runTraining(manifest({ maxSteps: 12 }).spec, {
      paths,
      threads: 1,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.event === "checkpoint" && e.step >= 4) controller.abort();
      },
    });
    assert.equal(first.status, "interrupted");
    assert.equal(first.exitCode, 130);
    const starts: number[] = [];
    const second = await runTraining(manifest({ maxSteps: 12 }).spec, {
      paths,
      threads: 1,
      onEvent: (e) => {
        if (e.event === "start") starts.push(e.resumed_from_step);
      },
    });
    assert.equal(second.status, "done");
    assert.ok((starts[0] ?? 0) >= 4, `resumed from ${starts[0]}`);
    assert.equal(second.step, 12);
  });

  test("checkpoints made on other data are not resumed with new data", async () => {
    const paths = pathsFor("changed");
    await runTraining(manifest().spec, { paths, threads: 1 });
    const changed = join(tmp.dir, "data2");
    await import("node:fs/promises").then((fs) => fs.mkdir(changed));
    const text = await readFile(join(tmp.dir, "data", "stories.jsonl"), "utf8");
    await writeFile(join(changed, "stories.jsonl"), text.replace("Lily", "Lola"));
    const p2 = resolveLocalPaths(manifest().spec, {
      specFile: join(tmp.dir, "spec.yaml"),
      volumes: { ...volumes, data: changed },
      outDir: paths.outDir,
    });
    const before = await readFile(join(paths.outDir, "data", "train.lfs"));
    await assert.rejects(runTraining(manifest().spec, { paths: p2, threads: 1 }), RunSetupError);
    assert.deepEqual(
      await readFile(join(paths.outDir, "data", "train.lfs")),
      before,
      "shards untouched",
    );
  });
});

describe("checkpoint selection rules", () => {
  const t = "2026-01-01T00:00:00Z";
  const step = (n: number, loss: number) =>
    ({
      event: "step",
      time: t,
      step: n,
      total_steps: 6,
      epoch: n / 6,
      loss,
      lr: 1e-3,
      grad_norm: 1,
      tokens: 10,
      tokens_per_s: 1,
      elapsed_s: n,
      eta_s: 6 - n,
    }) as const;
  const history = historyOf([
    {
      event: "start",
      time: t,
      version: "x",
      backend: "cpu",
      threads: 1,
      model: { n_layers: 1, dim: 1, n_heads: 1, n_kv_heads: 1, vocab_size: 1, n_params: 1 },
      trainable_params: 1,
      train_examples: 1,
      val_examples: 1,
      total_steps: 6,
      resumed_from_step: 0,
    },
    { event: "eval", time: t, step: 0, val_loss: 3, val_tokens: 1 },
    step(1, 2.0),
    step(2, 1.0),
    { event: "eval", time: t, step: 2, val_loss: 1.5, val_tokens: 1 },
    { event: "checkpoint", time: t, step: 2, path: "/c/2", train_loss: 1.5, val_loss: 1.5 },
    step(3, 0.8),
    step(4, 0.9),
    { event: "eval", time: t, step: 4, val_loss: 1.2, val_tokens: 1 },
    { event: "checkpoint", time: t, step: 4, path: "/c/4", train_loss: 0.85, val_loss: 1.2 },
    step(5, 0.5),
    step(6, 0.6),
    { event: "eval", time: t, step: 6, val_loss: 1.4, val_tokens: 1 },
    {
      event: "done",
      time: t,
      step: 6,
      adapter_dir: "/final",
      train_loss: 0.55,
      val_loss: 1.4,
      elapsed_s: 6,
    },
  ]);
  const candidates = candidatesOf(history, {
    checkpoints: new Map([
      [2, "/c/2"],
      [4, "/c/4"],
    ]),
    final: { step: 6, dir: "/final" },
  });
  test("candidates carry the window's train loss and the eval at their step", () => {
    assert.deepEqual(
      candidates.map((c) => [c.step, c.trainLoss, c.valLoss, c.kind]),
      [
        [2, 1.5, 1.5, "checkpoint"],
        [4, 0.85, 1.2, "checkpoint"],
        [6, 0.55, 1.4, "final"],
      ],
    );
  });
  test("lowestTrainLoss, last, lowestEvalLoss", () => {
    assert.equal(selectCheckpoint("lowestTrainLoss", candidates).selected.step, 6);
    assert.equal(selectCheckpoint("last", candidates).selected.step, 6);
    assert.equal(selectCheckpoint("lowestEvalLoss", candidates).selected.step, 4);
  });
  test("without validation, lowestEvalLoss falls back to train loss and says so", () => {
    const noVal = candidates.map((c) => ({ ...c, valLoss: null }));
    const s = selectCheckpoint("lowestEvalLoss", noVal);
    assert.equal(s.applied, "lowestTrainLoss");
    assert.match(s.note ?? "", /no candidate has a validation loss/);
  });
  test("a resumed session replaces what the interrupted one logged after the checkpoint", () => {
    const h = historyOf([
      step(1, 2),
      step(2, 1.9),
      step(3, 1.8),
      {
        event: "start",
        time: t,
        version: "x",
        backend: "cpu",
        threads: 1,
        model: { n_layers: 1, dim: 1, n_heads: 1, n_kv_heads: 1, vocab_size: 1, n_params: 1 },
        trainable_params: 1,
        train_examples: 1,
        val_examples: 1,
        total_steps: 6,
        resumed_from_step: 2,
      },
      step(3, 1.7),
    ]);
    assert.deepEqual(
      h.steps.map((s) => [s.step, s.loss]),
      [
        [1, 2],
        [2, 1.9],
        [3, 1.7],
      ],
    );
  });
});
