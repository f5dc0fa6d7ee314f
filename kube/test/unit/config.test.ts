// Credentials: a kubeconfig file, $KUBECONFIG, the pod's service account (token re-read at
// every request), and a plain server + CA + token.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { test } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import {
  connectionConfig,
  inClusterConfig,
  KubeConfigError,
  loadKubeConfig,
} from "../../src/index.ts";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB-test-ca\n-----END CERTIFICATE-----\n";

function kubeconfigFile(dir: string, name: string, server: string, token: string) {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name, cluster: { server } }],
      users: [{ name, user: { token } }],
      contexts: [{ name, context: { cluster: name, user: name } }],
      "current-context": name,
    }),
  );
  return file;
}

/** The headers and TLS options client-node would put on a request now. */
async function applied(kc: KubeConfig) {
  const opts: { headers: Record<string, unknown>; ca?: unknown } = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  return opts;
}

function saDir(token: string) {
  const dir = mkdtempSync(join(tmpdir(), "lf-kube-sa-"));
  writeFileSync(join(dir, "ca.crt"), CA);
  writeFileSync(join(dir, "token"), token);
  return dir;
}

test("a kubeconfig file: its current cluster and user", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lf-kube-cfg-"));
  const file = kubeconfigFile(dir, "a", "https://a.example:6443", "token-a");
  const kc = loadKubeConfig(file, {});
  assert.equal(kc.getCurrentCluster()?.server, "https://a.example:6443");
  assert.equal((await applied(kc)).headers.Authorization, "Bearer token-a");
});

test("$KUBECONFIG: several files merged, the first one's context wins; before in-cluster", () => {
  const dir = mkdtempSync(join(tmpdir(), "lf-kube-cfg-"));
  const a = kubeconfigFile(dir, "a", "https://a.example:6443", "token-a");
  const b = kubeconfigFile(dir, "b", "https://b.example:6443", "token-b");
  const kc = loadKubeConfig(undefined, {
    KUBECONFIG: [a, b].join(delimiter),
    KUBERNETES_SERVICE_HOST: "10.0.0.1",
  });
  assert.equal(kc.getCurrentCluster()?.server, "https://a.example:6443");
  assert.deepEqual(
    kc.getClusters().map((c) => c.name),
    ["a", "b"],
  );
});

test("a kubeconfig that cannot be used is an error naming the file and the field", () => {
  const dir = mkdtempSync(join(tmpdir(), "lf-kube-cfg-"));
  const missing = join(dir, "nope.yaml");
  assert.throws(
    () => loadKubeConfig(missing, {}),
    (e: Error) => e instanceof KubeConfigError && e.message.includes(missing),
  );
  const noContext = join(dir, "no-context.yaml");
  writeFileSync(noContext, stringify({ apiVersion: "v1", kind: "Config", clusters: [] }));
  assert.throws(
    () => loadKubeConfig(noContext, {}),
    new RegExp(`${noContext}: no current cluster`),
  );
  const badServer = kubeconfigFile(dir, "bad", "not a url", "t");
  assert.throws(
    () => loadKubeConfig(badServer, {}),
    /cluster "bad": server is not a URL: "not a url"/,
  );
  const home = mkdtempSync(join(tmpdir(), "lf-kube-home-"));
  assert.throws(
    () => loadKubeConfig(undefined, { HOME: home }),
    new RegExp(`no Kubernetes cluster configured: .*${join(home, ".kube", "config")}`),
  );
});

test("~/.kube/config when nothing else is configured", () => {
  const home = mkdtempSync(join(tmpdir(), "lf-kube-home-"));
  mkdirSync(join(home, ".kube"));
  kubeconfigFile(join(home, ".kube"), "config", "https://home.example:6443", "t");
  assert.equal(
    loadKubeConfig(undefined, { HOME: home }).getCurrentCluster()?.server,
    "https://home.example:6443",
  );
});

test("in-cluster: the service's address, the mounted CA, the token re-read at every request", async () => {
  const dir = saDir("first-token\n");
  const env = {
    KUBERNETES_SERVICE_HOST: "10.96.0.1",
    KUBERNETES_SERVICE_PORT: "443",
    LORAFORGE_SA_DIR: dir,
  };
  const kc = loadKubeConfig(undefined, env); // no file, no $KUBECONFIG: in-cluster
  assert.equal(kc.getCurrentCluster()?.server, "https://10.96.0.1:443");
  const first = await applied(kc);
  assert.equal(first.headers.Authorization, "Bearer first-token", "trimmed");
  assert.equal(String(first.ca), CA);
  // kubelet rotates the projected token in place: the next request carries the new one.
  writeFileSync(join(dir, "token"), "rotated-token");
  assert.equal((await applied(kc)).headers.Authorization, "Bearer rotated-token");
  writeFileSync(join(dir, "token"), "  \n");
  await assert.rejects(applied(kc), new RegExp(`${join(dir, "token")} is empty`));
});

test("in-cluster: IPv6 service addresses are bracketed; a bad environment names the variable or file", () => {
  const dir = saDir("t");
  assert.equal(
    inClusterConfig(
      { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" },
      dir,
    ).getCurrentCluster()?.server,
    "https://[fd00::1]:6443",
  );
  assert.throws(() => inClusterConfig({}, dir), /KUBERNETES_SERVICE_HOST is not set/);
  assert.throws(
    () => inClusterConfig({ KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "https" }, dir),
    /KUBERNETES_SERVICE_PORT: not a port number: "https"/,
  );
  const empty = mkdtempSync(join(tmpdir(), "lf-kube-sa-"));
  assert.throws(
    () => inClusterConfig({ KUBERNETES_SERVICE_HOST: "h" }, empty),
    new RegExp(`cannot read the cluster CA ${join(empty, "ca.crt")}`),
  );
  writeFileSync(join(empty, "ca.crt"), CA);
  assert.throws(
    () => inClusterConfig({ KUBERNETES_SERVICE_HOST: "h" }, empty),
    new RegExp(`cannot read the service-account token ${join(empty, "token")}`),
  );
});

test("a connection: a literal token, or a function read at every request", async () => {
  const fixed = connectionConfig({ server: "https://127.0.0.1:1", caPem: CA, token: "t0" });
  assert.equal((await applied(fixed)).headers.Authorization, "Bearer t0");
  let n = 0;
  const rotating = connectionConfig({
    server: "https://127.0.0.1:1",
    caPem: CA,
    token: () => `t${++n}`,
  });
  assert.equal((await applied(rotating)).headers.Authorization, "Bearer t1");
  assert.equal((await applied(rotating)).headers.Authorization, "Bearer t2");
});
