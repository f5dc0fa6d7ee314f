// https:// and hf:// sources against real local TLS servers: a file server and a server of the
// Hub's file endpoints. Streamed, pinned by sha256, size-limited, atomic (nothing left at the
// destination on failure), credentials as Bearer and never sent to the CDN, every failure
// naming the URL and the reason.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { SourceFailure } from "../../src/inpod/sources/failure.ts";
import { fetchHfDatasetFile, fetchHfModel } from "../../src/inpod/sources/hf.ts";
import { downloadHttps, splitPin } from "../../src/inpod/sources/https.ts";
import { fetchHttpsModel } from "../../src/inpod/sources/httpsModel.ts";
import { makeTls, type Running, startFileServer, startHub } from "../support/sourceServers.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("https and hf sources against local servers", () => {
  const tls = makeTls();
  const ca = readFileSync(tls.caFile, "utf8");
  const data = Buffer.from('[{"instruction":"hi","input":"","output":"there"}]\n');
  const weights = randomBytes(64 * 1024);
  const shards = [randomBytes(1000), randomBytes(2000)];
  let files: Running;
  let hub: Running;
  const hubToken = `hf_${randomBytes(8).toString("hex")}`;
  const commit = "a".repeat(40);
  const work = mkdtempSync(join(tmpdir(), "lf-http-"));
  let n = 0;
  const dir = () => join(work, `d${n++}`);

  before(async () => {
    files = await startFileServer(tls, {
      "/data/alpaca.json": data,
      "/big.bin": randomBytes(300 * 1024),
      "/m/config.json": Buffer.from("{}"),
      "/m/tokenizer.json": Buffer.from("{}"),
      "/m/model.safetensors": weights,
      "/s/config.json": Buffer.from("{}"),
      "/s/tokenizer.json": Buffer.from("{}"),
      "/s/model.safetensors.index.json": Buffer.from(
        JSON.stringify({
          weight_map: {
            a: "model-00001-of-00002.safetensors",
            b: "model-00002-of-00002.safetensors",
          },
        }),
      ),
      "/s/model-00001-of-00002.safetensors": shards[0] as Buffer,
      "/s/model-00002-of-00002.safetensors": shards[1] as Buffer,
    });
    hub = await startHub(tls, hubToken, {
      "org/tiny": {
        sha: commit,
        files: {
          "config.json": Buffer.from('{"model_type":"llama"}'),
          "tokenizer.json": Buffer.from("{}"),
          "model.safetensors": weights,
          "README.md": Buffer.from("# not fetched"),
          "onnx/model.onnx": Buffer.from("not fetched"),
        },
      },
    });
  });
  after(async () => {
    await files?.close();
    await hub?.close();
  });

  test("downloads a pinned file; the digest and size come back", async () => {
    const dest = join(dir(), "alpaca.json");
    const got = await downloadHttps(`${files.url}/data/alpaca.json`, dest, {
      maxBytes: 1024,
      sha256: sha(data),
      ca,
    });
    assert.deepEqual(readFileSync(dest), data);
    assert.equal(got.sha256, sha(data));
    assert.equal(got.bytes, data.length);
  });

  test("a sha256 mismatch fails naming the URL, the expected and the actual digest; nothing is left", async () => {
    const d = dir();
    const wrong = "0".repeat(64);
    await assert.rejects(
      downloadHttps(`${files.url}/data/alpaca.json`, join(d, "x.json"), {
        maxBytes: 1024,
        sha256: wrong,
        ca,
      }),
      (e: SourceFailure) => {
        assert.equal(e.exitCode, 3);
        assert.ok(e.message.includes(`${files.url}/data/alpaca.json`), e.message);
        assert.ok(
          e.message.includes(`expected ${wrong}`) && e.message.includes(`got ${sha(data)}`),
          e.message,
        );
        return true;
      },
    );
    assert.deepEqual(readdirSync(d), [], "no partial or final file stays behind");
  });

  test("the size limit aborts with the sizes; a 404 is permanent; a closed port is transient", async () => {
    await assert.rejects(
      downloadHttps(`${files.url}/big.bin`, join(dir(), "big"), { maxBytes: 100 * 1024, ca }),
      (e: SourceFailure) =>
        e.exitCode === 3 && /300\.0 KiB exceeds the size limit of 100\.0 KiB/.test(e.message),
    );
    await assert.rejects(
      downloadHttps(`${files.url}/nope`, join(dir(), "n"), { maxBytes: 1, ca }),
      (e: SourceFailure) => e.exitCode === 3 && e.message.includes("/nope: HTTP 404"),
    );
    const closed = files.url.replace(/:\d+$/, ":1");
    await assert.rejects(
      downloadHttps(`${closed}/x`, join(dir(), "n"), { maxBytes: 1, ca }),
      (e: SourceFailure) => e.exitCode === 6 && e.message.includes("ECONNREFUSED"),
    );
    await assert.rejects(
      downloadHttps(`${files.url}/data/alpaca.json`, join(dir(), "n"), { maxBytes: 1024 }),
      (e: SourceFailure) => /self[- ]signed/.test(e.message),
      "the server's certificate is checked",
    );
  });

  test("#sha256= is the pin; any other fragment is refused", () => {
    const pin = "Ab".repeat(32);
    assert.deepEqual(splitPin(`https://h/x.json#sha256=${pin}`), {
      url: "https://h/x.json",
      sha256: pin.toLowerCase(),
    });
    assert.throws(() => splitPin("https://h/x.json#md5=1"), /not a pin/);
  });

  test("an https model directory: single file and sharded weights", async () => {
    const d1 = dir();
    await fetchHttpsModel(`${files.url}/m`, d1, { maxBytes: 1 << 20, ca });
    assert.deepEqual(readdirSync(d1).sort(), [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
    ]);
    const d2 = dir();
    await fetchHttpsModel(`${files.url}/s/`, d2, { maxBytes: 1 << 20, ca });
    assert.deepEqual(readFileSync(join(d2, "model-00002-of-00002.safetensors")), shards[1]);
  });

  test("hf:// model: the revision's commit, only the model's files, the token as Bearer and not to the CDN", async () => {
    const d = dir();
    const got = await fetchHfModel("hf://org/tiny@main", d, {
      endpoint: hub.url,
      token: hubToken,
      maxBytes: 1 << 20,
      ca,
    });
    assert.equal(got, commit);
    assert.deepEqual(readdirSync(d).sort(), ["config.json", "model.safetensors", "tokenizer.json"]);
    assert.deepEqual(readFileSync(join(d, "model.safetensors")), weights);
    const resolves = hub.requests.filter((r) => r.path.includes("/resolve/"));
    assert.ok(
      resolves.length === 3 && resolves.every((r) => r.path.includes(`/resolve/${commit}/`)),
    );
    assert.ok(resolves.every((r) => r.authorization === `Bearer ${hubToken}`));
    assert.ok(
      hub.requests.filter((r) => r.path.startsWith("/cdn/")).every((r) => !r.authorization),
    );
  });

  test("hf:// failures name the repository: a bad token, an unknown repo, a missing file", async () => {
    await assert.rejects(
      fetchHfModel("hf://org/tiny", dir(), {
        endpoint: hub.url,
        token: "hf_wrong",
        maxBytes: 1 << 20,
        ca,
      }),
      (e: SourceFailure) =>
        e.exitCode === 3 &&
        e.message.includes("/api/models/org/tiny/revision/main: HTTP 401") &&
        !e.message.includes("hf_wrong"),
    );
    await assert.rejects(
      fetchHfModel("hf://org/missing", dir(), {
        endpoint: hub.url,
        token: hubToken,
        maxBytes: 1 << 20,
        ca,
      }),
      (e: SourceFailure) => e.message.includes("org/missing") && e.message.includes("HTTP 404"),
    );
    await assert.rejects(
      fetchHfDatasetFile("hf://datasets/org/tiny/nope.json", join(dir(), "x"), {
        endpoint: hub.url,
        token: hubToken,
        maxBytes: 1 << 20,
        ca,
      }),
      (e: SourceFailure) => e.message.includes("HTTP 404"),
    );
    await assert.rejects(
      fetchHfModel("hf://just-a-name", dir(), { maxBytes: 1 }),
      /write hf:\/\/<org>\/<name>/,
    );
  });
});
