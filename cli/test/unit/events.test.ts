// The core's JSONL events (docs/CONTRACTS.md §2) are defined once, in src/train/events.ts:
// `loraforge train` parses each line with the full schemas, and status reporting (the in-pod
// `loraforge job`) takes those parsed events as they are, reading only its fields.

import assert from "node:assert/strict";
import { test } from "node:test";
import { StatusReporter } from "../../src/inpod/index.ts";
import { parseEventLine, ReportedEventSchema } from "../../src/train/events.ts";

const time = "2026-01-01T00:00:00Z";
/** One line of each event as the core prints it, each with a field a newer core might add. */
const LINES = [
  {
    event: "start",
    time,
    version: "0.1.0",
    backend: "cpu",
    threads: 2,
    model: { n_layers: 5, dim: 64, n_heads: 8, n_kv_heads: 4, vocab_size: 512, n_params: 260000 },
    trainable_params: 1024,
    train_examples: 90,
    val_examples: 10,
    total_steps: 20,
    resumed_from_step: 0,
    newer: 1,
  },
  {
    event: "step",
    time,
    step: 1,
    total_steps: 20,
    epoch: 0.05,
    loss: 2.5,
    lr: 3e-4,
    grad_norm: 1.2,
    tokens: 512,
    tokens_per_s: 1000,
    elapsed_s: 0.5,
    eta_s: 9.5,
    newer: "x",
  },
  { event: "eval", time, step: 10, val_loss: 2.1, val_tokens: 300, newer: true },
  {
    event: "checkpoint",
    time,
    step: 10,
    path: "/out/checkpoint-10",
    train_loss: 2.2,
    val_loss: null,
    newer: [],
  },
  { event: "overflow", time, step: 3, loss_scale: 32768, newer: 0 },
  {
    event: "done",
    time,
    step: 20,
    adapter_dir: "/out/final",
    train_loss: 2,
    val_loss: 2.1,
    elapsed_s: 10,
    newer: {},
  },
  { event: "error", time, code: 3, kind: "invalid_input", message: "bad", newer: "y" },
];

test("every event the core prints parses once and is a reported event as it is", () => {
  for (const line of LINES) {
    const r = parseEventLine(JSON.stringify(line));
    assert.ok(r.ok, `${line.event}: ${r.ok ? "" : r.message}`);
    assert.deepEqual(r.event, line, `${line.event}: extra fields are kept`);
    assert.deepEqual(ReportedEventSchema.parse(r.event), line, line.event);
  }
});

test("reporting needs only the fields status is built from; the full schema needs them all", () => {
  const scripted = [
    { event: "start", time, total_steps: 200 },
    {
      event: "step",
      time,
      step: 1,
      total_steps: 200,
      epoch: 0,
      loss: 2,
      lr: 1e-4,
      tokens_per_s: 1,
      eta_s: 2,
    },
    { event: "checkpoint", time, step: 100, path: "/out/checkpoint-100" },
    { event: "done", time, step: 200, adapter_dir: "/out/final" },
  ];
  for (const e of scripted) {
    assert.ok(ReportedEventSchema.safeParse(e).success, e.event);
    assert.equal(parseEventLine(JSON.stringify(e)).ok, false, e.event);
  }
  const start = ReportedEventSchema.parse(scripted[0]);
  assert.ok(start.event === "start");
  assert.equal(start.resumed_from_step, 0, "a start without resumed_from_step is a fresh run");
});

test("an unknown event is a reported bad line, not an event, in both paths", () => {
  const r = parseEventLine(JSON.stringify({ event: "profile", time, step: 1 }));
  assert.equal(r.ok, false);
  assert.match(r.ok ? "" : r.message, /event/);
  assert.equal(ReportedEventSchema.safeParse({ event: "profile", time, step: 1 }).success, false);
});

test("the status reporter reads the core's events as parseEventLine gives them", async () => {
  const sent: unknown[] = [];
  const reporter = new StatusReporter({ send: async (s) => void sent.push(s), intervalMs: 0 });
  for (const line of LINES.slice(0, 2)) {
    const r = parseEventLine(JSON.stringify(line));
    assert.ok(r.ok);
    reporter.onEvent(r.event);
  }
  await reporter.close(0, 0);
  const last = sent.at(-1) as { progress: { step: number; totalSteps: number; summary: string } };
  assert.equal(last.progress.step, 1);
  assert.equal(last.progress.totalSteps, 20);
  assert.equal(last.progress.summary, "1/20 (5%)");
});

test("a checkpoint's validation loss is the eval of its own step, which the core reports after it", async () => {
  const sent: unknown[] = [];
  const reporter = new StatusReporter({ send: async (s) => void sent.push(s), intervalMs: 0 });
  const events = [
    { event: "eval", time, step: 20, val_loss: 0.507, val_tokens: 300 },
    // the last step: its checkpoint carries the latest loss (step 20's), then its own eval comes
    {
      event: "checkpoint",
      time,
      step: 40,
      path: "/out/checkpoint-40",
      train_loss: 0.39,
      val_loss: 0.507,
    },
    { event: "eval", time, step: 40, val_loss: 0.332, val_tokens: 300 },
  ];
  for (const line of events) {
    const r = parseEventLine(JSON.stringify(line));
    assert.ok(r.ok, JSON.stringify(r));
    reporter.onEvent(r.event);
  }
  await reporter.close(0, 0);
  const last = sent.at(-1) as { checkpoints: { step: number; valLoss?: number }[] };
  assert.deepEqual(
    last.checkpoints.map((c) => [c.step, c.valLoss]),
    [[40, 0.332]],
  );
});
