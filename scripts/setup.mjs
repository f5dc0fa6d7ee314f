#!/usr/bin/env node
// The set-up the README's two commands need, done once and idempotently: `npm run demo` and
// `npm test` call it first, so a fresh Debian machine with Node and root (or sudo) needs nothing
// else. Each step checks before it acts and says what it installs; a second run does nothing.
//
//   apt     the Debian packages (compilers, OpenBLAS, ... — a list per use below)
//   npm     `npm ci` when node_modules does not match package-lock.json
//   python  .venv with native/golden/requirements.txt (the golden checks' reference stack)
//   k8s     the test Kubernetes binaries, the S3 test server and Kueue, built from Go modules
//           (cached in ~/.cache/loraforge)
//
// usage: node scripts/setup.mjs demo|test|unit     (what the command about to run needs)
//        node scripts/setup.mjs --steps k8s        (chosen steps, for the test use; .ci/run)
// LORAFORGE_SETUP=skip skips everything (a machine prepared another way).

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Debian packages per use. The demo builds the core; the tests need the rest. */
export const APT_PACKAGES = {
  demo: ["build-essential", "cmake", "pkg-config", "libopenblas-dev", "libopenblas-openmp-dev"],
  test: [
    "build-essential",
    "cmake",
    "pkg-config",
    "libopenblas-dev",
    "libopenblas-openmp-dev",
    // libFuzzer and the sanitizer runtime for the fuzz targets
    "clang",
    "libclang-rt-14-dev",
    "python3",
    "python3-venv",
    "git",
    "ca-certificates",
    // the chat page's browser test
    "chromium",
    // the real node: container runtime, CNI plugins, what kube-proxy and the host restore use,
    // and the static busybox of the node's test image
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "nftables",
    "busybox-static",
    // the images, built without a daemon or a registry (images/build.mjs)
    "mmdebstrap",
    "umoci",
    "skopeo",
    // the sources' tests: git http-backend behind a TLS server with a certificate made by openssl
    "openssl",
    // the cli's zsh completion, completed by a real zsh (cli/test/integration/args.test.ts)
    "zsh",
  ],
};
APT_PACKAGES.unit = [];

/** What each use needs, in order. */
const NEEDS = {
  demo: ["apt", "npm"],
  unit: ["npm"],
  test: ["apt", "npm", "python", "k8s"],
};

const say = (line) => console.log(`[setup] ${line}`);

function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...options });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status}`);
}

function installed(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

function apt(use) {
  if (!existsSync("/usr/bin/dpkg-query")) {
    say(`not a Debian system: install these yourself if missing: ${APT_PACKAGES[use].join(" ")}`);
    return;
  }
  const missing = APT_PACKAGES[use].filter((p) => !installed(p));
  if (missing.length === 0) return;
  say(`installing Debian packages: ${missing.join(" ")}`);
  const root_ = process.getuid?.() === 0;
  const prefix = root_ ? [] : ["sudo"];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const [cmd, ...rest] = [...prefix, "apt-get"];
  sh(cmd, [...rest, "update", "-q"], { env });
  sh(cmd, [...rest, "install", "-y", "-q", "--no-install-recommends", ...missing], { env });
}

const digest = (...files) => {
  const hash = createHash("sha256");
  for (const f of files) hash.update(readFileSync(join(root, f)));
  return hash.digest("hex");
};

/** A stamp file records the inputs a step last ran with; the step reruns when they change. */
function stamped(path, key, action) {
  if (existsSync(path) && readFileSync(path, "utf8") === key) return;
  action();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, key);
}

function npm() {
  stamped(join(root, "node_modules", ".loraforge-setup"), digest("package-lock.json"), () => {
    say("npm ci (node_modules does not match package-lock.json)");
    // onnxruntime-node's install script fetches GPU binaries; its CPU binaries ship in the package.
    sh("npm", ["ci", "--no-audit", "--no-fund"], {
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" },
    });
  });
}

function python() {
  const requirements = "native/golden/requirements.txt";
  const venv = join(root, ".venv");
  stamped(join(venv, ".loraforge-setup"), digest(requirements), () => {
    if (!existsSync(join(venv, "bin", "python"))) {
      say("creating .venv (Python reference stack for the golden checks)");
      sh("python3", ["-m", "venv", venv]);
    }
    say(`pip install -r ${requirements} into .venv (torch, transformers, peft; a few GB once)`);
    sh(join(venv, "bin", "pip"), [
      "install",
      "-q",
      "--disable-pip-version-check",
      "-r",
      requirements,
    ]);
  });
}

/** The Go-built test servers: the Kubernetes binaries, the S3-compatible versitygw, Kueue. */
async function k8s() {
  const { tsImport } = await import("tsx/esm/api");
  const { ensureBinaries } = await tsImport("../test/k8s/src/binaries.ts", import.meta.url);
  await ensureBinaries((line) => say(line));
  const harness = await tsImport("../test/k8s/src/index.ts", import.meta.url);
  await harness.ensureGoTool(harness.VERSITYGW, (line) => say(line));
  await harness.ensureKueue((line) => say(line));
}

export async function setup(use, steps = NEEDS[use]) {
  if (!NEEDS[use]) throw new Error(`setup: unknown use "${use}" (demo, unit or test)`);
  const unknown = (steps ?? []).filter((s) => !NEEDS.test.includes(s));
  if (unknown.length > 0) throw new Error(`setup: unknown step ${unknown.join(", ")}`);
  if (process.env.LORAFORGE_SETUP === "skip") return;
  for (const step of steps) {
    if (step === "apt") apt(use);
    else if (step === "npm") npm();
    else if (step === "python") python();
    else if (step === "k8s") await k8s();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const run =
    args[0] === "--steps"
      ? setup("test", (args[1] ?? "").split(",").filter(Boolean))
      : setup(args[0] ?? "test");
  run.catch((error) => {
    console.error(`[setup] ${error.message}`);
    process.exit(1);
  });
}
