/**
 * `loraforge-core generate` and `loraforge-core score` (docs/CONTRACTS.md §2) for base and
 * adapter in one process each: write the JSONL input, run the core, collect its events.
 */
import { spawnSync } from "node:child_process";
import { appendFile, writeFile } from "node:fs/promises";
import { CliError } from "../errors.ts";
import { runCore } from "../train/core.ts";
import type { ErrorEvent } from "../train/events.ts";
import {
  type GenEvent,
  parseGenEventLine,
  type ScoreEvent,
  type SequenceEvent,
} from "./coreEvents.ts";

/** The core's variant names. */
export type Variant = "base" | "adapter";

/** The core failed a verb; the cli exits with the core's own exit code. */
export class EvalCoreError extends CliError {
  constructor(
    readonly verb: string,
    exitCode: number,
    readonly event: ErrorEvent | null,
    logFile: string,
  ) {
    super(
      `loraforge-core ${verb} failed (exit code ${exitCode}${event ? `, ${event.kind}: ${event.message}` : ""}); see ${logFile}`,
      exitCode,
    );
    this.name = "EvalCoreError";
  }
}

export interface SamplingSettings {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  stopTokens: number[];
  batchSize: number;
}

interface VerbRun {
  corePath: string;
  modelDir: string;
  adapterDir: string | null;
  variants: Variant[];
  threads: number;
  /** The core's stderr and any unparsed output are appended here. */
  logFile: string;
  signal?: AbortSignal;
}

async function runVerb(
  verb: "generate" | "score",
  run: VerbRun,
  args: string[],
): Promise<GenEvent[]> {
  const events: GenEvent[] = [];
  let writes = Promise.resolve();
  let lastError: ErrorEvent | null = null;
  const core = runCore<GenEvent>({
    corePath: run.corePath,
    args: [
      verb,
      "--model",
      run.modelDir,
      ...(run.adapterDir ? ["--adapter", run.adapterDir] : []),
      "--variants",
      run.variants.join(","),
      ...(run.threads > 0 ? ["--threads", String(run.threads)] : []),
      ...args,
    ],
    parse: parseGenEventLine,
    onEvent: (e) => {
      if (e.event === "error") lastError = e;
      events.push(e);
    },
    onBadLine: (line, message) => {
      writes = writes.then(() =>
        appendFile(run.logFile, `[loraforge] unparsed core output (${message}): ${line}\n`),
      );
    },
    onStderr: (chunk) => {
      writes = writes.then(() => appendFile(run.logFile, chunk));
    },
  });
  const onAbort = () => core.stop();
  run.signal?.addEventListener("abort", onAbort);
  let exit: { code: number };
  try {
    exit = await core.exited;
  } finally {
    run.signal?.removeEventListener("abort", onAbort);
    await writes;
  }
  if (exit.code !== 0) throw new EvalCoreError(verb, exit.code, lastError, run.logFile);
  return events;
}

export async function generate(
  run: VerbRun,
  promptsFile: string,
  prompts: { id: string; tokens: number[] }[],
  s: SamplingSettings,
): Promise<SequenceEvent[]> {
  await writeFile(promptsFile, prompts.map((p) => `${JSON.stringify(p)}\n`).join(""));
  const events = await runVerb("generate", run, [
    "--prompts",
    promptsFile,
    "--max-new-tokens",
    String(s.maxNewTokens),
    "--batch-size",
    String(s.batchSize),
    "--temperature",
    String(s.temperature),
    "--top-k",
    String(s.topK),
    "--top-p",
    String(s.topP),
    "--repetition-penalty",
    String(s.repetitionPenalty),
    "--seed",
    String(s.seed),
    "--stop-tokens",
    s.stopTokens.join(","),
  ]);
  return events.filter((e): e is SequenceEvent => e.event === "sequence");
}

export async function score(
  run: VerbRun,
  examplesFile: string,
  examples: { id: string; prompt: number[]; target: number[] }[],
  batchSize: number,
): Promise<ScoreEvent[]> {
  await writeFile(examplesFile, examples.map((e) => `${JSON.stringify(e)}\n`).join(""));
  const events = await runVerb("score", run, [
    "--examples",
    examplesFile,
    "--batch-size",
    String(batchSize),
  ]);
  return events.filter((e): e is ScoreEvent => e.event === "score");
}

/** `loraforge-core --version`: "loraforge-core 0.1.0 (backends: cpu)" -> "0.1.0". */
export function coreVersion(corePath: string): string {
  const r = spawnSync(corePath, ["--version"], { encoding: "utf8" });
  const m = /^loraforge-core\s+(\S+)/.exec(r.stdout ?? "");
  return m?.[1] ?? "unknown";
}
