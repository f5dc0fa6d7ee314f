// The kubeconfig input: base64 or YAML, credentials found for masking, written 0600 under RUNNER_TEMP.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { decodeKubeconfig, kubeconfigSecrets, writeKubeconfig } from "../../src/kubeconfig.ts";

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

  test("every kind of credential is listed: user fields, decoded keys, exec, auth-provider, URL passwords", () => {
    const keyPem = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const certPem =
      "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG11kO7dMA0GCSqGSIb3DQEBCwUAMBExDzANBgNVBAMMBnRl\nc3RjYTAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEwMDAwMDBa\n-----END CERTIFICATE-----\n";
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const text = `apiVersion: v1
kind: Config
clusters:
  - name: a
    cluster: {server: "https://admin:s3rver-pa%24s@10.0.0.1:6443", proxy-url: "http://u:proxy-secret@proxy:3128"}
users:
  - name: static
    user:
      token: bearer-token-value
      username: admin
      password: basic-auth-password
      client-key-data: ${b64(keyPem)}
      client-certificate-data: ${b64(certPem)}
  - name: exec
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: /usr/bin/get-creds
        args: [eks, get-token, --cluster-secret=exec-flag-secret, exec-positional-secret]
        env:
          - {name: VAULT_TOKEN, value: exec-env-secret}
          - {name: DEBUG, value: "1"}
  - name: oidc
    user:
      auth-provider:
        name: oidc
        config: {client-id: loraforge-ci, client-secret: oidc-client-secret, id-token: oidc-id-token, refresh-token: oidc-refresh-token}
  - name: anonymous
    user: null
`;
    const secrets = kubeconfigSecrets(text);
    const keyLines = keyPem.split("\n").filter((l) => l && !l.startsWith("-----"));
    const certLines = certPem.split("\n").filter((l) => l && !l.startsWith("-----"));
    for (const expected of [
      "s3rver-pa$s",
      "proxy-secret",
      "bearer-token-value",
      "basic-auth-password",
      b64(keyPem),
      b64(certPem),
      ...keyLines,
      ...certLines,
      "--cluster-secret=exec-flag-secret",
      "exec-flag-secret",
      "exec-positional-secret",
      "get-token",
      "exec-env-secret",
      "loraforge-ci",
      "oidc-client-secret",
      "oidc-id-token",
      "oidc-refresh-token",
    ]) {
      assert.ok(secrets.includes(expected), `${expected} is masked`);
    }
    // Too short to be a secret; masking them would blank out "1" and "eks" all over the log.
    assert.ok(!secrets.includes("1"));
    assert.ok(!secrets.includes("eks"));
    assert.ok(!secrets.includes("admin"), "a user name is not a credential");
  });

  test("a YAML error does not quote the line it failed on (it may hold a credential)", () => {
    const broken = "users:\n  - name: a\n    user: {token: leaked-token-123, : x: y}\n";
    assert.throws(
      () => kubeconfigSecrets(broken),
      (e: Error) =>
        /the kubeconfig input is not YAML: .* at line 3, column \d+$/.test(e.message) &&
        !e.message.includes("leaked-token-123"),
    );
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
