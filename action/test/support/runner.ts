// dist/index.js run the way a runner runs it: INPUT_* variables, GITHUB_EVENT_PATH,
// GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP, with GitHub's API at `apiUrl`.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { REPO } from "./helpers.ts";

export const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "index.js");

export interface RunnerResult {
  code: number;
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
  runnerTemp: string;
}

/** Parses $GITHUB_OUTPUT (name<<DELIMITER ... DELIMITER blocks, as @actions/core writes them). */
function readOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i] ?? "");
    if (!m?.[1] || !m[2]) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i] ?? "");
    out[m[1]] = value.join("\n");
  }
  return out;
}

/** `inputs` by their action.yml names; the event is a pull_request unless `eventName` says. */
export function runAction(
  inputs: Record<string, string>,
  eventPath: string,
  apiUrl: string,
  eventName = "pull_request",
): Promise<RunnerResult> {
  const dir = mkdtempSync(join(tmpdir(), "lf-runner-"));
  const outputFile = join(dir, "output");
  const summaryFile = join(dir, "summary");
  const runnerTemp = mkdtempSync(join(dir, "temp-"));
  writeFileSync(outputFile, "");
  writeFileSync(summaryFile, "");
  const inputVariables = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DIST], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: dir,
        GITHUB_ACTIONS: "true",
        GITHUB_EVENT_NAME: eventName,
        GITHUB_EVENT_PATH: eventPath,
        GITHUB_REPOSITORY: REPO,
        GITHUB_API_URL: apiUrl,
        GITHUB_OUTPUT: outputFile,
        GITHUB_STEP_SUMMARY: summaryFile,
        RUNNER_TEMP: runnerTemp,
        ...inputVariables,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stdout += d;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code: code ?? -1,
        stdout,
        outputs: readOutputs(readFileSync(outputFile, "utf8")),
        summary: readFileSync(summaryFile, "utf8"),
        runnerTemp,
      }),
    );
  });
}
