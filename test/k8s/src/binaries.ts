// Builds (once) and locates etcd and the Kubernetes components the tests run.
//
// The binaries come from the upstream Go modules pinned in testbin/go.mod, compiled
// through the Go module proxy. kube-apiserver, kube-controller-manager, kube-scheduler,
// kubelet and kube-proxy are one multi-call binary (testbin/cmd/k8s) reached through
// symlinks of those names: it links once instead of five times. They are cached under a key made of go.mod, go.sum, the
// Go version and the build flags, so a second run finds them and starts in seconds.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const TESTBIN_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "testbin");

/** The Go packages we build, and the file name each binary gets. */
const PACKAGES = [
  { pkg: "./cmd/k8s", goName: "k8s", name: "k8s" },
  // etcd's main package is the module root `server/v3`; `go build` names it "server".
  { pkg: "go.etcd.io/etcd/server/v3", goName: "server", name: "etcd" },
] as const;

/** The components the multi-call binary serves, each a symlink to it. */
export const COMPONENTS = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
  "kube-proxy",
] as const;

export interface K8sBinaries {
  dir: string;
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubelet: string;
  kubeProxy: string;
  /** The Kubernetes release pinned in testbin/go.mod, e.g. "v1.34.4". */
  kubernetesVersion: string;
}

type Log = (line: string) => void;

/** The Kubernetes release that testbin/go.mod pins, read from its require line. */
export function pinnedKubernetesVersion(): string {
  const goMod = readFileSync(join(TESTBIN_DIR, "go.mod"), "utf8");
  const match = /^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)\b/m.exec(goMod);
  if (!match?.[1]) {
    throw new Error(`${join(TESTBIN_DIR, "go.mod")}: no "k8s.io/kubernetes vX.Y.Z" requirement`);
  }
  return match[1];
}

function ldflags(version: string): string {
  const [major, minor] = version.slice(1).split(".");
  const pkg = "k8s.io/component-base/version";
  // Without these the binaries report "v0.0.0-master+$Format:%H$".
  return [
    "-s -w",
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ].join(" ");
}

function goVersion(): string {
  const result = spawnSync("go", ["version"], { encoding: "utf8", env: goEnv() });
  if (result.error || result.status !== 0) {
    throw new Error(
      "`go version` failed: Go (>= 1.24) is needed to build the test API server " +
        `(${result.error?.message ?? result.stderr.trim()})`,
    );
  }
  return result.stdout.trim();
}

function goEnv(): NodeJS.ProcessEnv {
  // GOTOOLCHAIN=local: never download another Go; the cache key names the one used.
  return { ...process.env, GOTOOLCHAIN: "local" };
}

export function cacheRoot(): string {
  if (process.env.LORAFORGE_K8S_BIN_CACHE) return process.env.LORAFORGE_K8S_BIN_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "loraforge", "k8s-bin");
}

/** The cache directory for the current go.mod/go.sum/Go version/flags. */
export function binariesDir(): string {
  const version = pinnedKubernetesVersion();
  const hash = createHash("sha256");
  hash.update(readFileSync(join(TESTBIN_DIR, "go.mod")));
  hash.update(readFileSync(join(TESTBIN_DIR, "go.sum")));
  hash.update(goVersion());
  hash.update(ldflags(version));
  hash.update(PACKAGES.map((p) => p.pkg).join(","));
  hash.update(readFileSync(join(TESTBIN_DIR, "cmd", "k8s", "main.go")));
  return join(cacheRoot(), `${version}-${hash.digest("hex").slice(0, 16)}`);
}

function describe(dir: string, version: string): K8sBinaries {
  return {
    dir,
    etcd: join(dir, "etcd"),
    kubeApiserver: join(dir, "kube-apiserver"),
    kubeControllerManager: join(dir, "kube-controller-manager"),
    kubeScheduler: join(dir, "kube-scheduler"),
    kubelet: join(dir, "kubelet"),
    kubeProxy: join(dir, "kube-proxy"),
    kubernetesVersion: version,
  };
}

function complete(dir: string): boolean {
  return [...PACKAGES.map((p) => p.name), ...COMPONENTS].every((name) =>
    existsSync(join(dir, name)),
  );
}

/**
 * Returns the binaries, building them first if the cache has none for this key.
 * LORAFORGE_K8S_BIN_DIR points at a directory of prebuilt binaries instead.
 */
export async function ensureBinaries(log: Log = (l) => process.stderr.write(`${l}\n`)) {
  const version = pinnedKubernetesVersion();
  const override = process.env.LORAFORGE_K8S_BIN_DIR;
  if (override) {
    if (!complete(override)) {
      throw new Error(
        `LORAFORGE_K8S_BIN_DIR=${override} lacks one of ${[...PACKAGES.map((p) => p.name), ...COMPONENTS].join(", ")}`,
      );
    }
    return describe(override, version);
  }
  const dir = binariesDir();
  if (complete(dir)) return describe(dir, version);

  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  log(`[k8s] building ${COMPONENTS.join(", ")} (one binary) and etcd ${version} into ${dir}`);
  log("[k8s] (cold: tens of minutes on 2 cores; later runs reuse the cache)");
  const args = [
    "build",
    "-trimpath",
    "-ldflags",
    ldflags(version),
    "-o",
    `${staging}/`,
    ...PACKAGES.map((p) => p.pkg),
  ];
  const hasNice = spawnSync("nice", ["true"]).status === 0;
  const [cmd, cmdArgs] = hasNice ? ["nice", ["go", ...args]] : ["go", args];
  const code = await new Promise<number>((resolvePromise, reject) => {
    const child = spawn(cmd, cmdArgs, { cwd: TESTBIN_DIR, env: goEnv(), stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (c, signal) => resolvePromise(c ?? (signal ? 128 : 1)));
  });
  if (code !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`go build in ${TESTBIN_DIR} failed with exit code ${code}`);
  }
  for (const p of PACKAGES) {
    if (p.goName !== p.name) renameSync(join(staging, p.goName), join(staging, p.name));
  }
  for (const component of COMPONENTS) symlinkSync("k8s", join(staging, component));
  if (!complete(staging)) throw new Error(`go build left an incomplete set in ${staging}`);
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another process finished the same build first; its result is identical.
    if (!complete(dir)) throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  log(`[k8s] built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return describe(dir, version);
}

/**
 * The version a binary reports: "Kubernetes v1.34.4" → "v1.34.4";
 * etcd's "etcd Version: 3.6.4" → "v3.6.4".
 */
export function reportedVersion(binary: string): string {
  const result = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (result.error || result.status !== 0) {
    throw new Error(`${binary} --version failed: ${result.error?.message ?? result.stderr}`);
  }
  const match = /\bv?(\d+\.\d+\.\d+\S*)/.exec(result.stdout);
  if (!match) throw new Error(`${binary} --version printed no version: ${result.stdout}`);
  return `v${match[1]}`;
}
