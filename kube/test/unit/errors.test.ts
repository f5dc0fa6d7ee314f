import assert from "node:assert/strict";
import { test } from "node:test";
import {
  isAlreadyExists,
  isConflict,
  isNotFound,
  isPermanentRejection,
  KubeApiError,
  messageOf,
} from "../../src/index.ts";

const status = (code: number, reason: string, message: string) => ({
  apiVersion: "v1",
  kind: "Status",
  status: "Failure",
  code,
  reason,
  message,
});

test("a Status answer maps to one KubeApiError: request, code, reason, message, body", () => {
  const body = status(409, "AlreadyExists", 'configmaps "a" already exists');
  const e = KubeApiError.from("POST", "/api/v1/namespaces/x/configmaps", 409, body);
  assert.ok(e instanceof Error);
  assert.equal(e.name, "KubeApiError");
  assert.equal(e.method, "POST");
  assert.equal(e.path, "/api/v1/namespaces/x/configmaps");
  assert.equal(e.status, 409);
  assert.equal(e.reason, "AlreadyExists");
  assert.equal(e.serverMessage, 'configmaps "a" already exists');
  assert.deepEqual(e.body, body);
  assert.equal(
    e.message,
    'POST /api/v1/namespaces/x/configmaps → 409 AlreadyExists: configmaps "a" already exists',
  );
});

test("an answer that is no Status keeps its text as the message, with no reason", () => {
  const e = KubeApiError.from("GET", "/healthz", 503, "etcd not ready");
  assert.equal(e.reason, "");
  assert.equal(e.serverMessage, "etcd not ready");
  assert.equal(e.message, "GET /healthz → 503: etcd not ready");
  assert.equal(KubeApiError.from("GET", "/x", 500, undefined).serverMessage, "(empty body)");
  assert.equal(messageOf({ kind: "Other" }), '{"kind":"Other"}');
});

test("predicates: not found, conflict, already exists, permanent rejection", () => {
  const e = (code: number, reason = "") => new KubeApiError("PUT", "/x", code, reason, "m");
  assert.ok(isNotFound(e(404)));
  assert.ok(!isNotFound(e(410)));
  assert.ok(isConflict(e(409)) && isConflict(e(409, "AlreadyExists")));
  assert.ok(isAlreadyExists(e(409, "AlreadyExists")));
  assert.ok(!isAlreadyExists(e(409, "Conflict")));
  for (const code of [400, 413, 415, 422]) assert.ok(isPermanentRejection(e(code)), `${code}`);
  for (const code of [401, 403, 404, 408, 409, 429, 500])
    assert.ok(!isPermanentRejection(e(code)), `${code}`);
  // 403 from an admission policy or webhook judges the object: permanent; from RBAC: retried
  const forbidden = (message: string) => new KubeApiError("PATCH", "/x", 403, "Forbidden", message);
  assert.ok(
    isPermanentRejection(
      forbidden(
        `jobs.batch "r-train" is forbidden: ValidatingAdmissionPolicy 'loraforge-trainer-jobs' with binding 'loraforge-trainer-jobs' denied request: the operator may only create Jobs that run the trainer image x`,
      ),
    ),
  );
  assert.ok(
    isPermanentRejection(
      forbidden(`admission webhook "vjob.kb.io" denied the request: spec.suspend is immutable`),
    ),
  );
  assert.ok(
    !isPermanentRejection(
      forbidden(
        `jobs.batch is forbidden: User "system:serviceaccount:x:y" cannot create resource "jobs" in API group "batch" in the namespace "ml"`,
      ),
    ),
  );
  // Not an API answer at all (a refused connection): none of them.
  assert.ok(!isNotFound(new Error("404")) && !isPermanentRejection({ status: 400 }));
});
