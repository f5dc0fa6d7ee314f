// with-cluster.ts: one cluster around a command, its exit code passed through.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const runner = join(import.meta.dirname, "..", "..", "with-cluster.ts");
const tsx = join(import.meta.dirname, "..", "..", "..", "..", "node_modules", ".bin", "tsx");

test("with-cluster runs the command against a live cluster, then tears it down", () => {
  // The command checks the kubeconfig it is handed and exits with a code of its own.
  const probe = `
    const fs = require("node:fs");
    const path = process.env.LORAFORGE_TEST_KUBECONFIG;
    if (!path || !fs.readFileSync(path, "utf8").includes("certificate-authority-data")) process.exit(1);
    if (process.env.KUBECONFIG !== path || process.env.LORAFORGE_TEST_CONTROLLER_MANAGER !== "1") process.exit(2);
    process.exit(7);
  `;
  const result = spawnSync(tsx, [runner, "--", process.execPath, "-e", probe], {
    encoding: "utf8",
    env: { ...process.env, LORAFORGE_TEST_KUBECONFIG: "" },
    timeout: 300_000,
  });
  assert.equal(result.status, 7, result.stderr);
  const ready = /\[k8s\] kube-apiserver (v\S+) ready at \S+ in [\d.]+ s \(with [^;]+; (\S+)\)/.exec(
    result.stderr,
  );
  assert.ok(ready, result.stderr);
  assert.equal(ready[1], "v1.34.4");
  assert.equal(existsSync(ready[2] as string), false, "the run's directory is removed");
});

test("with-cluster without a command is a usage error", () => {
  const result = spawnSync(tsx, [runner], { encoding: "utf8" });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /usage: tsx test\/k8s\/with-cluster\.ts \[--node\] -- <command>/);
});

test("with-cluster refuses an option it does not know", () => {
  const result = spawnSync(tsx, [runner, "--nodes", "--", "true"], { encoding: "utf8" });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /usage: tsx test\/k8s\/with-cluster\.ts \[--node\]/);
});
