// The client against a small local HTTP server that answers as the API server would:
// what goes out (method, path, content type, field manager, token) and how each answer
// maps (object, undefined, false, or one KubeApiError).

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { after, before, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { isNotFound, KubeApiError, KubeClient } from "../../src/index.ts";

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

const seen: Seen[] = [];
let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void;
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => {
    body += c;
  });
  req.on("end", () => {
    seen.push({
      method: req.method ?? "",
      url: req.url ?? "",
      contentType: req.headers["content-type"],
      authorization: req.headers.authorization,
      body,
    });
    answer(req, res, body);
  });
});
let kube: KubeClient;
let url = "";

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};
const status = (code: number, reason: string, message: string) => ({
  kind: "Status",
  apiVersion: "v1",
  status: "Failure",
  reason,
  message,
  code,
});

/** client-node takes http:// only with skipTLSVerify (this server has no TLS to verify). */
function plainHttp(server: string, token: string) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true }],
    users: [{ name: "u", token }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  kube = new KubeClient(plainHttp(url, "sa-token"), { fieldManager: "loraforge-test" });
});
after(() => {
  kube.close();
  server.closeAllConnections();
  server.close();
});

test("request never throws on an HTTP status; expectOk and get map it to KubeApiError", async () => {
  answer = (_q, res) => json(res, 403, status(403, "Forbidden", "nope"));
  const raw = await kube.request("GET", "/api/v1/namespaces/a/pods");
  assert.equal(raw.status, 403);
  assert.equal((raw.body as { reason: string }).reason, "Forbidden");
  await assert.rejects(kube.get("/api/v1/namespaces/a/pods"), (e: unknown) => {
    assert.ok(e instanceof KubeApiError);
    assert.equal(e.status, 403);
    assert.equal(e.reason, "Forbidden");
    assert.equal(e.serverMessage, "nope");
    assert.equal(e.method, "GET");
    assert.equal(e.path, "/api/v1/namespaces/a/pods");
    return true;
  });
  assert.equal(seen.at(-1)?.authorization, "Bearer sa-token");
});

test("404: get throws, find gives undefined, delete gives false", async () => {
  answer = (_q, res) => json(res, 404, status(404, "NotFound", 'pods "x" not found'));
  await assert.rejects(kube.get("/api/v1/namespaces/a/pods/x"), isNotFound);
  assert.equal(await kube.find("/api/v1/namespaces/a/pods/x"), undefined);
  assert.equal(await kube.delete("/api/v1/namespaces/a/pods/x", "Foreground"), false);
  const del = seen.at(-1);
  assert.equal(del?.method, "DELETE");
  assert.deepEqual(JSON.parse(del?.body ?? ""), {
    apiVersion: "v1",
    kind: "DeleteOptions",
    propagationPolicy: "Foreground",
  });
  answer = (_q, res) => json(res, 200, { kind: "Pod" });
  assert.equal(await kube.delete("/api/v1/namespaces/a/pods/x"), true);
  assert.equal(seen.at(-1)?.body, "", "no policy: the server's default");
});

test("apply and merge patch carry the content type and the client's field manager", async () => {
  answer = (_q, res, body) => json(res, 200, JSON.parse(body));
  await kube.apply("/apis/batch/v1/namespaces/a/jobs/j", { kind: "Job" });
  assert.equal(seen.at(-1)?.method, "PATCH");
  assert.equal(
    seen.at(-1)?.url,
    "/apis/batch/v1/namespaces/a/jobs/j?fieldManager=loraforge-test&force=true",
  );
  assert.equal(seen.at(-1)?.contentType, "application/apply-patch+yaml");
  await kube.mergePatch("/x/status", { status: { phase: "Running" } });
  assert.equal(seen.at(-1)?.url, "/x/status?fieldManager=loraforge-test");
  assert.equal(seen.at(-1)?.contentType, "application/merge-patch+json");
  await kube.patch("/x", [{ op: "remove", path: "/a" }], "json");
  assert.equal(seen.at(-1)?.url, "/x");
  assert.equal(seen.at(-1)?.contentType, "application/json-patch+json");
  const anonymous = new KubeClient(plainHttp(url, "t"));
  assert.throws(
    () => anonymous.apply("/x", {}),
    /server-side apply needs the client's fieldManager/,
  );
  anonymous.close();
});

test("list follows `continue` to the last page and keeps the snapshot's resourceVersion", async () => {
  answer = (req, res) => {
    const q = new URL(req.url ?? "", url).searchParams;
    assert.equal(q.get("labelSelector"), "app=x");
    assert.equal(q.get("limit"), "500");
    const page = Number(q.get("continue") ?? "0");
    json(res, 200, {
      kind: "List",
      metadata: {
        resourceVersion: `rv-${page}`,
        ...(page < 2 ? { continue: String(page + 1) } : {}),
      },
      items: [{ page }],
    });
  };
  const r = await kube.list("/api/v1/namespaces/a/configmaps", "app=x");
  assert.deepEqual(r.items, [{ page: 0 }, { page: 1 }, { page: 2 }]);
  assert.equal(r.resourceVersion, "rv-0");
  answer = (_q, res) => json(res, 200, { kind: "Status" });
  await assert.rejects(
    kube.list("/api/v1/pods"),
    /GET \/api\/v1\/pods → 200: the answer is not a list/,
  );
});

test("a body that is not JSON is kept as text", async () => {
  answer = (_q, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
  };
  assert.deepEqual(await kube.request("GET", "/readyz"), { status: 200, body: "ok" });
});

test("a deadline for the whole exchange: a server that trickles still ends the request", async () => {
  answer = (_q, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    const t = setInterval(() => res.write(" "), 50);
    res.on("close", () => clearInterval(t));
  };
  const t0 = Date.now();
  const quick = kube.withTimeout(300);
  await assert.rejects(quick.get("/apis/coordination.k8s.io/v1/leases"), /timed out after 300 ms/);
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  assert.equal(quick.fieldManager, "loraforge-test", "the same options but the deadline");
  quick.close();
});

test("a pooled socket the server closed while idle: the request is sent once more on a new one", async () => {
  // The server answers each connection's first request and drops the connection on the second
  // without a word, as an API server does with a keep-alive socket it timed out just as the
  // client reused it.
  const served = new WeakMap<object, number>();
  answer = (req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n === 1) json(res, 201, { kind: "ConfigMap", metadata: { name: `cm${seen.length}` } });
    else req.socket.destroy();
  };
  seen.length = 0;
  await kube.create("/api/v1/namespaces/ml/configmaps", { metadata: { name: "a" } });
  // the next create goes out on the pooled socket, which the server drops: sent again, once
  const made = (await kube.create("/api/v1/namespaces/ml/configmaps", {
    metadata: { name: "b" },
  })) as { kind: string };
  assert.equal(made.kind, "ConfigMap");
  assert.deepEqual(
    seen.map((s) => JSON.parse(s.body).metadata.name),
    ["a", "b", "b"],
    "one resend of the dropped request, nothing more",
  );
  // a fresh connection dropped before any answer is a real failure: never resent
  answer = (req) => req.socket.destroy();
  server.closeAllConnections(); // the pool empties: the next request opens a connection
  await new Promise((r) => setTimeout(r, 50));
  seen.length = 0;
  await assert.rejects(kube.get("/api/v1/namespaces/ml/configmaps/c"), /socket hang up|ECONNRESET/);
  assert.equal(seen.length, 1);
});
