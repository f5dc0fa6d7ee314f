// s3 sources and the s3 output against a real S3-compatible server (versitygw, SigV4 checked):
// a model prefix and a dataset object are fetched; the output uploads the adapter, eval.json
// and the selected checkpoint into the run's own folder with the completion marker written
// last; a denied bucket, bad credentials and an unreachable endpoint fail the run (never a
// result) naming the location and the reason.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { API_VERSION, KIND, parseLoraFineTune } from "@loraforge/crds";
import { type S3Server, startS3Server } from "@loraforge/test-k8s";
import { storeOutput } from "../../src/inpod/outputs.ts";
import type { TrainingResult } from "../../src/inpod/pipeline.ts";
import type { SourceFailure } from "../../src/inpod/sources/failure.ts";
import { isModelFile } from "../../src/inpod/sources/hf.ts";
import { fetchS3Object, fetchS3Prefix, s3Client } from "../../src/inpod/sources/s3.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe("s3 sources and output against versitygw", () => {
  let s3: S3Server;
  const work = mkdtempSync(join(tmpdir(), "lf-s3t-"));
  let n = 0;
  const dir = () => join(work, `d${n++}`);
  const weights = randomBytes(200 * 1024);
  const creds = () => ({
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    endpoint: s3.endpoint,
    region: s3.region,
  });
  const secretDir = (c: Record<string, string>) => {
    const d = dir();
    mkdirSync(d, { recursive: true });
    for (const [k, v] of Object.entries(c)) writeFileSync(join(d, k), `${v}\n`);
    return d;
  };

  before(async () => {
    s3 = await startS3Server();
    const client = s3Client(creds());
    for (const b of ["models", "runs"]) await client.send(new CreateBucketCommand({ Bucket: b }));
    const put = (Key: string, Body: Buffer | string) =>
      client.send(new PutObjectCommand({ Bucket: "models", Key, Body }));
    await put("tiny/config.json", "{}");
    await put("tiny/tokenizer.json", "{}");
    await put("tiny/model.safetensors", weights);
    await put("tiny/README.md", "not a model file");
    await put("data/alpaca.json", '[{"instruction":"a","input":"","output":"b"}]');
    client.destroy();
  });
  after(() => s3?.stop());

  test("a model prefix: only the model's files; a dataset object, streamed", async () => {
    const client = s3Client(creds());
    const d = dir();
    const got = await fetchS3Prefix("s3://models/tiny/", d, {
      client,
      maxBytes: 1 << 20,
      keep: isModelFile,
    });
    assert.deepEqual(got.sort(), ["config.json", "model.safetensors", "tokenizer.json"]);
    assert.equal(sha(readFileSync(join(d, "model.safetensors"))), sha(weights));
    const f = await fetchS3Object("s3://models/data/alpaca.json", join(dir(), "a.json"), {
      client,
      maxBytes: 1 << 20,
    });
    assert.equal(f.bytes, statSync(f.path).size);
    await assert.rejects(
      fetchS3Prefix("s3://models/tiny", dir(), { client, maxBytes: 1000, keep: isModelFile }),
      (e: SourceFailure) =>
        e.exitCode === 3 && /exceed the size limit of 1000 bytes/.test(e.message),
    );
    client.destroy();
  });

  test("a missing key and a wrong secret key fail for good (exit 3), naming the object", async () => {
    const client = s3Client(creds());
    await assert.rejects(
      fetchS3Object("s3://models/nope.json", join(dir(), "x"), { client, maxBytes: 10 }),
      (e: SourceFailure) =>
        e.exitCode === 3 &&
        e.message.startsWith("source s3://models/nope.json:") &&
        /404/.test(e.message),
    );
    const bad = s3Client({ ...creds(), secretAccessKey: "wrong-wrong-wrong" });
    await assert.rejects(
      fetchS3Object("s3://models/data/alpaca.json", join(dir(), "x"), {
        client: bad,
        maxBytes: 1 << 20,
      }),
      (e: SourceFailure) =>
        e.exitCode === 3 && /403/.test(e.message) && !e.message.includes("wrong-wrong-wrong"),
    );
    client.destroy();
    bad.destroy();
  });

  // A finished run's local output, as runTraining leaves it.
  function localRun() {
    const out = dir();
    const adapter = join(out, "adapter");
    const ckpt = join(out, "checkpoints", "checkpoint-20");
    mkdirSync(adapter, { recursive: true });
    mkdirSync(ckpt, { recursive: true });
    const adapterBytes = randomBytes(4096);
    writeFileSync(join(adapter, "adapter_model.safetensors"), adapterBytes);
    writeFileSync(join(adapter, "adapter_config.json"), "{}");
    writeFileSync(join(ckpt, "adapter_model.safetensors"), adapterBytes);
    writeFileSync(join(ckpt, "optimizer.safetensors"), randomBytes(8192));
    writeFileSync(join(out, "eval.json"), '{"version":1}');
    writeFileSync(join(out, "summary.json"), "{}");
    const result: TrainingResult = {
      adapter: {
        path: adapter,
        digest: `sha256:${sha(adapterBytes)}`,
        sizeBytes: 4096,
        verified: true,
      },
      selectedCheckpoint: { step: 20, path: ckpt, policy: "lowestTrainLoss" },
      evaluation: { path: join(out, "eval.json"), samples: 4, base: { rougeL: 0.1 } },
    };
    return { out, result };
  }
  const lft = (name: string, uri: string) => {
    const l = parseLoraFineTune({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace: "ml", uid: `uid-${name}` },
      spec: {
        baseModel: { source: { pvc: { claimName: "m", path: "tiny" } } },
        dataset: { source: { pvc: { claimName: "d", path: "a.json" } } },
        resources: { gpus: 0 },
        output: { uri },
      },
    });
    return l;
  };

  test("the s3 output: the run's own folder, adapter + eval.json + selected checkpoint, the marker last", async () => {
    const { out, result } = localRun();
    const stored = await storeOutput(
      lft("pr-7", "s3://runs/alpaca"),
      { outDir: out, result },
      {
        LORAFORGE_OUTPUT_SECRET_DIR: secretDir(creds()),
      },
    );
    const root = "s3://runs/alpaca/pr-7-uid-pr-7";
    assert.equal(stored.adapter?.path, `${root}/adapter`);
    assert.equal(stored.adapter?.digest, result.adapter?.digest);
    assert.equal(stored.selectedCheckpoint?.path, `${root}/checkpoints/checkpoint-20`);
    assert.equal(stored.evaluation?.path, `${root}/eval.json`);
    // What the server holds (versitygw's posix backend: bucket/key as files).
    const folder = join(s3.root, "runs", "alpaca", "pr-7-uid-pr-7");
    const files = filesUnder(folder)
      .map((f) => f.slice(folder.length + 1))
      .sort();
    assert.deepEqual(files, [
      "adapter/adapter_config.json",
      "adapter/adapter_model.safetensors",
      "checkpoints/checkpoint-20/adapter_model.safetensors",
      "checkpoints/checkpoint-20/optimizer.safetensors",
      "eval.json",
      "loraforge-complete.json",
      "summary.json",
    ]);
    assert.equal(
      `sha256:${sha(readFileSync(join(folder, "adapter/adapter_model.safetensors")))}`,
      result.adapter?.digest,
    );
    const marker = JSON.parse(readFileSync(join(folder, "loraforge-complete.json"), "utf8"));
    assert.equal(marker.adapter.digest, result.adapter?.digest);
    assert.equal(marker.files.length, 6);
    const markerTime = statSync(join(folder, "loraforge-complete.json")).mtimeMs;
    for (const f of files)
      assert.ok(statSync(join(folder, f)).mtimeMs <= markerTime, `${f} before the marker`);
  });

  test("a denied bucket, bad credentials and an unreachable endpoint fail the run, never a result", async () => {
    const { out, result } = localRun();
    await assert.rejects(
      storeOutput(
        lft("a", "s3://no-such-bucket/x"),
        { outDir: out, result },
        { LORAFORGE_OUTPUT_SECRET_DIR: secretDir(creds()) },
      ),
      (e: SourceFailure) =>
        e.exitCode === 3 &&
        e.message.startsWith("output s3://no-such-bucket/x/a-uid-a:") &&
        /NoSuchBucket/.test(e.message),
    );
    await assert.rejects(
      storeOutput(
        lft("b", "s3://runs/x"),
        { outDir: out, result },
        {
          LORAFORGE_OUTPUT_SECRET_DIR: secretDir({ ...creds(), secretAccessKey: "nope-nope" }),
        },
      ),
      (e: SourceFailure) =>
        e.exitCode === 3 && /403|SignatureDoesNotMatch|AccessDenied/.test(e.message),
    );
    const closed = s3.endpoint.replace(/:\d+$/, ":1");
    await assert.rejects(
      storeOutput(
        lft("c", "s3://runs/x"),
        { outDir: out, result },
        {
          LORAFORGE_OUTPUT_SECRET_DIR: secretDir({ ...creds(), endpoint: closed }),
        },
      ),
      (e: SourceFailure) =>
        e.exitCode === 6 &&
        e.message.startsWith("output s3://runs/x/c-uid-c:") &&
        /ECONNREFUSED/.test(e.message),
    );
  });
});
