#!/usr/bin/env node
// A workspace's unit tests in one process — each workspace's `npm run test:unit`:
//
//   tsx ../scripts/unit-tests.mjs test/unit/*.test.ts
//
// Why: `node --test` starts one process per file, and each loads tsx, the TypeScript sources and
// their dependencies again (@kubernetes/client-node alone costs a second of CPU). On a 2-core
// machine that start-up was three quarters of `npm test -- --unit`. Here the files are imported
// into one process and node's test runner runs the tests they register — one top-level test at a
// time, in file order, with the same reporters, summary and exit code as `node --test`.
// (`npm test`, unit and integration together, still runs every file in its own process.)
//
// What sharing one process changes, and how it is kept honest:
// - Every file is imported before the first test runs (a root `before` hook waits for the
//   imports), so one file's module code never runs in the middle of another file's test.
// - A file that fails to import is a failed test named after the file, as with `node --test`.
// - Module state lives for the whole run. A file's own top-level `before`/`after` hooks run
//   before the first and after the last test of the run.
// - A test that leaves process.env or the working directory changed fails the run, naming what
//   changed (a file that changes them when imported fails to load): unit tests pass their
//   environment explicitly or put back what they change.
//
// Node's test-runner flags go before the script:
//   tsx --test-name-pattern=masking --test-reporter=spec ../scripts/unit-tests.mjs test/unit/*.test.ts

import { relative, resolve } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: tsx scripts/unit-tests.mjs <file.test.ts>...");
  process.exit(2);
}

/** What a test could leave behind for the tests of other files. */
function snapshot() {
  return { cwd: process.cwd(), env: { ...process.env } };
}

/**
 * What differs from `was`, e.g. "process.env.HOME (changed)" — names only: a value may be a
 * token, and this goes to CI logs.
 */
function changedSince(was) {
  const now = snapshot();
  const changes = [];
  for (const key of new Set([...Object.keys(was.env), ...Object.keys(now.env)]))
    if (was.env[key] !== now.env[key]) {
      const how =
        was.env[key] === undefined ? "set" : now.env[key] === undefined ? "unset" : "changed";
      changes.push(`process.env.${key} (${how})`);
    }
  if (was.cwd !== now.cwd) changes.push(`the working directory (was ${was.cwd}, now ${now.cwd})`);
  return changes;
}

/** Puts back what `changedSince(was)` reports, so one file's slip does not fail the others. */
function restore(was) {
  for (const key of Object.keys(process.env)) if (!(key in was.env)) delete process.env[key];
  Object.assign(process.env, was.env);
  process.chdir(was.cwd);
}

const initial = snapshot();
let markImported;
const allImported = new Promise((resolve_) => {
  markImported = resolve_;
});
before(() => allImported);

try {
  for (const file of files) {
    const name = relative(process.cwd(), resolve(file));
    try {
      await import(pathToFileURL(resolve(file)).href);
    } catch (error) {
      test(name, () => {
        throw error;
      });
      continue;
    }
    const changes = changedSince(initial);
    if (changes.length > 0) {
      restore(initial);
      test(name, () => {
        throw new Error(`${name}: importing it changes ${changes.join("; ")}`);
      });
    }
  }
} finally {
  markImported();
}

// Registered last, so it runs after the files' own top-level `after` hooks.
after(() => {
  const changes = changedSince(initial);
  if (changes.length > 0)
    throw new Error(
      `a test left ${changes.join("; ")} changed for the tests that ran after it in this ` +
        `process (scripts/unit-tests.mjs); run one file alone to find it: tsx --test <file>`,
    );
});
