// The harness's child processes: started with their output in a log file, polled until
// ready (failing early with the log's tail when one exits), stopped with a grace period,
// and killed when this process exits or gets SIGINT/SIGTERM.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually } from "./eventually.ts";

const WATCHDOG = join(dirname(fileURLToPath(import.meta.url)), "watchdog.mjs");

const running = new Set<ChildProcess>();

function killAllNow() {
  for (const child of running) child.kill("SIGKILL");
}
process.once("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAllNow();
    // Re-raise so the default behaviour (exit with 128+n) still happens.
    process.kill(process.pid, signal);
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function tail(path: string, lines = 30): string {
  if (!existsSync(path)) return "(no log)";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

export interface Component {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<number | null>;
}

export function launch(
  name: string,
  binary: string,
  args: string[],
  dir: string,
  env?: NodeJS.ProcessEnv,
): Component {
  const logPath = join(dir, `${name}.log`);
  const fd = openSync(logPath, "a");
  const child = spawn(binary, args, { cwd: dir, stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
    child.on("error", () => {
      running.delete(child);
      resolve(-1);
    });
  });
  return { name, child, logPath, exited };
}

/** Polls `ready` until it holds, failing early (with the log's tail) if the process exits. */
export async function waitReady(
  component: Component,
  ready: () => Promise<boolean>,
  timeoutMs: number,
) {
  let exitCode: number | null | undefined;
  void component.exited.then((code) => {
    exitCode = code;
  });
  // An exit ends the wait at once (a probe that throws would only be retried until the timeout).
  const outcome = await eventually(
    `${component.name} to become ready`,
    async () => {
      if (exitCode !== undefined) return "exited" as const;
      return (await ready()) ? ("ready" as const) : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  ).catch((error: Error) => {
    throw new Error(
      `${error.message}\nlast lines of ${component.logPath}:\n${tail(component.logPath)}`,
    );
  });
  if (outcome === "exited") {
    throw new Error(
      `${component.name} exited (${exitCode}) during startup; last lines of ` +
        `${component.logPath}:\n${tail(component.logPath)}`,
    );
  }
}

export async function terminate(component: Component, graceMs = 10_000) {
  if (component.child.exitCode !== null || component.child.signalCode !== null) return;
  component.child.kill("SIGTERM");
  const timer = setTimeout(() => component.child.kill("SIGKILL"), graceMs);
  await component.exited;
  clearTimeout(timer);
}

/**
 * A detached process that kills `components` (and removes `dir`) if this process dies without
 * stopping them, and puts the host back from `restorePlan` when a node ran (see watchdog.mjs).
 */
export function startWatchdog(
  dir: string | undefined,
  components: Component[],
  restorePlan?: string,
): ChildProcess {
  const watchdog = spawn(
    process.execPath,
    [
      WATCHDOG,
      String(process.pid),
      dir ?? "-",
      restorePlan ?? "-",
      ...components.map((c) => String(c.child.pid)),
    ],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();
  return watchdog;
}
