// action.yml and the example workflows agree with the code: every input has a description and
// the same default as src/inputs.ts, outputs are the ones run() sets, the example workflows
// only pass inputs that exist, and action.yml runs the committed bundle on node24.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { z } from "zod";
import { INPUT_DEFAULTS, MODES } from "../../src/inputs.ts";

/** The workflow expression action.yml defaults the token to. */
const GITHUB_TOKEN_EXPRESSION = ["$", "{{ github.token }}"].join("");
const ACTION = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WORKFLOWS = join(ACTION, "..", "examples", "workflows");

const ActionYaml = z.object({
  name: z.string(),
  description: z.string(),
  inputs: z.record(
    z.string(),
    z.object({ description: z.string().min(10), required: z.boolean(), default: z.string() }),
  ),
  outputs: z.record(z.string(), z.object({ description: z.string().min(10) })),
  runs: z.object({ using: z.literal("node24"), main: z.literal("dist/index.js") }),
});

const action = ActionYaml.parse(parse(readFileSync(join(ACTION, "action.yml"), "utf8")));

describe("action.yml", () => {
  test("runs the committed bundle on node24", () => {
    assert.ok(existsSync(join(ACTION, action.runs.main)));
  });

  test("declares exactly the inputs the code reads, with the same defaults", () => {
    assert.deepEqual(Object.keys(action.inputs).sort(), Object.keys(INPUT_DEFAULTS).sort());
    for (const [name, spec] of Object.entries(action.inputs)) {
      const expected =
        name === "github-token"
          ? GITHUB_TOKEN_EXPRESSION
          : INPUT_DEFAULTS[name as keyof typeof INPUT_DEFAULTS];
      assert.equal(spec.default.trim(), expected.trim(), `default of ${name}`);
    }
  });

  test("declares the outputs run() sets", () => {
    assert.deepEqual(Object.keys(action.outputs).sort(), [
      "datasets",
      "metrics",
      "phase",
      "result",
      "run-name",
    ]);
  });
});

describe("examples/workflows", () => {
  const files = readdirSync(WORKFLOWS).filter((f) => f.endsWith(".yml"));
  test("there are the validate, train, report and baseline workflows", () => {
    assert.deepEqual(files.sort(), [
      "loraforge-baseline.yml",
      "loraforge-report.yml",
      "loraforge-train.yml",
      "loraforge-validate.yml",
    ]);
  });

  for (const file of files) {
    test(`${file} passes only known inputs and a valid mode`, () => {
      const wf = z
        .object({
          on: z.unknown(),
          permissions: z.record(z.string(), z.string()),
          jobs: z.record(
            z.string(),
            z.object({
              steps: z.array(
                z.object({
                  uses: z.string().optional(),
                  with: z.record(z.string(), z.string()).optional(),
                }),
              ),
            }),
          ),
        })
        .parse(parse(readFileSync(join(WORKFLOWS, file), "utf8")));
      const steps = Object.values(wf.jobs).flatMap((j) =>
        j.steps.filter((s) => s.uses?.includes("/action@")),
      );
      assert.ok(steps.length > 0);
      for (const step of steps) {
        for (const key of Object.keys(step.with ?? {}))
          assert.ok(key in action.inputs, `${file}: unknown input ${key}`);
        assert.ok((MODES as readonly string[]).includes(step.with?.mode ?? ""), `${file}: mode`);
      }
      if (file === "loraforge-validate.yml") {
        assert.deepEqual(wf.permissions, { contents: "read", "pull-requests": "read" });
        assert.ok(
          steps.every((s) => !s.with?.kubeconfig),
          "the unprivileged workflow gets no cluster",
        );
      }
      // No workflow checks out the pull request's code.
      assert.doesNotMatch(readFileSync(join(WORKFLOWS, file), "utf8"), /actions\/checkout/);
    });
  }
});
