// The cli's one error type (cli/src/errors.ts): every error class the cli exports extends
// CliError, and classifyError reads the exit code from the error instead of a list of names.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { InvalidLoraFineTuneError, TRAINER_EXIT_CODES } from "@loraforge/crds";
import { DatasetError } from "../../src/dataset/problems.ts";
import { CliError, classifyError, exitKind, UsageError } from "../../src/errors.ts";
import { EvalCoreError } from "../../src/eval/coreVerbs.ts";
import { TrainingFailure } from "../../src/inpod/pipeline.ts";
import { Llama2cError } from "../../src/llama2c/checkpoint.ts";
import { classifyError as fromMain } from "../../src/main.ts";
import { RunConfigError } from "../../src/train/runConfig.ts";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [join(dir, e.name)]
        : [],
  );
}

test("every exported error class under cli/src extends CliError", async () => {
  let seen = 0;
  for (const file of sourceFiles(SRC)) {
    const names = [
      ...readFileSync(file, "utf8").matchAll(/export class (\w+Error|\w+Failure)\b/g),
    ].map((m) => m[1] as string);
    if (names.length === 0) continue;
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const name of names) {
      const cls = mod[name];
      assert.equal(typeof cls, "function", `${relative(SRC, file)}: ${name}`);
      assert.ok(
        (cls as { prototype: object }).prototype instanceof CliError || cls === CliError,
        `${relative(SRC, file)}: ${name} does not extend CliError`,
      );
      seen++;
    }
  }
  assert.ok(seen >= 18, `found ${seen} error classes`);
});

test("classifyError reads the code from the error; kind names it in TRAINER_EXIT_CODES", () => {
  assert.equal(fromMain, classifyError);
  const usage = new UsageError("job takes --spec FILE", "job");
  assert.deepEqual(classifyError(usage), { code: 2, message: "job takes --spec FILE" });
  assert.equal(usage.kind, "usage");
  assert.equal(usage.name, "UsageError");
  const cfg = new RunConfigError("training.epochs", "must be positive");
  assert.deepEqual(classifyError(cfg), {
    code: 3,
    message: "spec.training.epochs: must be positive",
  });
  assert.equal(cfg.kind, "invalidInput");
  assert.equal(cfg.name, "RunConfigError");
  assert.equal(classifyError(new Llama2cError("m.bin", "short file", "wq")).code, 3);
  const core = new EvalCoreError("generate", 4, null, "core.log");
  assert.equal(classifyError(core).code, 4);
  assert.equal(core.kind, "numerics");
  assert.equal(
    classifyError(new TrainingFailure("stopped", 130)).code,
    TRAINER_EXIT_CODES.interrupted,
  );
  assert.equal(classifyError(new InvalidLoraFineTuneError("spec: bad", [])).code, 3);
  assert.equal(exitKind(77), "internal");
});

test("problem errors report the first error and how many more, with every problem", () => {
  const problems = [
    { file: "d.jsonl", line: 1, message: "looks odd", severity: "warning" as const },
    {
      file: "d.jsonl",
      line: 2,
      record: 1,
      field: "output",
      message: "must be a string",
      severity: "error" as const,
    },
    { file: "d.jsonl", line: 3, record: 2, message: "not JSON", severity: "error" as const },
  ];
  const c = classifyError(new DatasetError(problems));
  assert.equal(c.code, 3);
  assert.equal(
    c.message,
    "error: d.jsonl:2: record 1, field output: must be a string (and 1 more errors)",
  );
  assert.equal(c.problems, problems);
});

test("an unexpected error is a bug (1) with its stack; a file system error is invalid input (3)", () => {
  const bug = classifyError(new RangeError("oops"));
  assert.equal(bug.code, 1);
  assert.match(bug.message, /^internal error: RangeError: oops\n\s+at /);
  const enoent = Object.assign(new Error("ENOENT: no such file, open 'x'"), {
    code: "ENOENT",
    path: "x",
  });
  assert.deepEqual(classifyError(enoent), { code: 3, message: "ENOENT: no such file, open 'x'" });
  // node:util parseArgs' errors are usage errors
  assert.throws(
    () => parseArgs({ args: ["--nope"], options: {} }),
    (e) => classifyError(e).code === 2,
  );
});
