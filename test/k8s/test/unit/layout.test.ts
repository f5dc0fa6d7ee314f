// One test layout in every workspace, and every workspace package a test imports is declared.
//
//   <workspace>/test/unit/*.test.ts         no cluster, no built loraforge-core, no Chromium, no
//                                           Python venv: `npm run test:unit`, `npm test -- --unit`
//                                           (all of a workspace's unit files in one process)
//   <workspace>/test/integration/*.test.ts  needs one of those
//   <workspace>/test/support/*.ts           helpers both import
//
// The rule for "unit" is checked on the test files themselves (and the support files they
// import): they must not name what only an integration run provides (docs/TESTING.md).
//
// It lives in the cross-component test workspace so that `npm test` counts it.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const repo = join(import.meta.dirname, "..", "..", "..", "..");

interface Manifest {
  name: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** This file names every pattern it looks for; it checks the others. */
const SELF = import.meta.filename;

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;
const root = readJson<{ workspaces: string[] }>(join(repo, "package.json"));
const workspaces = root.workspaces.map((dir) => ({
  dir,
  manifest: readJson<Manifest>(join(repo, dir, "package.json")),
}));

/** Every file under `dir` (relative to the repository), node_modules and build output left out. */
function filesUnder(dir: string): string[] {
  const abs = join(repo, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true, encoding: "utf8" })
    .filter((f) => !/(^|\/)(node_modules|dist|build|testbin)(\/|$)/.test(f))
    .map((f) => join(dir, f))
    .filter((f) => statSync(join(repo, f)).isFile());
}

/** Module specifiers of static imports, re-exports and dynamic `import("...")`. */
export function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /(?:^|[;\n])\s*(?:import|export)\b[^;"']*?(?:\bfrom\s*)?["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1] ?? "");
  return found;
}

test("specifiers reads static, type-only, re-export and dynamic imports", () => {
  const source = [
    'import { a } from "@loraforge/crds";',
    'import type { B } from "../support/b.ts";',
    'export { c } from "./c.ts";',
    'const d = await import("@loraforge/cli");',
    'import "./side-effect.ts";',
  ].join("\n");
  assert.deepEqual(specifiers(source).sort(), [
    "../support/b.ts",
    "./c.ts",
    "./side-effect.ts",
    "@loraforge/cli",
    "@loraforge/crds",
  ]);
});

test("every workspace's tests are in test/unit or test/integration, helpers in test/support", () => {
  const misplaced: string[] = [];
  for (const { dir } of workspaces) {
    for (const file of filesUnder(join(dir, "test"))) {
      if (!file.endsWith(".ts")) continue; // goldens, fixtures, reference scripts
      const inTest = relative(join(dir, "test"), file);
      const folder = inTest.split("/")[0];
      const ok = file.endsWith(".test.ts")
        ? (folder === "unit" || folder === "integration") &&
          !inTest.slice(folder.length + 1).includes("/")
        : folder === "support";
      if (!ok) misplaced.push(file);
    }
  }
  assert.deepEqual(
    misplaced,
    [],
    "tests go in test/unit/ or test/integration/, helpers in test/support/",
  );
});

test("every workspace runs both with `test` and unit tests alone with `test:unit`", () => {
  for (const { dir, manifest } of workspaces) {
    const has = (kind: string) =>
      filesUnder(join(dir, "test", kind)).some((f) => f.endsWith(".test.ts"));
    const globs = ["unit", "integration"].filter(has).map((k) => `test/${k}/*.test.ts`);
    if (globs.length === 0) continue;
    assert.equal(
      manifest.scripts?.test,
      `tsx --test ${globs.join(" ")}`,
      `${dir}/package.json scripts.test`,
    );
    // unit files share one process (scripts/unit-tests.mjs: start-up paid once, not per file)
    if (has("unit"))
      assert.equal(
        manifest.scripts?.["test:unit"],
        `tsx ${relative(join(repo, dir), join(repo, "scripts", "unit-tests.mjs"))} test/unit/*.test.ts`,
        `${dir}/package.json scripts["test:unit"]`,
      );
  }
});

test("a workspace package imported by a workspace's code or tests is declared in its package.json", () => {
  const missing: string[] = [];
  for (const { dir, manifest } of workspaces) {
    const runtime = Object.keys(manifest.dependencies ?? {});
    const dev = Object.keys(manifest.devDependencies ?? {});
    const files = filesUnder(dir).filter(
      (f) => /\.(ts|mts|mjs)$/.test(f) && join(repo, f) !== SELF,
    );
    for (const file of files) {
      const fromSrc = file.startsWith(`${join(dir, "src")}/`);
      for (const spec of specifiers(readFileSync(join(repo, file), "utf8"))) {
        const name = /^@loraforge\/[^/]+/.exec(spec)?.[0];
        if (!name || name === manifest.name) continue;
        const declared = fromSrc
          ? runtime.includes(name)
          : runtime.includes(name) || dev.includes(name);
        if (!declared)
          missing.push(
            `${file} imports ${name}: add it to ${dir}/package.json ${fromSrc ? "dependencies" : "devDependencies"}`,
          );
      }
    }
  }
  assert.deepEqual(missing, []);
});

/**
 * What only an integration run provides, as test code names it: the cluster harness, the built
 * core, Chromium, the Python venv of the goldens.
 */
const INTEGRATION_ONLY: [RegExp, string][] = [
  [/@loraforge\/test-k8s|LORAFORGE_TEST_KUBECONFIG/, "a Kubernetes cluster"],
  [/\bfindCore\(|loraforge-core["'`]|native\/build/, "the built loraforge-core"],
  [/playwright|chromium/i, "Chromium"],
  [/\.venv|LORAFORGE_PYTHON/, "the Python venv"],
];

test("unit tests and the support files they import need no cluster, core, Chromium or Python", () => {
  const found: string[] = [];
  for (const { dir } of workspaces) {
    const units = filesUnder(join(dir, "test", "unit")).filter(
      (f) => f.endsWith(".test.ts") && join(repo, f) !== SELF,
    );
    for (const unit of units) {
      // the unit test and every test-folder module it reaches through relative imports
      const seen = new Set<string>();
      const queue = [join(repo, unit)];
      while (queue.length > 0) {
        const file = queue.pop() as string;
        if (seen.has(file) || !existsSync(file)) continue;
        seen.add(file);
        const text = readFileSync(file, "utf8");
        for (const [pattern, what] of INTEGRATION_ONLY)
          if (pattern.test(text))
            found.push(
              `${unit}${file === join(repo, unit) ? "" : ` (through ${relative(repo, file)})`} needs ${what}`,
            );
        for (const spec of specifiers(text))
          if (spec.startsWith(".")) {
            const target = resolve(dirname(file), spec);
            if (target.startsWith(`${join(repo, dir, "test")}/`)) queue.push(target);
          }
      }
    }
  }
  assert.deepEqual(
    found,
    [],
    "move these to test/integration/ (or keep the dependency out of the unit test)",
  );
});
