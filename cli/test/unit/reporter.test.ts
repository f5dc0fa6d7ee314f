// StatusReporter's checkpoint list across pod retries: a JSON merge patch replaces the whole
// `status.checkpoints`, so a retried pod must merge what earlier attempts reported (by step)
// before it sends a list, and must never send a list it could not merge. The API side of the
// same behaviour runs against a real API server in job.test.ts.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CheckpointStatus } from "@loraforge/crds";
import { type ReportedEvent, StatusReporter } from "../../src/inpod/index.ts";

const t = () => new Date().toISOString();
const checkpoint = (step: number, train_loss: number): ReportedEvent => ({
  event: "checkpoint",
  time: t(),
  step,
  path: `/out/checkpoints/checkpoint-${step}`,
  train_loss,
});
const earlier: CheckpointStatus[] = [
  { step: 200, path: "/out/checkpoints/checkpoint-200", trainLoss: 1.5 },
  { step: 400, path: "/out/checkpoints/checkpoint-400", trainLoss: 1.2 },
];

/** Patches as the API server would apply them: a merge patch replaces `checkpoints` whole. */
function server() {
  const status: { checkpoints?: CheckpointStatus[]; progress?: unknown } = {};
  return {
    status,
    send: async (patch: { checkpoints?: CheckpointStatus[]; progress?: unknown }) => {
      if (patch.checkpoints) status.checkpoints = patch.checkpoints;
      if (patch.progress) status.progress = patch.progress;
    },
  };
}

const steps = (s: { checkpoints?: CheckpointStatus[] }) =>
  (s.checkpoints ?? []).map((c) => [c.step, c.trainLoss]);

describe("checkpoints in status across retries", () => {
  test("the earlier attempt's checkpoints are merged by step, the re-made one replaced", async () => {
    const api = server();
    api.status.checkpoints = earlier;
    const reporter = new StatusReporter({
      send: api.send,
      load: async () => api.status.checkpoints ?? [],
      intervalMs: 0,
    });
    reporter.onEvent(checkpoint(400, 1.1)); // re-made after resuming from 200
    reporter.onEvent(checkpoint(600, 0.9));
    assert.ok(await reporter.close());
    assert.deepEqual(steps(api.status), [
      [200, 1.5],
      [400, 1.1],
      [600, 0.9],
    ]);
  });

  test("while the earlier list cannot be read, progress goes out and the list is held back", async () => {
    const api = server();
    api.status.checkpoints = earlier;
    let readable = false;
    const logs: string[] = [];
    const reporter = new StatusReporter({
      send: api.send,
      load: async () => {
        if (!readable) throw new Error("GET → 503: etcdserver: request timed out");
        return api.status.checkpoints ?? [];
      },
      intervalMs: 10,
      log: (l) => logs.push(l),
    });
    reporter.onEvent({ event: "start", time: t(), total_steps: 600, resumed_from_step: 400 });
    reporter.onEvent(checkpoint(600, 0.9));
    await reporter.flush();
    assert.deepEqual(steps(api.status), [
      [200, 1.5],
      [400, 1.2],
    ]);
    assert.ok(api.status.progress, "progress is not held back");
    assert.match(logs.join("\n"), /cannot read the checkpoints earlier attempts reported/);
    assert.equal(await reporter.close(1, 10), false, "the list is still unsent: close says so");
    readable = true;
    assert.ok(await reporter.close(2, 10));
    assert.deepEqual(steps(api.status), [
      [200, 1.5],
      [400, 1.2],
      [600, 0.9],
    ]);
  });

  test("the list stays in step order and keeps the newest maxCheckpoints", async () => {
    const api = server();
    const reporter = new StatusReporter({
      send: api.send,
      load: async () => [earlier[1] as CheckpointStatus],
      intervalMs: 0,
      maxCheckpoints: 3,
    });
    for (const s of [800, 600, 1000]) reporter.onEvent(checkpoint(s, 1000 / s));
    assert.ok(await reporter.close());
    assert.deepEqual(
      steps(api.status).map(([s]) => s),
      [600, 800, 1000],
    );
  });
});
