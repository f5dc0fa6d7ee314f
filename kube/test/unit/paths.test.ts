import assert from "node:assert/strict";
import { test } from "node:test";
import { GROUP, PLURAL, VERSION } from "@loraforge/crds";
import { LFT_API, paths } from "../../src/index.ts";

test("LoraFineTune paths are built from the API package's group, version and plural", () => {
  assert.equal(LFT_API, `/apis/${GROUP}/${VERSION}`);
  assert.equal(paths.lfts(), `/apis/${GROUP}/${VERSION}/${PLURAL}`);
  assert.equal(paths.lfts("ml"), `/apis/${GROUP}/${VERSION}/namespaces/ml/${PLURAL}`);
  assert.equal(paths.lft("ml", "a"), `/apis/${GROUP}/${VERSION}/namespaces/ml/${PLURAL}/a`);
  assert.equal(
    paths.lftStatus("ml", "a"),
    `/apis/${GROUP}/${VERSION}/namespaces/ml/${PLURAL}/a/status`,
  );
  // What they are today, spelled out once, so a rename in crds/ shows up here.
  assert.equal(
    paths.lftStatus("ml", "a"),
    "/apis/loraforge.dev/v1alpha1/namespaces/ml/lorafinetunes/a/status",
  );
});

test("core and group resources, namespaced and across namespaces", () => {
  assert.equal(paths.pods(), "/api/v1/pods");
  assert.equal(paths.pods("ml"), "/api/v1/namespaces/ml/pods");
  assert.equal(paths.jobs(), "/apis/batch/v1/jobs");
  assert.equal(paths.job("ml", "j"), "/apis/batch/v1/namespaces/ml/jobs/j");
  assert.equal(paths.configMap("ml", "c"), "/api/v1/namespaces/ml/configmaps/c");
  assert.equal(paths.serviceAccount("ml", "s"), "/api/v1/namespaces/ml/serviceaccounts/s");
  assert.equal(
    paths.roleBinding("ml", "r"),
    "/apis/rbac.authorization.k8s.io/v1/namespaces/ml/rolebindings/r",
  );
  assert.equal(paths.lease("ml", "l"), "/apis/coordination.k8s.io/v1/namespaces/ml/leases/l");
  assert.equal(paths.events("ml"), "/api/v1/namespaces/ml/events");
  assert.equal(paths.namespace("ml"), "/api/v1/namespaces/ml");
});

test("a name cannot reach another path: it is one escaped segment", () => {
  assert.equal(paths.configMap("ml", "a/../b"), "/api/v1/namespaces/ml/configmaps/a%2F..%2Fb");
  assert.equal(paths.pods("a?b"), "/api/v1/namespaces/a%3Fb/pods");
});
