import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSpecText } from "../../src/basespec.ts";
import type { PushTarget } from "../../src/event.ts";
import { buildRun } from "../../src/runs.ts";
import { baseSpec, SPEC_PATH } from "../support/helpers.ts";

const target: PushTarget = {
  kind: "push",
  owner: "Codertocat",
  repo: "Hello-World",
  branch: "master",
  before: "3333333333333333333333333333333333333333",
  headSha: "4444444444444444444444444444444444444444",
  headCloneUrl: "https://git.example.com/Codertocat/Hello-World.git",
};

test("the run's dataset is a git source at the head commit; a private repository keeps the base spec's secretName", () => {
  const pvc = buildRun(
    parseSpecText(baseSpec("ml"), "spec"),
    target,
    "datasets/a.json",
    "ml",
    SPEC_PATH,
  );
  assert.deepEqual(pvc.spec.dataset.source, {
    git: { repo: target.headCloneUrl, ref: target.headSha, path: "datasets/a.json" },
  });
  const privateSpec = baseSpec("ml").replace(
    "pvc: {claimName: datasets, path: placeholder.json}",
    "git: {repo: 'https://git.example.com/Codertocat/Hello-World.git', ref: master, path: datasets/a.json}\n      secretName: git-credentials",
  );
  const run = buildRun(
    parseSpecText(privateSpec, "spec"),
    target,
    "datasets/b.json",
    "ml",
    SPEC_PATH,
  );
  assert.deepEqual(run.spec.dataset.source, {
    git: { repo: target.headCloneUrl, ref: target.headSha, path: "datasets/b.json" },
    secretName: "git-credentials",
  });
});
