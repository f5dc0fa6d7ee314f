// The command line against the built loraforge-core: --version asks it, --json trains and evaluates;
// and the zsh completion script in a real zsh.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { zshCompletion } from "../../src/args/completion.ts";
import { DECLARATIONS } from "../../src/commands/help.ts";
import { main, versionText } from "../../src/main.ts";
import { findCore } from "../../src/train/core.ts";
import { cliBin, REPO_ROOT, STORIES, storiesWorkspace, tempDir } from "../support/helpers.ts";
import { zshCompletions } from "../support/zsh.ts";

function capture() {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    out: { info: (l: string) => lines.push(l), error: (l: string) => errors.push(l) },
    lines,
    errors,
    text: () => [...lines, ...errors].join("\n"),
  };
}

describe("--version and shell completion", () => {
  test("--version: the cli's package version and the core's own", async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, "cli", "package.json"), "utf8"));
    const core = findCore();
    const v = versionText({ LORAFORGE_CORE: core });
    assert.match(v, new RegExp(`^loraforge ${pkg.version.replace(/\./g, "\\.")} \\(cli\\)\\n`));
    const coreLine = spawnSync(core, ["--version"], { encoding: "utf8" }).stdout.trim();
    assert.ok(v.includes(coreLine), v);
    assert.match(
      versionText({ LORAFORGE_CORE: "/nonexistent/core" }),
      /loraforge-core: .*does not exist/,
    );
    const c = capture();
    assert.equal(await main(["--version"], c.out), 0);
  });

  test("zsh: a real zsh completes commands, flags, choices and sub-formats from the script", async () => {
    const tmp = await tempDir();
    try {
      const script = join(tmp.dir, "_loraforge");
      await writeFile(script, zshCompletion(DECLARATIONS));
      // Every visible flag of every command, after its positional word where it has one.
      const flagLines = DECLARATIONS.map((d) => {
        const sub = d.name === "export" ? " onnx" : d.name === "import" ? " llama2c" : "";
        return { d, line: `loraforge ${d.name}${sub} --` };
      });
      const found = zshCompletions(script, [
        "loraforge va",
        "loraforge validate --cut",
        "loraforge train s.yaml --backend ",
        "loraforge export ",
        "loraforge completion ",
        ...flagLines.map((f) => f.line),
      ]);
      assert.deepEqual(found.get("loraforge va"), ["validate"]);
      assert.deepEqual(found.get("loraforge validate --cut"), ["--cutoff"]);
      assert.deepEqual(found.get("loraforge train s.yaml --backend "), ["auto", "cpu", "cuda"]);
      assert.deepEqual(found.get("loraforge export "), ["onnx"]);
      assert.deepEqual(found.get("loraforge completion "), ["bash", "zsh"]);
      for (const { d, line } of flagLines) {
        const offered = found.get(line) ?? [];
        for (const [name, f] of Object.entries(d.flags))
          if (!f.hidden)
            assert.ok(offered.includes(`--${name}`), `${line}: --${name} in ${offered}`);
      }
    } finally {
      await tmp.cleanup();
    }
  });
});

describe("--json: one JSON document on stdout, people's text on stderr", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let specFile: string;
  before(async () => {
    tmp = await tempDir();
    await storiesWorkspace(tmp.dir, 24);
    specFile = join(tmp.dir, "spec.yaml");
    await writeFile(
      specFile,
      `apiVersion: loraforge.dev/v1alpha1
kind: LoraFineTune
metadata: {name: j}
spec:
  baseModel: {source: {pvc: {claimName: models, path: stories260K}}}
  dataset: {source: {pvc: {claimName: data, path: stories.jsonl}}, promptTemplate: alpaca_short, valSetSize: 4, cutoffLen: 128}
  lora: {r: 4, alpha: 8, dropout: 0}
  training: {epochs: 1, maxSteps: 2, learningRate: 3.0e-3, batchSize: 4, microBatchSize: 4, warmupSteps: 1, evalSteps: 2, saveSteps: 2}
  checkpointSelection: last
  evaluation: {samples: 2, maxNewTokens: 8}
  resources: {gpus: 0}
  output: {pvc: {claimName: runs, path: j}}
`,
    );
  });
  after(() => tmp.cleanup());
  const args = () => [
    "--volume",
    `models=${join(tmp.dir, "models")}`,
    "--volume",
    `data=${join(tmp.dir, "data")}`,
    "--out",
    join(tmp.dir, "run"),
    "--threads",
    "1",
  ];

  test("validate --json", async () => {
    const c = capture();
    assert.equal(await main(["validate", STORIES, "--json"], c.out), 0);
    const r = JSON.parse(c.lines.join("\n"));
    assert.equal(r.ok, true);
    assert.equal(r.stats.records, 384);
  });
  test("train --json, then eval --json", async () => {
    // through bin/: the progress view writes to the process's streams itself
    const t = spawnSync(
      process.execPath,
      [await cliBin(), "train", specFile, "--json", ...args()],
      { encoding: "utf8" },
    );
    assert.equal(t.status, 0, t.stderr);
    const run = JSON.parse(t.stdout);
    assert.equal(run.summary.status, "done");
    assert.equal(run.summary.step, 2);
    assert.equal(run.evaluation.data.examples, 2);
    assert.match(t.stderr, /step 2\/2/);
    assert.match(t.stderr, /done: 2 steps/);
    const e = capture();
    assert.equal(await main(["eval", specFile, "--json", ...args()], e.out), 0, e.text());
    const r = JSON.parse(e.lines.join("\n"));
    assert.equal(r.data.examples, 2);
    assert.ok(r.metrics.tuned, "the adapter was evaluated");
    assert.match(e.errors.join("\n"), /metric\s+base\s+fine-tuned/);
  });
});
