// The PR flow on one real node, as a repository's maintainers meet it: the action's bundled
// dist/index.js, run the way a runner runs it against a local GitHub server (real webhook
// payloads), submits with the CI account of examples/ci-rbac.yaml; the operator (Helm chart,
// its image) runs the trainer-cpu pod, which fetches the dataset from a private git server
// (basic auth, an internal CA given by the chart's trainer.caBundle) at the pushed commit.
//
//   push to master   → the baseline run of the base branch
//   PR opened        → a run of the PR's head commit; the sticky comment shows its real
//                      evaluation against the baseline
//   a second push    → a new run in a new folder; the same comment, updated
//
// Needs root, the node's apt packages, the images' tools (docs/TESTING.md).

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { API_VERSION } from "@loraforge/crds";
import { NODE_IP } from "@loraforge/test-k8s";
import { stringify } from "yaml";
import { z } from "zod";
import { setUpCiAccount } from "../../../../action/test/support/ciAccount.ts";
import { FakeGitHub } from "../../../../action/test/support/github-server.ts";
import {
  BOT,
  payload,
  REPO,
  SPEC_PATH,
  TOKEN,
  writeEvent,
} from "../../../../action/test/support/helpers.ts";
import { type RunnerResult, runAction } from "../../../../action/test/support/runner.ts";
import {
  makeRepo,
  makeTls,
  type Running,
  startGitServer,
} from "../../../../cli/test/support/sourceServers.ts";
import { REPO as REPO_ROOT } from "../../../../scripts/bundle.mjs";
import {
  type E2eEnv,
  getLftTable,
  log,
  NS,
  setUp,
  storiesRun,
  tearDown,
} from "../support/cluster.ts";

const DATASET = "datasets/stories.jsonl";
const CA_CONFIGMAP = "internal-ca";
const GIT_SECRET = "git-credentials";
const GIT_AUTH = { user: "ci-reader", password: "e2e-git-password" };

const Metrics = z
  .object({
    evalLoss: z.number(),
    exactMatch: z.number(),
    rougeL: z.number(),
    promptRepetition: z.number(),
  })
  .passthrough();
const Run = z.object({
  metadata: z.object({ name: z.string(), uid: z.string() }),
  spec: z.object({
    dataset: z.object({ source: z.object({}).passthrough() }).passthrough(),
  }),
  status: z
    .object({
      phase: z.string().optional(),
      adapter: z.object({ path: z.string(), digest: z.string() }).optional(),
      evaluation: z.object({ base: Metrics, tuned: Metrics }).passthrough().optional(),
    })
    .passthrough()
    .optional(),
});

let env: E2eEnv;
let git: Running;
let gh: FakeGitHub;
let work: string;
/** base64 kubeconfig of the CI account, as the repository secret holds it */
let ciKubeconfig: string;
/** The commits of the repository: initial, master, PR head, PR head after a second push. */
let shas: string[];
let cloneUrl: string;

const lines = readFileSync(join(REPO_ROOT, "examples", "stories-instruct", "stories.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l !== "");
/** The dataset at each commit: master has 300 stories, the PR adds the rest, then drops 20. */
const datasetAt = [
  lines.slice(0, 200),
  lines.slice(0, 300),
  lines,
  lines.filter((_, i) => i % 19 !== 0),
].map((l) => `${l.join("\n")}\n`);

/** The base branch's .loraforge/finetune.yaml: the stories260K example, dataset from git. */
function baseSpecText(): string {
  const lft = storiesRun("stories", (spec) => {
    spec.dataset.source = {
      git: { repo: cloneUrl, ref: "master", path: DATASET },
      secretName: GIT_SECRET,
    };
    spec.training.epochs = 2;
    spec.training.saveSteps = 20;
    spec.training.evalSteps = 20;
    spec.output = { pvc: { claimName: "runs", path: "stories-ci" } };
  });
  return stringify(lft);
}

const runsOf = async (selector: string) =>
  (
    await env.cluster.client.list(`/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes`, selector)
  ).items.map((i) => Run.parse(i));

/** Runs the action; prints its log and `kubectl get lft` when it is done. */
async function action(
  what: string,
  event: unknown,
  eventName = "pull_request",
): Promise<RunnerResult> {
  const t0 = Date.now();
  const r = await runAction(
    {
      "github-token": TOKEN,
      mode: "all",
      kubeconfig: ciKubeconfig,
      timeout: "10m",
      "poll-interval": "2s",
    },
    writeEvent(event),
    gh.url,
    eventName,
  );
  log(
    `${what}: the action exited ${r.code} after ${((Date.now() - t0) / 1000).toFixed(0)} s; outputs ${JSON.stringify(r.outputs)}`,
  );
  log(`$ kubectl get lft -n ${NS}\n${await getLftTable(env.cluster)}`);
  if (r.code !== 0) log(`${what}: the action's log:\n${r.stdout}`);
  return r;
}

/** The pull request of the fixtures, moved onto the local repository at `head`. */
function pullRequest(action: "opened" | "synchronize", head: string, before?: string) {
  const event = payload(action);
  const pr = event.pull_request as unknown as Record<string, unknown> & {
    head: Record<string, unknown> & { repo: Record<string, unknown> };
    base: Record<string, unknown> & { repo: Record<string, unknown> };
  };
  pr.head.sha = head;
  pr.head.repo.clone_url = cloneUrl;
  pr.base.sha = shas[1];
  pr.base.ref = "master";
  pr.base.repo.clone_url = cloneUrl;
  pr.changed_files = 1;
  if (before) (event as Record<string, unknown>).before = before;
  gh.addPull(REPO, pr, [{ filename: DATASET, status: "modified" }]);
  return event;
}

describe("the PR flow on a real node", { timeout: 1_800_000 }, () => {
  before(async () => {
    env = await setUp({ chart: { values: { "trainer.caBundle.configMap": CA_CONFIGMAP } } });
    const client = env.cluster.client;
    work = mkdtempSync(join(tmpdir(), "lf-e2e-pr-"));

    // The private git server on the node's IP (pods reach it; nothing leaves the machine),
    // its certificate from a CA the trainer image does not know.
    const tls = makeTls(NODE_IP);
    const root = join(work, "git");
    mkdirSync(root);
    git = await startGitServer(tls, root, GIT_AUTH, NODE_IP);
    cloneUrl = `${git.url}/hello-world.git`;
    const spec = baseSpecText();
    shas = makeRepo(root, "hello-world", [
      { [SPEC_PATH]: spec, [DATASET]: datasetAt[0] as string },
      { [DATASET]: datasetAt[1] as string },
      { [DATASET]: datasetAt[2] as string },
      { [DATASET]: datasetAt[3] as string },
    ]);

    // GitHub: the same files through its API (the action validates what it reads there).
    gh = new FakeGitHub();
    await gh.start();
    gh.tokens.set(TOKEN, BOT);
    for (let i = 0; i < shas.length; i++) {
      gh.setFile(REPO, shas[i] as string, SPEC_PATH, spec);
      gh.setFile(REPO, shas[i] as string, DATASET, datasetAt[i] as string);
    }
    gh.comparisons.set(`${REPO}@${shas[0]}...${shas[1]}`, [
      { filename: DATASET, status: "modified" },
    ]);

    // The admin: the internal CA for trainer pods, the repository's read credentials.
    await client.create(`/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: CA_CONFIGMAP, namespace: NS },
      data: { "ca.crt": tls.cert },
    });
    await client.create(`/api/v1/namespaces/${NS}/secrets`, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: GIT_SECRET, namespace: NS },
      stringData: { username: GIT_AUTH.user, password: GIT_AUTH.password },
    });

    // The CI account of examples/ci-rbac.yaml, moved to this namespace, and its kubeconfig.
    const account = await setUpCiAccount(client, env.cluster, NS, "e2e");
    ciKubeconfig = Buffer.from(account.kubeconfig).toString("base64");
  });
  after(async () => {
    await git?.close();
    await gh?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    await tearDown();
  });

  let baselineName = "";

  test("a push to master: the baseline run trains on the pushed commit, fetched from the private git server", async () => {
    const push = {
      ref: "refs/heads/master",
      before: shas[0],
      after: shas[1],
      repository: { full_name: REPO, clone_url: cloneUrl },
    };
    const r = await action("push to master", push, "push");
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.phase, "Succeeded", r.stdout);
    baselineName = r.outputs["run-name"] ?? "";
    const [baseline] = await runsOf(`loraforge.dev/sha=${shas[1]}`);
    assert.ok(baseline, "the baseline run exists");
    assert.deepEqual(baseline.spec.dataset.source, {
      git: { repo: cloneUrl, ref: shas[1], path: DATASET },
      secretName: GIT_SECRET,
    });
    assert.ok(baseline.status?.evaluation, "the baseline has status.evaluation");
    // the pod fetched the commit with the Secret's credentials, over TLS to the internal CA
    assert.ok(
      git.requests.some((q) => q.authorization?.startsWith("Basic ")),
      "git requests carried the credentials",
    );
  });

  test("a PR changes the dataset: its run trains at the head commit, and the sticky comment shows the real evaluation against master", async () => {
    assert.ok(baselineName, "needs the baseline of the previous test");
    const r = await action("PR opened", pullRequest("opened", shas[2] as string));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.phase, "Succeeded", r.stdout);
    const name = r.outputs["run-name"] ?? "";
    const run = Run.parse(
      await env.cluster.client.get(`/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes/${name}`),
    );
    const evaluation = run.status?.evaluation;
    assert.ok(evaluation, "status.evaluation from the pod's eval.json");
    const metrics = z
      .array(
        z
          .object({
            run: z.string(),
            tuned: Metrics,
            baseline: z.object({ run: z.string(), tuned: Metrics }),
          })
          .passthrough(),
      )
      .parse(JSON.parse(r.outputs.metrics ?? "[]"));
    assert.equal(metrics[0]?.baseline.run, baselineName);
    assert.deepEqual(metrics[0]?.tuned, evaluation.tuned);

    const comments = gh.commentsOf(REPO, 2);
    assert.equal(comments.length, 1, "one sticky comment");
    const body = comments[0]?.body ?? "";
    log(`the sticky comment:\n${body}`);
    assert.match(body, /✅ \*\*Succeeded\*\*/);
    assert.ok(body.includes(baselineName), "the comment names the baseline run");
    // the eval loss row: the baseline's and this run's real numbers, to 4 decimals
    const baseline = Run.parse(
      await env.cluster.client.get(
        `/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes/${baselineName}`,
      ),
    );
    const row = `| eval loss | ${baseline.status?.evaluation?.tuned.evalLoss.toFixed(4)} | ${evaluation.tuned.evalLoss.toFixed(4)} |`;
    assert.ok(body.includes(row), `the comment has the row ${row}`);
  });

  test("a second push to the PR: a new run in its own folder, and the same comment now shows it", async () => {
    const first = await runsOf(`loraforge.dev/sha=${shas[2]}`);
    const r = await action(
      "second push",
      pullRequest("synchronize", shas[3] as string, shas[2] as string),
    );
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.phase, "Succeeded", r.stdout);
    const second = Run.parse(
      await env.cluster.client.get(
        `/apis/${API_VERSION}/namespaces/${NS}/lorafinetunes/${r.outputs["run-name"]}`,
      ),
    );
    const earlier = first[0];
    assert.ok(earlier, "the first PR run is kept (finished runs are history)");
    assert.notEqual(second.metadata.name, earlier.metadata.name);
    const folder = (l: z.infer<typeof Run>) =>
      join(env.volumes.runs, "stories-ci", `${l.metadata.name}-${l.metadata.uid}`);
    for (const l of [earlier, second])
      assert.ok(
        readFileSync(join(folder(l), "adapter", "adapter_model.safetensors")).length > 0,
        `${l.metadata.name} has its adapter in its own folder`,
      );
    assert.notEqual(second.status?.adapter?.digest, earlier.status?.adapter?.digest);
    const comments = gh.commentsOf(REPO, 2);
    assert.equal(comments.length, 1, "still one sticky comment");
    assert.ok(comments[0]?.body.includes(shas[3]?.slice(0, 7) ?? "?"), "it names the new commit");
    log(`the sticky comment after the second push:\n${comments[0]?.body}`);
  });
});
