// What `kubectl get lft` and `kubectl get lft -o wide` print, asked of a real kube-apiserver
// the way kubectl asks (Accept: application/json;as=Table;v=v1;g=meta.k8s.io): the server
// builds the table from the CRD's additionalPrinterColumns. Three runs — failed, queued,
// running — get their status written through the status subresource, as the operator and
// the trainer write it; the rows must show phase, reason, progress, loss, and in the wide
// view model, GPU, queue and ETA.
//
// Also here: the status schema refuses a condition time that is not RFC 3339 (format
// date-time), on the server and in zod alike.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  connectTestCluster,
  eventually,
  getTable,
  type KubeClient,
  renderTable,
  type TestCluster,
} from "@loraforge/test-k8s";
import { parse } from "yaml";
import {
  API_VERSION,
  durationText,
  LoraFineTuneStatusSchema,
  PLURAL,
  Reason,
} from "../../src/index.ts";
import { base, set } from "../support/apiserver-cases.ts";

const repo = join(import.meta.dirname, "..", "..", "..");
const CRD_FILE = join(repo, "crds", "loraforge.dev_lorafinetunes.yaml");
const CRD_NAME = `${PLURAL}.loraforge.dev`;
const T0 = "2026-12-02T04:00:00Z";
const cond = (type: string, status: string, reason: string, message = "") => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: T0,
  observedGeneration: 1,
});

/** Statuses as the operator (phase, reason, model, gpu, conditions) and trainer (progress) write them. */
const RUNS = {
  "alpaca-failed": {
    spec: {},
    status: {
      phase: "Failed",
      reason: Reason.NaNLoss,
      model: "llama-2-7b-hf",
      gpu: "1x Tesla-V100-SXM2-32GB",
      conditions: [
        cond("Validated", "True", Reason.SpecValid),
        cond("Admitted", "True", Reason.JobCreated),
        cond("Progressing", "False", Reason.NaNLoss),
        cond("Failed", "True", Reason.NaNLoss, "trainer exited with code 4"),
      ],
      failure: {
        reason: Reason.NaNLoss,
        message: "pod alpaca-failed-train-x: trainer exited with code 4: layer 31 q_proj: NaN",
        exitCode: 4,
      },
      progress: { step: 80, totalSteps: 400, percent: 20, summary: "80/400 (20%)", loss: 7.9 },
    },
  },
  "alpaca-queued": {
    spec: { queueName: "v100-queue" },
    status: {
      phase: "Queued",
      reason: Reason.QueuedByKueue,
      model: "llama-2-7b-hf",
      gpu: "1x Tesla-V100-SXM2-32GB",
      queuedSince: new Date(Date.now() - 90_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      conditions: [
        cond("Validated", "True", Reason.SpecValid),
        cond("Admitted", "False", Reason.QueuedByKueue, "waits for admission"),
        cond("Progressing", "False", Reason.PodPending, "not running"),
      ],
    },
  },
  "alpaca-running": {
    spec: {},
    status: {
      phase: "Running",
      reason: Reason.Training,
      model: "llama-2-7b-hf",
      gpu: "1x Tesla-V100-SXM2-32GB",
      conditions: [
        cond("Validated", "True", Reason.SpecValid),
        cond("Admitted", "True", Reason.JobCreated),
        cond("Progressing", "True", Reason.Training, "training"),
      ],
      progress: {
        step: 120,
        totalSteps: 400,
        percent: 30,
        summary: "120/400 (30%)",
        loss: 1.25,
        etaSeconds: 4320,
        eta: durationText(4320),
      },
    },
  },
} as const;

describe("kubectl get lft columns, from a real kube-apiserver", () => {
  let cluster: TestCluster;
  let client: KubeClient;
  const ns = `cols-${randomBytes(3).toString("hex")}`;
  const collection = `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL}`;

  before(async () => {
    cluster = await connectTestCluster();
    client = cluster.client;
    await client.patch(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}?fieldManager=loraforge-tests&force=true`,
      parse(readFileSync(CRD_FILE, "utf8")),
      "apply",
    );
    await client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
    // Another suite may have applied an older CRD a moment ago: wait for this one's columns.
    await eventually("the CRD's printer columns to be served", async () => {
      const r = await client.request("GET", collection);
      if (r.status !== 200) return undefined;
      const table = await getTable(client, collection);
      return table.columnDefinitions.some((c) => c.name === "ETA") ? true : undefined;
    });
    for (const [name, run] of Object.entries(RUNS)) {
      const manifest = base(name);
      for (const [k, v] of Object.entries(run.spec)) set(manifest, `spec.${k}`, v);
      await client.create(`${collection}?fieldValidation=Strict`, manifest);
      assert.ok(LoraFineTuneStatusSchema.safeParse(run.status).success, `${name}: zod status`);
      await client.patch(
        `${collection}/${name}/status?fieldValidation=Strict`,
        { status: run.status },
        "merge",
      );
    }
  });

  after(async () => {
    if (client) await client.request("DELETE", `/api/v1/namespaces/${ns}`);
    await cluster?.stop();
  });

  test("the Table has Name, Phase, Reason, Progress, Loss, Queue, Waiting, Age; -o wide adds Model, GPU, ETA", async () => {
    const table = await getTable(client, collection);
    assert.deepEqual(
      table.columnDefinitions.map((c) => `${c.name}:${c.priority ?? 0}`),
      [
        "Name:0",
        "Phase:0",
        "Reason:0",
        "Progress:0",
        "Loss:0",
        "Queue:0",
        "Waiting:0",
        "Age:0",
        "Model:1",
        "GPU:1",
        "ETA:1",
      ],
    );
    const rows = Object.fromEntries(
      table.rows.map((r) => [String(r.cells[0]), r.cells.map((c) => (c === null ? undefined : c))]),
    );
    const without = (cells: unknown[] | undefined) => cells?.filter((_, i) => i !== 6 && i !== 7); // Waiting, Age
    assert.deepEqual(without(rows["alpaca-failed"]), [
      "alpaca-failed",
      "Failed",
      "NaNLoss",
      "80/400 (20%)",
      7.9,
      undefined,
      "llama-2-7b-hf",
      "1x Tesla-V100-SXM2-32GB",
      undefined,
    ]);
    assert.deepEqual(without(rows["alpaca-queued"]), [
      "alpaca-queued",
      "Queued",
      "QueuedByKueue",
      undefined,
      undefined,
      "v100-queue",
      "llama-2-7b-hf",
      "1x Tesla-V100-SXM2-32GB",
      undefined,
    ]);
    assert.deepEqual(without(rows["alpaca-running"]), [
      "alpaca-running",
      "Running",
      "Training",
      "120/400 (30%)",
      1.25,
      undefined,
      "llama-2-7b-hf",
      "1x Tesla-V100-SXM2-32GB",
      "1h12m",
    ]);
    for (const cells of Object.values(rows)) assert.match(String(cells[7]), /^\d+s$/, "Age");
    assert.match(
      String(rows["alpaca-queued"]?.[6]),
      /^(9\d|1\d\d)s$|^\dm/,
      "Waiting: since queuedSince, 90 s ago",
    );
    assert.equal(rows["alpaca-running"]?.[6], undefined, "no Waiting once admitted");

    console.log(`$ kubectl get lft\n${renderTable(table)}`);
    console.log(`$ kubectl get lft -o wide\n${renderTable(table, { wide: true })}`);
  });

  test("a condition time that is not RFC 3339 is refused by the API server and by zod", async () => {
    const bad = {
      phase: "Pending",
      conditions: [{ ...cond("Validated", "True", Reason.SpecValid), lastTransitionTime: "today" }],
    };
    const r = await client.request(
      "PATCH",
      `${collection}/alpaca-queued/status`,
      { status: bad },
      "application/merge-patch+json",
    );
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), /lastTransitionTime/);
    assert.match(JSON.stringify(r.body), /date-time/);
    const zod = LoraFineTuneStatusSchema.safeParse(bad);
    assert.equal(zod.success, false);
    assert.deepEqual(zod.error?.issues[0]?.path, ["conditions", 0, "lastTransitionTime"]);
  });
});

test("durationText reads like kubectl's ages", () => {
  assert.deepEqual([0, 42.4, 60, 719, 3600, 4320, 86399, 90000].map(durationText), [
    "0s",
    "42s",
    "1m",
    "11m",
    "1h00m",
    "1h12m",
    "23h59m",
    "1d1h",
  ]);
  assert.equal(durationText(Number.NaN), "unknown");
});
