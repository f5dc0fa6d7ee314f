import assert from "node:assert/strict";
import { test } from "node:test";
import { WorkQueue } from "../../src/queue.ts";

test("a key queued many times is processed once", async () => {
  const q = new WorkQueue();
  for (let i = 0; i < 5; i++) q.add("ns/a");
  q.add("ns/b");
  assert.equal(q.length, 2);
  assert.equal(await q.get(), "ns/a");
  assert.equal(await q.get(), "ns/b");
  assert.equal(q.length, 0);
  q.shutdown();
});

test("an event during processing requeues the key once, after done()", async () => {
  const q = new WorkQueue();
  q.add("k");
  const key = await q.get();
  q.add("k");
  q.add("k");
  assert.equal(q.length, 0, "not handed to a second worker while processing");
  q.done(key as string);
  assert.equal(q.length, 1);
  assert.equal(await q.get(), "k");
  q.done("k");
  assert.equal(q.length, 0);
  q.shutdown();
});

test("a waiting worker receives a key as soon as it is added", async () => {
  const q = new WorkQueue();
  const pending = q.get();
  q.add("x");
  assert.equal(await pending, "x");
  q.shutdown();
  assert.equal(await q.get(), undefined);
});

test("failures back off exponentially per key, forget() resets", async () => {
  const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 35 });
  assert.equal(q.addRateLimited("k"), 10);
  assert.equal(q.addRateLimited("k"), 20);
  assert.equal(q.addRateLimited("k"), 35);
  assert.equal(q.addRateLimited("other"), 10);
  q.forget("k");
  assert.equal(q.addRateLimited("k"), 10);
  // The queue's timers are unref'd (they must not keep an operator alive); keep this test alive.
  const keepAlive = setTimeout(() => {}, 5000);
  const started = Date.now();
  const keys = new Set([await q.get(), await q.get()]);
  assert.deepEqual(keys, new Set(["k", "other"]));
  assert.ok(Date.now() - started >= 5, "delivered after the delay, not at once");
  clearTimeout(keepAlive);
  q.shutdown();
});
