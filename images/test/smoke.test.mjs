// Smoke test of the images in a private containerd, no Kubernetes: each image's command starts
// as uid 65532 on a read-only root filesystem, and trainer-cpu imports and trains stories260K
// writing only to its mounted folders.
//
//   node --test images/test/smoke.test.mjs            (LORAFORGE_IMAGES=trainer-cpu to pick)
//
// Images come from images/build.mjs (cached in ~/.cache/loraforge/images: the first run builds).
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { ensureImages, IMAGE_NAMES, USER_ID } from "../build.mjs";
import { startContainerd } from "../containerd.mjs";

const REPO = resolve(import.meta.dirname, "..", "..");
const ASSETS = resolve(REPO, "..", "shared", "assets");
const names = process.env.LORAFORGE_IMAGES?.split(",") ?? IMAGE_NAMES;

describe("images in containerd", { timeout: 1_800_000 }, () => {
  let node;
  let images;
  let work;
  before(async () => {
    images = await ensureImages(names);
    node = await startContainerd();
    for (const img of images) {
      const r = node.ctr(["images", "import", img.tar]);
      assert.equal(r.status, 0, `ctr images import ${img.tar}: ${r.stderr}`);
    }
    work = mkdtempSync(join(tmpdir(), "lf-img-smoke-"));
    chmodSync(work, 0o755);
  });
  after(async () => {
    await node?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let seq = 0;
  /** `ctr run --rm` with a read-only root, /tmp and any other mounts bound from host folders. */
  function run(img, args, mounts = {}) {
    const tmp = join(work, `tmp-${++seq}`);
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777);
    const all = { "/tmp": tmp, ...mounts };
    return node.ctr([
      "run",
      "--rm",
      "--read-only",
      ...Object.entries(all).flatMap(([dst, src]) => [
        "--mount",
        `type=bind,src=${src},dst=${dst},options=rbind:rw`,
      ]),
      img.ref,
      `lf-smoke-${process.pid}-${seq}`,
      ...args,
    ]);
  }
  const image = (name) => images.find((i) => i.name === name);

  for (const name of names.filter((n) => n !== "operator")) {
    test(`${name}: loraforge --help and loraforge-core --version, as uid ${USER_ID}`, () => {
      const help = run(image(name), ["loraforge", "--help"]);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /Usage: loraforge <command>/);
      const core = run(image(name), ["loraforge-core", "--version"]);
      assert.equal(core.status, 0, core.stderr);
      const backends = name === "trainer-cuda" ? "cpu cuda" : "cpu";
      assert.match(
        core.stdout,
        new RegExp(`^loraforge-core \\d+\\.\\d+\\.\\d+ \\(backends: ${backends}\\)`),
      );
      if (name === "trainer-cuda") {
        // the backend is in the binary; this machine has no GPU driver, and the core says so
        const probe = run(image(name), ["loraforge-core", "backends"]);
        assert.equal(probe.status, 0, probe.stderr);
        const cuda = JSON.parse(probe.stdout).backends.find((b) => b.name === "cuda");
        assert.equal(cuda?.compiled, true, probe.stdout);
        assert.equal(cuda?.device, false, probe.stdout);
      }
      const id = run(image(name), ["id", "-u"]);
      assert.equal(id.stdout.trim(), String(USER_ID));
    });
  }

  if (names.includes("operator"))
    test("operator: node 20 runs the bundle, which checks its configuration first", () => {
      const v = run(image("operator"), ["/usr/local/bin/node", "--version"]);
      assert.equal(v.status, 0, v.stderr);
      assert.match(v.stdout, /^v20\./);
      // the bundle loads and parses its environment: without a trainer image it refuses to start
      const r = run(image("operator"), ["/usr/local/bin/node", "/app/operator/operator.mjs"]);
      assert.equal(r.status, 1, r.stderr);
      // one JSON log line: {"level":"error","msg":"invalid operator configuration ..."}
      const log = JSON.parse(`${r.stdout}${r.stderr}`.trim().split("\n").at(-1) ?? "{}");
      assert.equal(log.level, "error");
      assert.match(log.msg, /^invalid operator configuration[\s\S]*LORAFORGE_TRAINER_IMAGE/);
    });

  if (names.includes("trainer-cpu"))
    test("trainer-cpu: imports and trains stories260K with a read-only root filesystem", () => {
      const w = join(work, "train");
      for (const d of ["assets", "models", "data", "run"])
        mkdirSync(join(w, d), { recursive: true });
      for (const f of ["stories260K.bin", "tok512.model"])
        copyFileSync(join(ASSETS, "stories260K", f), join(w, "assets", f));
      const stories = readFileSync(
        join(REPO, "examples", "stories-instruct", "stories.jsonl"),
        "utf8",
      );
      writeFileSync(
        join(w, "data", "stories.jsonl"),
        `${stories.split("\n").slice(0, 24).join("\n")}\n`,
      );
      writeFileSync(
        join(w, "spec.yaml"),
        `apiVersion: loraforge.dev/v1alpha1
kind: LoraFineTune
metadata: {name: smoke}
spec:
  baseModel: {source: {pvc: {claimName: models, path: stories260K}}}
  dataset: {source: {pvc: {claimName: data, path: stories.jsonl}}, promptTemplate: alpaca_short, valSetSize: 4, cutoffLen: 128}
  lora: {r: 4, alpha: 8, dropout: 0}
  training: {epochs: 1, maxSteps: 3, learningRate: 3.0e-3, batchSize: 4, microBatchSize: 4, warmupSteps: 1, evalSteps: 3, saveSteps: 3}
  checkpointSelection: last
  evaluation: {samples: 2, maxNewTokens: 8}
  resources: {gpus: 0}
  output: {pvc: {claimName: runs, path: smoke}}
`,
      );
      for (const p of walk(w)) chmodSync(p.path, p.dir ? 0o777 : 0o666);
      const img = image("trainer-cpu");
      const imported = run(
        img,
        [
          "loraforge",
          "import",
          "llama2c",
          "/w/assets/stories260K.bin",
          "/w/assets/tok512.model",
          "--out",
          "/w/models/stories260K",
        ],
        { "/w": w },
      );
      assert.equal(imported.status, 0, imported.stderr);
      const trained = run(
        img,
        [
          "loraforge",
          "train",
          "/w/spec.yaml",
          "--json",
          "--volume",
          "models=/w/models",
          "--volume",
          "data=/w/data",
          "--out",
          "/w/run",
          "--threads",
          "1",
        ],
        { "/w": w },
      );
      assert.equal(trained.status, 0, trained.stderr);
      const summary = JSON.parse(trained.stdout);
      assert.equal(summary.ok ?? true, true);
      const files = readdirSync(join(w, "run"), { recursive: true }).map(String);
      assert.ok(
        files.some((f) => f.endsWith("adapter_model.safetensors")),
        `no adapter in ${files.join(", ")}`,
      );
    });
});

function* walk(dir) {
  yield { path: dir, dir: true };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield { path: p, dir: false };
  }
}
