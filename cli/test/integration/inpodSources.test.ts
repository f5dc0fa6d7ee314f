// The trainer Job's pipeline end to end with fetched sources and an uploaded output: the model
// from a Hub (hf://, token Secret), the dataset from the Hub's dataset files, training on
// stories260K with the native core, and the result uploaded to an S3-compatible server
// (versitygw) under the run's own folder, marker last; status points at the uploaded adapter
// with its digest. An unreachable output store fails the run (exit 6), never a result.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { API_VERSION, KIND, parseLoraFineTune } from "@loraforge/crds";
import { type S3Server, startS3Server } from "@loraforge/test-k8s";
import { cliPipeline } from "../../src/inpod/cliPipeline.ts";
import type { SourceFailure } from "../../src/inpod/sources/failure.ts";
import { s3Client } from "../../src/inpod/sources/s3.ts";
import { importStories260K, STORIES, tempDir } from "../support/helpers.ts";
import { makeTls, type Running, startHub } from "../support/sourceServers.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("loraforge job's pipeline with hf sources and an s3 output", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let s3: S3Server;
  let hub: Running;
  const tls = makeTls();
  const token = `hf_${randomBytes(6).toString("hex")}`;
  const secrets: Record<string, string> = {};

  const spec = (name: string) =>
    parseLoraFineTune({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace: "ml", uid: `0000-${name}` },
      spec: {
        baseModel: { source: { uri: "hf://org/stories260K@main", secretName: "hf" } },
        dataset: {
          source: { uri: "hf://datasets/org/stories/data/stories.jsonl", secretName: "hf" },
          promptTemplate: "alpaca_short",
          valSetSize: 4,
          cutoffLen: 128,
        },
        lora: { r: 4, alpha: 8, dropout: 0 },
        training: {
          epochs: 1,
          maxSteps: 4,
          batchSize: 4,
          microBatchSize: 4,
          warmupSteps: 1,
          saveSteps: 2,
          evalSteps: 2,
        },
        checkpointSelection: "last",
        evaluation: { enabled: false },
        resources: { gpus: 0 },
        output: { uri: "s3://runs/stories", secretName: "s3" },
      },
    });

  before(async () => {
    tmp = await tempDir("lf-inpod-src-");
    const model = join(tmp.dir, "model");
    await importStories260K(model);
    const files: Record<string, Buffer> = {};
    for (const f of readdirSync(model)) files[f] = readFileSync(join(model, f));
    const data = Buffer.from(
      `${readFileSync(STORIES, "utf8").split("\n").slice(0, 24).join("\n")}\n`,
    );
    hub = await startHub(tls, token, {
      "org/stories260K": { sha: "1".repeat(40), files },
      "datasets/org/stories": { sha: "2".repeat(40), files: { "data/stories.jsonl": data } },
    });
    s3 = await startS3Server();
    const c = {
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      endpoint: s3.endpoint,
    };
    const client = s3Client(c);
    await client.send(new CreateBucketCommand({ Bucket: "runs" }));
    client.destroy();
    for (const [role, values] of Object.entries({
      hf: { token },
      s3: c,
      s3down: { ...c, endpoint: s3.endpoint.replace(/:\d+$/, ":1") },
    })) {
      secrets[role] = join(tmp.dir, "secrets", role);
      mkdirSync(secrets[role] as string, { recursive: true });
      for (const [k, v] of Object.entries(values))
        writeFileSync(join(secrets[role] as string, k), v);
    }
  });
  after(async () => {
    await hub?.close();
    await s3?.stop();
    await tmp?.cleanup();
  });

  const env = (name: string, output: string) => ({
    ...process.env,
    HF_ENDPOINT: hub.url,
    LORAFORGE_CA_FILE: tls.caFile,
    LORAFORGE_SOURCES_DIR: join(tmp.dir, name, "sources"),
    LORAFORGE_MODEL_SECRET_DIR: secrets.hf,
    LORAFORGE_DATASET_SECRET_DIR: secrets.hf,
    LORAFORGE_OUTPUT_SECRET_DIR: output,
  });

  test("fetches, trains, uploads; status gives the uploaded adapter and its digest", async () => {
    const out = join(tmp.dir, "ok", "out");
    const result = await cliPipeline(() => {})({
      lft: spec("ok"),
      modelDir: undefined,
      datasetPath: undefined,
      outputDir: out,
      env: env("ok", secrets.s3 as string),
      onEvent: () => {},
      signal: new AbortController().signal,
    });
    const folder = join(s3.root, "runs", "stories", "ok-0000-ok");
    assert.equal(result.adapter?.path, "s3://runs/stories/ok-0000-ok/adapter");
    const uploaded = readFileSync(join(folder, "adapter", "adapter_model.safetensors"));
    assert.equal(result.adapter?.digest, `sha256:${sha(uploaded)}`);
    assert.deepEqual(uploaded, readFileSync(join(out, "adapter", "adapter_model.safetensors")));
    assert.equal(
      result.selectedCheckpoint?.path,
      "s3://runs/stories/ok-0000-ok/checkpoints/checkpoint-4",
    );
    const marker = JSON.parse(readFileSync(join(folder, "loraforge-complete.json"), "utf8"));
    assert.equal(marker.adapter.digest, result.adapter?.digest);
    // The Hub got the token for every API and resolve call, at the resolved commit.
    const resolves = hub.requests.filter((r) => r.path.includes("/resolve/"));
    assert.ok(resolves.length >= 3 && resolves.every((r) => r.authorization === `Bearer ${token}`));
    assert.ok(
      resolves.some((r) => r.path.startsWith(`/datasets/org/stories/resolve/${"2".repeat(40)}/`)),
    );
  });

  test("an unreachable output store fails the run (exit 6, the location and reason), never a result", async () => {
    await assert.rejects(
      cliPipeline(() => {})({
        lft: spec("down"),
        modelDir: undefined,
        datasetPath: undefined,
        outputDir: join(tmp.dir, "down", "out"),
        env: env("down", secrets.s3down as string),
        onEvent: () => {},
        signal: new AbortController().signal,
      }),
      (e: SourceFailure) =>
        e.exitCode === 6 &&
        e.message.startsWith("output s3://runs/stories/down-0000-down:") &&
        /ECONNREFUSED/.test(e.message),
    );
  });
});
