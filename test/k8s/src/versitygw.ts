// A real S3-compatible server for tests: versitygw (Apache-2.0, Go module
// github.com/versity/versitygw, pinned in test/versitygw/go.mod) serving a POSIX folder on a
// free loopback port, with SigV4 checked against one root access key. Starts in well under a
// second once built; the build (about 2 CPU-minutes) is cached by goTool.ts.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureGoTool, type GoTool } from "./goTool.ts";

export const VERSITYGW: GoTool = {
  moduleDir: resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "versitygw"),
  pkg: "github.com/versity/versitygw/cmd/versitygw",
  name: "versitygw",
  cache: "versitygw",
  overrideEnv: "LORAFORGE_VERSITYGW_BIN",
};

export interface S3Server {
  /** http://HOST:PORT (127.0.0.1 unless started with another host) */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The folder whose subfolders are the buckets. */
  root: string;
  stop: () => Promise<void>;
}

function freePort(host: string): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const c = connect(port, host);
    c.once("connect", () => {
      c.destroy();
      res(true);
    });
    c.once("error", () => res(false));
  });
}

/**
 * `host`: the address to listen on (default loopback); a test whose pods upload to it passes
 * the node's IP (NODE_IP), which pods reach and which stays on this machine.
 */
export async function startS3Server({
  host = "127.0.0.1",
}: {
  host?: string;
} = {}): Promise<S3Server> {
  const binary = await ensureGoTool(VERSITYGW);
  const root = mkdtempSync(join(tmpdir(), "lf-s3-"));
  const accessKeyId = `lf${randomBytes(6).toString("hex")}`;
  const secretAccessKey = randomBytes(20).toString("hex");
  const port = await freePort(host);
  let output = "";
  const child: ChildProcess = spawn(
    binary,
    [
      "--access",
      accessKeyId,
      "--secret",
      secretAccessKey,
      "--port",
      `${host}:${port}`,
      "posix",
      root,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (d) => {
    output = (output + d).slice(-4000);
  });
  child.stderr?.on("data", (d) => {
    output = (output + d).slice(-4000);
  });
  const deadline = Date.now() + 20_000;
  while (!(await reachable(host, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`versitygw did not start on ${host}:${port}: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    endpoint: `http://${host}:${port}`,
    accessKeyId,
    secretAccessKey,
    region: "us-east-1",
    root,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
