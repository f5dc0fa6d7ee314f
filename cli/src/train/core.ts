/**
 * Runs the native core (`loraforge-core train --config run.json`): the only module that spawns it.
 * Events arrive through a callback as they are printed; stderr (human logs) goes to a sink.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { CLI_ROOT } from "../paths.ts";
import { type CoreEvent, parseEventLine } from "./events.ts";

/** LORAFORGE_CORE, then the repository's native/build, then PATH. */
export function findCore(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LORAFORGE_CORE) {
    if (!existsSync(env.LORAFORGE_CORE))
      throw new Error(`LORAFORGE_CORE=${env.LORAFORGE_CORE} does not exist`);
    return env.LORAFORGE_CORE;
  }
  const inRepo = join(CLI_ROOT, "..", "native", "build", "loraforge-core");
  if (existsSync(inRepo)) return inRepo;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    const p = join(dir, "loraforge-core");
    if (dir && existsSync(p)) return p;
  }
  throw new Error(
    "loraforge-core not found: build it (cmake -S native -B native/build -DCMAKE_BUILD_TYPE=Release && cmake --build native/build) or set LORAFORGE_CORE",
  );
}

/** A stop signal the cli passes on to the core. */
export type StopSignal = "SIGINT" | "SIGTERM";

/** The reason to abort a run with when the cli gets `signal`: an AbortError that names it. */
export const stopReason = (signal: StopSignal) => new DOMException(signal, "AbortError");

/** The signal an abort's reason names (stopReason); SIGINT for any other abort. */
export const stopSignalOf = (reason: unknown): StopSignal =>
  reason instanceof DOMException && reason.message === "SIGTERM" ? "SIGTERM" : "SIGINT";

export interface CoreRun {
  /** Resolves with the exit code (or 128+signal) once the process has exited. */
  exited: Promise<{ code: number; signal: NodeJS.Signals | null }>;
  /**
   * Ask the core to stop: it saves a checkpoint and exits 130. `signal` is the one the cli got
   * (the core logs it); a second call kills it.
   */
  stop(signal?: StopSignal): void;
}

export interface CoreRunOptions<E = CoreEvent> {
  corePath: string;
  args: string[];
  onEvent: (e: E) => void;
  /** How a stdout line becomes an event: the train events by default (generate/score have their own). */
  parse?: (line: string) => { ok: true; event: E } | { ok: false; message: string };
  /** Lines on stdout that are not valid events (reported, never fatal). */
  onBadLine?: (line: string, message: string) => void;
  onStderr?: (chunk: string) => void;
  env?: NodeJS.ProcessEnv;
}

export function runCore<E = CoreEvent>(opts: CoreRunOptions<E>): CoreRun {
  const parseLine =
    opts.parse ??
    (parseEventLine as (line: string) => { ok: true; event: E } | { ok: false; message: string });
  const child = spawn(opts.corePath, opts.args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: opts.env ?? process.env,
  });
  let buffered = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === "") continue;
      const parsed = parseLine(line);
      if (parsed.ok) opts.onEvent(parsed.event);
      else opts.onBadLine?.(line, parsed.message);
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => opts.onStderr?.(chunk));
  const exited = new Promise<{ code: number; signal: NodeJS.Signals | null }>(
    (resolveExit, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => {
        const rest = buffered.trim();
        if (rest) {
          const parsed = parseLine(rest);
          if (parsed.ok) opts.onEvent(parsed.event);
          else opts.onBadLine?.(rest, parsed.message);
        }
        resolveExit({
          code: code ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : 2),
          signal,
        });
      });
    },
  );
  let stops = 0;
  return {
    exited,
    stop(signal: StopSignal = "SIGINT") {
      stops++;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(stops === 1 ? signal : "SIGKILL");
    },
  };
}
