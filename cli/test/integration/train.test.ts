import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseLoraFineTune } from "@loraforge/crds";
import { PNG } from "pngjs";
import { decodeShard } from "../../src/shards/lfs.ts";
import { stopReason } from "../../src/train/core.ts";
import type { CoreEvent } from "../../src/train/events.ts";
import { readHistory } from "../../src/train/metrics.ts";
import { resolveLocalPaths } from "../../src/train/resolve.ts";
import { RunSetupError, runTraining } from "../../src/train/run.ts";
import { importStories260K, REPO_ROOT, tempDir } from "../support/helpers.ts";

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
        // as the pod's entrypoint aborts on SIGTERM: the core is stopped with the same signal
        if (e.event === "checkpoint" && e.step >= 4) controller.abort(stopReason("SIGTERM"));
      },
    });
    assert.equal(first.status, "interrupted");
    assert.equal(first.exitCode, 130);
    assert.match(
      await readFile(join(tmp.dir, "resume", "core.log"), "utf8"),
      /stopped by signal 15 after saving checkpoint-\d+/,
    );
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
