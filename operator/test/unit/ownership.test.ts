import assert from "node:assert/strict";
import { test } from "node:test";
import { API_VERSION, Reason } from "@loraforge/crds";
import { isPermanentRejection, KubeApiError } from "@loraforge/kube";
import { ownershipOf } from "../../src/ownership.ts";
import { decideStatus } from "../../src/status.ts";
import { validateForCluster } from "../../src/validate.ts";
import { lft } from "../support/fixtures.ts";

const run = { name: "alpaca-7b", uid: "uid-1" };
const owned = (ref: Record<string, unknown> | undefined) => ({
  metadata: { name: "alpaca-7b-trainer", ...(ref ? { ownerReferences: [ref] } : {}) },
});
const lftRef = (uid: string, name = "alpaca-7b", controller = true) => ({
  apiVersion: API_VERSION,
  kind: "LoraFineTune",
  name,
  uid,
  controller,
});

test("only an object this run controls is ours", () => {
  assert.deepEqual(ownershipOf(owned(lftRef("uid-1")), run), { kind: "ours" });
  assert.equal(ownershipOf(owned(undefined), run).kind, "foreign");
  assert.match((ownershipOf(owned(undefined), run) as { holder: string }).holder, /no controller/);
  // An owner reference without controller: true does not make it ours.
  assert.equal(ownershipOf(owned(lftRef("uid-1", "alpaca-7b", false)), run).kind, "foreign");
  // Another object's controller, even one of the same kind.
  const other = ownershipOf(owned(lftRef("uid-9", "someone-else")), run);
  assert.equal(other.kind, "foreign");
  assert.match((other as { holder: string }).holder, /LoraFineTune someone-else \(uid uid-9\)/);
  const deployment = ownershipOf(
    owned({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "web",
      uid: "uid-1",
      controller: true,
    }),
    run,
  );
  assert.equal(deployment.kind, "foreign", "the uid alone does not make it ours");
  // Same group and uid but another kind (a look-alike CRD) is not ours either.
  assert.equal(
    ownershipOf(owned({ ...lftRef("uid-1"), kind: "LoraFineTuneX" }), run).kind,
    "foreign",
  );
});

test("an object of an earlier run of the same name is waited for, not taken", () => {
  assert.deepEqual(ownershipOf(owned(lftRef("uid-0")), run), { kind: "earlierRun", uid: "uid-0" });
});

test("a blocked run is Failed with the reason, not Pending, and its Job is stopped", () => {
  const l = lft();
  const blocked = { reason: Reason.ObjectConflict, message: "ServiceAccount ml/x exists" };
  const d = decideStatus({
    lft: l,
    generation: 1,
    validation: validateForCluster(l),
    job: undefined,
    pods: [],
    jobName: "alpaca-7b-train",
    now: "2026-11-27T20:00:00Z",
    blocked,
  });
  assert.equal(d.status.phase, "Failed");
  assert.deepEqual(d.status.failure, blocked);
  const admitted = d.status.conditions?.find((c) => c.type === "Admitted");
  assert.equal(admitted?.status, "False");
  assert.equal(admitted?.reason, Reason.ObjectConflict);
  const failed = d.status.conditions?.find((c) => c.type === "Failed");
  assert.equal(failed?.status, "True");
  assert.equal(d.stopJob, false);
});

test("only refusals of the object itself stop a run; the rest is retried", () => {
  const e = (status: number, reason = "") => new KubeApiError("POST", "/x", status, reason, "m");
  for (const s of [400, 413, 415, 422]) assert.ok(isPermanentRejection(e(s)), String(s));
  // credentials, RBAC or quota (an admin can fix), gone, timeouts, conflicts, throttling, 5xx
  for (const s of [401, 403, 404, 408, 409, 429, 500, 503])
    assert.ok(!isPermanentRejection(e(s)), String(s));
  assert.ok(!isPermanentRejection(new Error("socket hang up")));
});
