// The bundled dist/index.js run the way a runner runs it: INPUT_* variables, GITHUB_EVENT_PATH,
// GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP; GitHub is the local server, Kubernetes the
// real API server (status driven by the test while the action waits).

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eventually } from "@loraforge/test-k8s";
import { LABEL } from "../../src/labels.ts";
import { type ActionCluster, actionCluster } from "../support/cluster.ts";
import type { FakeGitHub } from "../support/github-server.ts";
import {
  baseSpec,
  INVALID_JSONL,
  payload,
  REPO,
  seededGitHub,
  succeeded,
  TOKEN,
  validDataset,
  writeEvent,
} from "../support/helpers.ts";
import { runAction } from "../support/runner.ts";

describe("dist/index.js as a runner runs it", () => {
  const servers: FakeGitHub[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test("an invalid dataset: ::error annotations with file and line, exit code 1, nothing submitted", async () => {
    const event = payload("opened");
    const gh = await seededGitHub(
      event,
      [{ filename: "datasets/bad.jsonl", status: "added" }],
      { "datasets/bad.jsonl": INVALID_JSONL },
      baseSpec("ml"),
    );
    servers.push(gh);
    const r = await runAction(
      { "github-token": TOKEN, mode: "all", kubeconfig: "" },
      writeEvent(event),
      gh.url,
    );
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      /^::error title=LoraForge dataset error,file=datasets\/bad.jsonl,line=3::record 2, field output: is missing$/m,
    );
    assert.match(
      r.stdout,
      /^::error::1 of 1 changed datasets are invalid \(datasets\/bad.jsonl\); nothing was submitted$/m,
    );
    assert.match(r.summary, /❌ invalid/);
    assert.equal(r.outputs.result, "invalid");
    assert.match(r.stdout, new RegExp(`^::add-mask::${TOKEN}$`, "m"));
  });

  test("every credential of the kubeconfig input is masked before the action prints anything else", async () => {
    const event = payload("opened");
    const gh = await seededGitHub(
      event,
      [{ filename: "datasets/a.json", status: "added" }],
      { "datasets/a.json": validDataset(20) },
      baseSpec("ml"),
    );
    servers.push(gh);
    const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://10.0.0.1:6443"}}]
users:
  - {name: t, user: {token: e2e-bearer-token, client-key-data: ${Buffer.from("e2e-client-key").toString("base64")}}}
  - name: x
    user:
      exec:
        command: get-creds
        args: [--secret=e2e-exec-arg]
        env: [{name: TOKEN, value: e2e-exec-env}]
  - {name: o, user: {auth-provider: {name: oidc, config: {refresh-token: e2e-refresh-token}}}}
contexts: [{name: a, context: {cluster: a, user: t}}]
current-context: a
`;
    const r = await runAction(
      {
        "github-token": TOKEN,
        mode: "validate",
        kubeconfig: Buffer.from(kubeconfig).toString("base64"),
      },
      writeEvent(event),
      gh.url,
    );
    assert.equal(r.code, 0, r.stdout);
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    const firstOther = lines.findIndex((l) => !l.startsWith("::add-mask::"));
    const masked = lines.slice(0, firstOther).map((l) => l.slice("::add-mask::".length));
    for (const secret of [
      TOKEN,
      Buffer.from(kubeconfig).toString("base64"),
      "e2e-bearer-token",
      Buffer.from("e2e-client-key").toString("base64"),
      "--secret=e2e-exec-arg",
      "e2e-exec-arg",
      "e2e-exec-env",
      "e2e-refresh-token",
    ]) {
      assert.ok(masked.includes(secret), `${secret} is masked before any other output`);
    }
  });

  describe("with a cluster", () => {
    let k: ActionCluster;
    before(async () => {
      k = await actionCluster();
    });
    after(async () => k?.stop());

    test("mode all: validates, submits, waits while the status moves, comments, writes outputs and summary", async () => {
      const event = payload("synchronize");
      const dataset = "datasets/alpaca.json";
      const gh = await seededGitHub(
        event,
        [{ filename: dataset, status: "modified" }],
        { [dataset]: validDataset(50) },
        baseSpec(k.namespace),
      );
      servers.push(gh);
      const driving = (async () => {
        const name = await eventually(
          "the action to create the run",
          async () => (await k.list(`${LABEL.sha}=${event.pull_request.head.sha}`))[0]?.name,
          { timeoutMs: 60_000 },
        );
        await eventually("the queued comment", async () =>
          gh.commentsOf(REPO, 2).length === 1 ? true : undefined,
        );
        await k.patchStatus(name, {
          phase: "Running",
          progress: { step: 3, totalSteps: 6, percent: 50, loss: 1.8 },
        });
        // The action refreshes the comment with the progress it sees, then the run finishes.
        await eventually("the running comment", async () =>
          /🏃 \*\*Running\*\* — phase Running, step 3\/6/.test(
            gh.commentsOf(REPO, 2)[0]?.body ?? "",
          )
            ? true
            : undefined,
        );
        await k.patchStatus(name, succeeded(1.5, 0.42));
        return name;
      })();
      const r = await runAction(
        {
          "github-token": TOKEN,
          mode: "all",
          kubeconfig: Buffer.from(k.cluster.kubeconfig).toString("base64"),
          timeout: "3m",
          "poll-interval": "1s",
        },
        writeEvent(event),
        gh.url,
      );
      const name = await driving;
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.outputs["run-name"], name);
      assert.equal(r.outputs.phase, "Succeeded");
      assert.equal(r.outputs.result, "reported");
      assert.equal(JSON.parse(r.outputs.metrics ?? "[]")[0].tuned.evalLoss, 1.5);
      assert.match(r.stdout, /phase Running, step 3\/6 \(50%\), loss 1\.8000/);
      assert.match(r.summary, /LoraForge dataset validation[\s\S]*✅ valid/);
      assert.match(r.summary, /\| eval loss \| — \| 1\.5000 \| — \|/);
      const comments = gh.commentsOf(REPO, 2);
      assert.equal(comments.length, 1);
      assert.match(comments[0]?.body ?? "", /✅ \*\*Succeeded\*\*/);
      // Secrets: the token and the kubeconfig's bearer token are masked; the kubeconfig file is 0600 under RUNNER_TEMP.
      assert.match(r.stdout, new RegExp(`^::add-mask::${TOKEN}$`, "m"));
      assert.match(r.stdout, new RegExp(`^::add-mask::${k.cluster.token}$`, "m"));
      const kubeDirs = readdirSync(r.runnerTemp).filter((d) => d.startsWith("loraforge-kube-"));
      assert.equal(kubeDirs.length, 1);
      const file = join(r.runnerTemp, kubeDirs[0] ?? "", "config");
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(dirname(file)).mode & 0o777, 0o700);
      assert.equal(readFileSync(file, "utf8"), k.cluster.kubeconfig);
    });
  });
});
