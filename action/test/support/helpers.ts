// Shared pieces of the action's tests: webhook payloads, inputs, a recording reporter, sample
// datasets and the base spec, and a fake GitHub seeded from a payload.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LoraFineTuneStatus } from "@loraforge/crds";
import { type Inputs, readInputs } from "../../src/inputs.ts";
import type { Annotation, Reporter } from "../../src/reporter.ts";
import { FakeGitHub, type Identity } from "./github-server.ts";

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
export const REPO = "Codertocat/Hello-World";
export const SPEC_PATH = ".loraforge/finetune.yaml";

export type PayloadName = "opened" | "synchronize" | "labeled" | "synchronize.fork";

/** A webhook payload from fixtures/ (a fresh copy each time). */
export function payload(name: PayloadName): Record<string, unknown> & {
  pull_request: Record<string, unknown> & {
    number: number;
    head: { sha: string; ref: string; repo: { full_name: string } };
    base: { sha: string; ref: string };
    labels: { name: string }[];
  };
} {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.payload.json`), "utf8"));
}

export function writeEvent(body: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "lf-event-"));
  const path = join(dir, "event.json");
  writeFileSync(path, JSON.stringify(body));
  return path;
}

export function inputs(overrides: Record<string, string>): Inputs {
  return readInputs((name) => overrides[name] ?? "");
}

export interface Recorded {
  level: "info" | "notice" | "warning" | "error";
  message: string;
  where?: Annotation;
}

export interface RecordingReporter extends Reporter {
  lines: Recorded[];
  outputs: Record<string, string>;
  summaries: string[];
  secrets: string[];
  failed: string | undefined;
}

export function recordingReporter(): RecordingReporter {
  const r: RecordingReporter = {
    lines: [],
    outputs: {},
    summaries: [],
    secrets: [],
    failed: undefined,
    info: (message) => r.lines.push({ level: "info", message }),
    notice: (message, where) =>
      r.lines.push({ level: "notice", message, ...(where ? { where } : {}) }),
    warning: (message, where) =>
      r.lines.push({ level: "warning", message, ...(where ? { where } : {}) }),
    error: (message, where) =>
      r.lines.push({ level: "error", message, ...(where ? { where } : {}) }),
    setOutput: (name, value) => {
      r.outputs[name] = value;
    },
    summary: (md) => r.summaries.push(md),
    setSecret: (v) => r.secrets.push(v),
    setFailed: (m) => {
      r.failed = m;
    },
    flush: async () => {},
  };
  return r;
}

/** A valid Alpaca dataset of n records (arithmetic, so every record is distinct). */
export function validDataset(n: number): string {
  const records = Array.from({ length: n }, (_, i) => ({
    instruction: `Add ${i} and ${i + 7}.`,
    input: i % 3 === 0 ? `numbers: ${i}, ${i + 7}` : "",
    output: String(2 * i + 7),
  }));
  return `[\n${records.map((r) => `  ${JSON.stringify(r)}`).join(",\n")}\n]\n`;
}

/** JSON Lines with a record missing its output on line 3 and a non-string input on line 5. */
export const INVALID_JSONL = [
  '{"instruction": "Say hi.", "input": "", "output": "Hi!"}',
  '{"instruction": "Count to three.", "input": "", "output": "1, 2, 3"}',
  '{"instruction": "Name a colour.", "input": ""}',
  '{"instruction": "Double it.", "input": "4", "output": "8"}',
  '{"instruction": "Halve it.", "input": 8, "output": "4"}',
  "",
].join("\n");

export function baseSpec(namespace: string, extra = ""): string {
  return `apiVersion: loraforge.dev/v1alpha1
kind: LoraFineTune
metadata:
  name: hello-alpaca
  namespace: ${namespace}
  labels: {team: ml}
spec:
  baseModel:
    source:
      pvc: {claimName: models, path: stories260K}
  dataset:
    source:
      pvc: {claimName: datasets, path: placeholder.json}
    valSetSize: 10
  training:
    epochs: 1
    seed: 7
  output:
    pvc: {claimName: runs, path: hello-alpaca}
${extra}`;
}

export const BOT: Identity = {
  login: "github-actions[bot]",
  type: "Bot",
  canReadUser: false,
  canWrite: true,
};
export const READ_ONLY_BOT: Identity = { ...BOT, canWrite: false };
export const TOKEN = "ghs_testtoken000000000000000000000000";
export const READ_ONLY_TOKEN = "ghs_readonly0000000000000000000000000";

/** A fake GitHub with the PR of `event`, its changed files, the base spec at the base SHA and the datasets at the head SHA. */
export async function seededGitHub(
  event: ReturnType<typeof payload>,
  files: { filename: string; status: string }[],
  datasets: Record<string, string>,
  spec: string,
): Promise<FakeGitHub> {
  const gh = new FakeGitHub();
  await gh.start();
  gh.tokens.set(TOKEN, BOT);
  gh.tokens.set(READ_ONLY_TOKEN, READ_ONLY_BOT);
  const pr = event.pull_request;
  gh.addPull(REPO, pr, files);
  gh.setFile(REPO, pr.base.sha, SPEC_PATH, spec);
  for (const [path, text] of Object.entries(datasets)) gh.setFile(REPO, pr.head.sha, path, text);
  return gh;
}

/** Sorted file statuses with one dataset hidden at position `at` among `total` files. */
export function manyFiles(total: number, datasets: { at: number; path: string }[]) {
  const files = Array.from({ length: total }, (_, i) => ({
    filename: `src/file-${String(i).padStart(5, "0")}.ts`,
    status: "modified",
  }));
  for (const d of datasets) files[d.at] = { filename: d.path, status: "modified" };
  return files;
}

const digest = `sha256:${"ab".repeat(32)}`;

/** A finished run's status: 3 checkpoints, an adapter, base and tuned metrics. */
export function succeeded(
  evalLoss: number,
  exactMatch: number,
  checkpoints = 3,
  /** A second run: its own losses, ROUGE-L, selected step and adapter. */
  variant?: { lossShift: number; rougeL: number; selectedStep: number; output: string },
): LoraFineTuneStatus {
  const shift = variant?.lossShift ?? 0;
  const selected = variant?.selectedStep ?? 600;
  return {
    phase: "Succeeded",
    startTime: "2026-11-27T10:00:00Z",
    completionTime: "2026-11-27T10:42:30Z",
    checkpoints: Array.from({ length: checkpoints }, (_, i) => ({
      step: (i + 1) * 200,
      path: `checkpoints/checkpoint-${(i + 1) * 200}`,
      trainLoss: Number((1.9 - i * 0.25 + shift).toFixed(4)),
      valLoss: Number((1.95 - i * 0.2 + shift).toFixed(4)),
    })),
    selectedCheckpoint: {
      step: selected,
      path: `checkpoints/checkpoint-${selected}`,
      policy: "lowestTrainLoss",
    },
    adapter: {
      path: `pvc://runs/${variant?.output ?? "hello-alpaca-master-f95f852-ee02ac"}/adapter`,
      digest: variant ? `sha256:${"cd".repeat(32)}` : digest,
      sizeBytes: 4_194_304,
      verified: true,
    },
    evaluation: {
      base: { evalLoss: 2.4, exactMatch: 0.05, rougeL: 0.21, promptRepetition: 0.3 },
      tuned: { evalLoss, exactMatch, rougeL: variant?.rougeL ?? 0.48, promptRepetition: 0.02 },
      samples: 64,
    },
  };
}
