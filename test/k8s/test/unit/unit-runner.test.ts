// scripts/unit-tests.mjs, the one-process runner of every workspace's `npm run test:unit`: what
// it promises over `node --test` (docs/TESTING.md), checked on small test files of its own.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const RUNNER = join(import.meta.dirname, "..", "..", "..", "..", "scripts", "unit-tests.mjs");

/** Runs the runner on `files` (name → source) in a fresh folder; TAP output and exit status. */
function runOn(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "lf-unit-runner-"));
  try {
    for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, name), source);
    const env = { ...process.env, UNIT_RUNNER_LEAK: undefined, NODE_TEST_CONTEXT: undefined };
    const r = spawnSync(process.execPath, ["--test-reporter=tap", RUNNER, ...Object.keys(files)], {
      cwd: dir,
      encoding: "utf8",
      env,
      timeout: 60_000,
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const count = (out: string, what: string) =>
  Number(new RegExp(`^# ${what} (\\d+)$`, "m").exec(out)?.[1]);

test("one process: every file loads before the first test, tests run in file order", () => {
  const { status, out } = runOn({
    "a.test.mjs": [
      'import { test } from "node:test";',
      'test("a1", () => {',
      '  if (!globalThis.bLoaded) throw new Error("b.test.mjs was not imported before a1 ran");',
      "  globalThis.order = [...(globalThis.order ?? []), 'a1'];",
      "});",
    ].join("\n"),
    "b.test.mjs": [
      'import { test } from "node:test";',
      "globalThis.bLoaded = true;",
      'test("b1", () => {',
      '  if (String(globalThis.order) !== "a1") throw new Error("ran after " + globalThis.order);',
      "});",
    ].join("\n"),
  });
  assert.equal(status, 0, out);
  assert.equal(count(out, "tests"), 2, out);
  assert.equal(count(out, "pass"), 2, out);
});

test("a file that does not load, a failing test and a leaked environment fail the run, named", () => {
  const { status, out } = runOn({
    "good.test.mjs": 'import { test } from "node:test";\ntest("fine", () => {});\n',
    "broken.test.mjs": 'import { test } from "node:test";\ntest("x", () => {}); )\n',
    "leaks.test.mjs": [
      'import { test } from "node:test";',
      'test("sets a variable and keeps it", () => { process.env.UNIT_RUNNER_LEAK = "1"; });',
      'test("fails", () => { throw new Error("expected failure"); });',
    ].join("\n"),
  });
  assert.equal(status, 1, out);
  assert.match(out, /^ok \d+ - fine$/m);
  assert.match(out, /^not ok \d+ - broken\.test\.mjs$/m);
  assert.match(out, /^not ok \d+ - fails$/m);
  assert.match(out, /process\.env\.UNIT_RUNNER_LEAK \(set\)/);
  assert.equal(count(out, "fail"), 2, out);
});
