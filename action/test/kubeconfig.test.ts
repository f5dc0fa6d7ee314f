// The kubeconfig input: base64 or YAML, credentials found for masking, written 0600 under RUNNER_TEMP.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { decodeKubeconfig, kubeconfigSecrets, writeKubeconfig } from "../src/kubeconfig.ts";

const YAML = `apiVersion: v1
kind: Config
clusters:
  - name: ci
    cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: Q0E=}
users:
  - name: ci
    user: {token: "eyJhbGciOi.secret-token", client-key-data: "S0VZ"}
contexts:
  - name: ci
    context: {cluster: ci, user: ci}
current-context: ci
`;

describe("kubeconfig input", () => {
  test("base64 and YAML both decode to the YAML", () => {
    assert.equal(decodeKubeconfig(YAML), YAML);
    assert.equal(decodeKubeconfig(Buffer.from(YAML).toString("base64")), YAML);
    assert.equal(
      decodeKubeconfig(
        `${Buffer.from(YAML)
          .toString("base64")
          .replace(/(.{76})/g, "$1\n")}\n`,
      ),
      YAML,
    );
  });

  test("every credential is listed for masking", () => {
    assert.deepEqual(kubeconfigSecrets(YAML), ["eyJhbGciOi.secret-token", "S0VZ"]);
  });

  test("something that is not a kubeconfig is a clear error, not a crash", () => {
    assert.throws(() => kubeconfigSecrets("just: [a, list"), /the kubeconfig input is not YAML/);
    assert.throws(
      () => kubeconfigSecrets("kind: Config\nclusters: []\n"),
      /field clusters: has no clusters/,
    );
  });

  test("written with mode 0600 in a fresh 0700 directory under RUNNER_TEMP", () => {
    const temp = mkdtempSync(join(tmpdir(), "lf-runner-temp-"));
    const path = writeKubeconfig(YAML, temp);
    assert.equal(dirname(dirname(path)), temp);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
    assert.equal(readFileSync(path, "utf8"), YAML);
  });
});
