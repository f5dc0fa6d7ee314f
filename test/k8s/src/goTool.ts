// Builds (once) a Go command from a module of its own and caches the binary under
// ~/.cache/loraforge/<cache>/<hash>/<name>, keyed by the module's go.mod and go.sum, the Go
// version and the build flags: the same pattern as binaries.ts uses for the Kubernetes
// binaries, for tools that tests run beside the cluster (versitygw, the S3-compatible store).
// Built into a staging folder and renamed, so a cache entry is always whole.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface GoTool {
  /** Folder of the Go module (go.mod with a `tool` line for pkg). */
  moduleDir: string;
  /** Package path of the command. */
  pkg: string;
  /** File name of the binary (go build names it after the package's last element). */
  name: string;
  /** Folder under ~/.cache/loraforge. */
  cache: string;
  /** Environment variable that, when set, names a prebuilt binary to use instead. */
  overrideEnv?: string;
}

const FLAGS = ["-trimpath", "-ldflags", "-s -w"];
const goEnv = (): NodeJS.ProcessEnv => ({ ...process.env, GOTOOLCHAIN: "local" });

function goVersion(): string {
  const r = spawnSync("go", ["version"], { encoding: "utf8", env: goEnv() });
  if (r.error || r.status !== 0)
    throw new Error(
      `\`go version\` failed: Go is needed to build test tools (${r.error?.message ?? r.stderr.trim()})`,
    );
  return r.stdout.trim();
}

/** The cache folder for the tool's current inputs. */
export function goToolDir(tool: GoTool): string {
  const hash = createHash("sha256");
  hash.update(readFileSync(join(tool.moduleDir, "go.mod")));
  hash.update(readFileSync(join(tool.moduleDir, "go.sum")));
  hash.update(goVersion());
  hash.update(FLAGS.join(" "));
  hash.update(tool.pkg);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "loraforge", tool.cache, hash.digest("hex").slice(0, 16));
}

/** The binary's path, building it first when the cache has none for these inputs. */
export async function ensureGoTool(
  tool: GoTool,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<string> {
  const override = tool.overrideEnv ? process.env[tool.overrideEnv] : undefined;
  if (override) {
    if (!existsSync(override)) throw new Error(`${tool.overrideEnv}=${override}: no such file`);
    return override;
  }
  const dir = goToolDir(tool);
  const binary = join(dir, tool.name);
  if (existsSync(binary)) return binary;
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  log(`[${tool.cache}] building ${tool.pkg} into ${dir} (once; later runs reuse it)`);
  const args = ["build", ...FLAGS, "-o", `${staging}/`, tool.pkg];
  const hasNice = spawnSync("nice", ["true"]).status === 0;
  const [cmd, cmdArgs] = hasNice ? ["nice", ["go", ...args]] : ["go", args];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { cwd: tool.moduleDir, env: goEnv(), stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  if (code !== 0 || !existsSync(join(staging, tool.name))) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`go build ${tool.pkg} in ${tool.moduleDir} failed with exit code ${code}`);
  }
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another process finished the same build first; its result is identical.
    if (!existsSync(binary)) throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  log(`[${tool.cache}] built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return binary;
}
