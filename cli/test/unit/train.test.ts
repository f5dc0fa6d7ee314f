// The checkpoint selection rules on logged events alone: no core run (the runs that produce
// these events are in test/integration/train.test.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { historyOf } from "../../src/train/metrics.ts";
import { candidatesOf, selectCheckpoint } from "../../src/train/select.ts";

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
