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

export type Log = (line: string) => void;

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
      "`go version` failed: Go (>= 1.25) is needed to build the test binaries " +
        `(${result.error?.message ?? result.stderr.trim()})`,
    );
  }
  return result.stdout.trim();
}

function goEnv(): NodeJS.ProcessEnv {
  // GOTOOLCHAIN=local: never download another Go; the cache key names the one used.
  return { ...process.env, GOTOOLCHAIN: "local" };
}

/** ~/.cache/loraforge/<name> (XDG_CACHE_HOME respected). */
export function loraforgeCacheDir(name: string): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "loraforge", name);
}

export function cacheRoot(): string {
  return process.env.LORAFORGE_K8S_BIN_CACHE || loraforgeCacheDir("k8s-bin");
}

/** One `go build` of a Go module of ours, cached in a directory keyed by its inputs. */
export interface GoBuild {
  /** Prefix of the log lines, e.g. "k8s". */
  label: string;
  /** The module (go.mod, go.sum) the packages are built in. */
  moduleDir: string;
  /** The Go packages, and the file name each binary gets ("goName" is what go build writes). */
  packages: readonly { pkg: string; goName: string; name: string }[];
  ldflags: string;
  /** Further files whose content decides the result (e.g. our own main.go). */
  inputs?: readonly string[];
  /** Symlinks to make in the result: name → target. */
  links?: readonly (readonly [string, string])[];
  /** Runs in the staging directory after the build, before it is published (copy data in). */
  finish?: (staging: string) => void;
  /** Every file a complete result has (besides the binaries and links). */
  extraFiles?: readonly string[];
  /** Said before a cold build, e.g. how long it takes. */
  coldNote: string;
}

/** A hash of everything that decides the build's result. */
export function goBuildKey(build: GoBuild): string {
  const hash = createHash("sha256");
  hash.update(readFileSync(join(build.moduleDir, "go.mod")));
  hash.update(readFileSync(join(build.moduleDir, "go.sum")));
  hash.update(goVersion());
  hash.update(build.ldflags);
  hash.update(build.packages.map((p) => p.pkg).join(","));
  for (const file of build.inputs ?? []) hash.update(readFileSync(file));
  return hash.digest("hex").slice(0, 16);
}

function expectedFiles(build: GoBuild): string[] {
  return [
    ...build.packages.map((p) => p.name),
    ...(build.links ?? []).map(([name]) => name),
    ...(build.extraFiles ?? []),
  ];
}

export function goBuildComplete(build: GoBuild, dir: string): boolean {
  return expectedFiles(build).every((name) => existsSync(join(dir, name)));
}

/**
 * Builds into `dir` unless a complete result is there: into a staging directory first,
 * renamed into place at the end, so a killed build never leaves a half result and two
 * builds racing publish one.
 */
export async function goBuildCached(build: GoBuild, dir: string, log: Log): Promise<void> {
  if (goBuildComplete(build, dir)) return;
  mkdirSync(dirname(dir), { recursive: true });
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  log(`[${build.label}] building ${build.packages.map((p) => p.pkg).join(", ")} into ${dir}`);
  log(`[${build.label}] (${build.coldNote})`);
  const args = [
    "build",
    "-trimpath",
    "-ldflags",
    build.ldflags,
    "-o",
    `${staging}/`,
    ...build.packages.map((p) => p.pkg),
  ];
  const hasNice = spawnSync("nice", ["true"]).status === 0;
  const [cmd, cmdArgs] = hasNice ? ["nice", ["go", ...args]] : ["go", args];
  const code = await new Promise<number>((resolvePromise, reject) => {
    const child = spawn(cmd, cmdArgs, { cwd: build.moduleDir, env: goEnv(), stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (c, signal) => resolvePromise(c ?? (signal ? 128 : 1)));
  });
  if (code !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`go build in ${build.moduleDir} failed with exit code ${code}`);
  }
  for (const p of build.packages) {
    if (p.goName !== p.name) renameSync(join(staging, p.goName), join(staging, p.name));
  }
  for (const [name, target] of build.links ?? []) symlinkSync(target, join(staging, name));
  build.finish?.(staging);
  if (!goBuildComplete(build, staging)) {
    throw new Error(`go build left an incomplete set in ${staging}`);
  }
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another process finished the same build first; its result is identical.
    if (!goBuildComplete(build, dir)) throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  log(`[${build.label}] built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function k8sBuild(): GoBuild {
  const version = pinnedKubernetesVersion();
  return {
    label: "k8s",
    moduleDir: TESTBIN_DIR,
    packages: PACKAGES,
    ldflags: ldflags(version),
    inputs: [join(TESTBIN_DIR, "cmd", "k8s", "main.go")],
    links: COMPONENTS.map((component) => [component, "k8s"] as const),
    coldNote: `${COMPONENTS.join(", ")} (one binary) and etcd ${version}; cold: tens of minutes on 2 cores, later runs reuse the cache`,
  };
}

/** The cache directory for the current go.mod/go.sum/Go version/flags. */
export function binariesDir(): string {
  return join(cacheRoot(), `${pinnedKubernetesVersion()}-${goBuildKey(k8sBuild())}`);
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

/**
 * Returns the binaries, building them first if the cache has none for this key.
 * LORAFORGE_K8S_BIN_DIR points at a directory of prebuilt binaries instead.
 */
export async function ensureBinaries(log: Log = (l) => process.stderr.write(`${l}\n`)) {
  const version = pinnedKubernetesVersion();
  const build = k8sBuild();
  const override = process.env.LORAFORGE_K8S_BIN_DIR;
  if (override) {
    if (!goBuildComplete(build, override)) {
      throw new Error(
        `LORAFORGE_K8S_BIN_DIR=${override} lacks one of ${expectedFiles(build).join(", ")}`,
      );
    }
    return describe(override, version);
  }
  const dir = binariesDir();
  await goBuildCached(build, dir, log);
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
