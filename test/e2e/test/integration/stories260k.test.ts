// The user's flows on one real node (kubelet, containerd, runc), started once for this file:
// `kubectl apply` of the stories260K example → the operator (installed by the Helm chart,
// running from its image) makes a Job → the trainer-cpu pod trains → `kubectl get lft`
// shows progress → Succeeded with the adapter digest; the adapter equals a local
// `loraforge train` of the same spec byte for byte, and PEFT loads it.
//
// Needs root, the node's apt packages, the images' tools and the Python venv (docs/TESTING.md).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { API_VERSION } from "@loraforge/crds";
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

const Lft = z.object({
  metadata: z.object({ uid: z.string() }),
  status: z
    .object({
      phase: z.string().optional(),
      reason: z.string().optional(),
      progress: z
        .object({ step: z.number().optional(), totalSteps: z.number().optional() })
        .passthrough()
        .optional(),
      adapter: z.object({ path: z.string(), digest: z.string(), sizeBytes: z.number() }).optional(),
      failure: z
        .object({ reason: z.string().optional(), message: z.string().optional() })
        .optional(),
    })
    .passthrough()
    .optional(),
});
type Lft = z.infer<typeof Lft>;

let env: E2eEnv;
const lftPath = (name: string) => `/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes/${name}`;
const getLft = async (name: string): Promise<Lft> =>
  Lft.parse(await env.cluster.client.get(lftPath(name)));
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/**
 * Polls a run until `done` says so, printing `kubectl get lft` whenever the table changes; a
 * run that fails (and `done` does not want that) ends the wait at once, with its status.
 */
async function watchRun(
  name: string,
  done: (l: Lft) => boolean,
  timeoutMs = 600_000,
): Promise<Lft> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const lft = await getLft(name);
    // print the table when the run moves (not each second its AGE grows)
    const key = JSON.stringify([lft.status?.phase, lft.status?.reason, lft.status?.progress?.step]);
    if (key !== last) log(`$ kubectl get lft -n ${NS}\n${await getLftTable(env.cluster)}`);
    last = key;
    if (done(lft)) return lft;
    if (lft.status?.phase === "Failed")
      throw new Error(`run ${name} failed: ${JSON.stringify(lft.status)}`);
    if (Date.now() > deadline)
      throw new Error(
        `run ${name}: not there after ${timeoutMs} ms: ${JSON.stringify(lft.status)}`,
      );
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe("end to end on a real node", { timeout: 1_800_000 }, () => {
  before(async () => {
    env = await setUp();
  });
  after(async () => {
    await tearDown();
  });

  test("kubectl apply of the stories260K example trains in a pod; the adapter equals a local run byte for byte and PEFT loads it", async () => {
    const t0 = Date.now();
    const lft = storiesRun("stories");
    await env.cluster.client.create(`/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes`, lft);

    // mid-run: the Table shows progress (step n of N) while the pod trains
    const running = await watchRun("stories", (l) => {
      if (l.status?.phase === "Evaluating" || l.status?.phase === "Succeeded")
        throw new Error(
          `run stories reached ${l.status.phase} and no progress was shown while Running`,
        );
      return l.status?.phase === "Running" && (l.status?.progress?.step ?? 0) > 0;
    });
    const midTable = await getLftTable(env.cluster);
    log(`mid-run, $ kubectl get lft -n ${NS}\n${midTable}`);
    assert.match(midTable, /stories\s+Running/);
    assert.ok((running.status?.progress?.step ?? 0) > 0);

    const finished = await watchRun("stories", (l) => l.status?.phase === "Succeeded");
    const clusterSeconds = (Date.now() - t0) / 1000;
    log(`final, $ kubectl get lft -n ${NS}\n${await getLftTable(env.cluster)}`);
    log(`final status:\n${stringify(finished.status)}`);
    const adapter = finished.status?.adapter;
    assert.ok(adapter, "status.adapter is set");
    assert.match(adapter.digest, /^sha256:[0-9a-f]{64}$/);

    // the adapter on the volume: runs/<path>/<name>-<uid>/adapter
    const runDir = join(env.volumes.runs, "stories", `stories-${finished.metadata.uid}`);
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
});
