#!/usr/bin/env node
// `npm test`: the one test command.
//
//   1. native/: cmake configure + build in native/build, then ctest
//   2. build (or reuse) etcd, kube-apiserver and kube-controller-manager
//   3. start one real cluster and run every workspace's `npm test` against it
//      (LORAFORGE_TEST_KUBECONFIG names it)
//   4. the images: built (cached) and smoke-tested in containerd
//   5. `npm run verify` (generated files are up to date)
//
// Prints a per-suite table and a last line "N passed, N failed" (test cases, from node's
// test runner summary and ctest's), and exits non-zero if anything failed.
// usage: node scripts/test.mjs [--unit] [suite...]   e.g. `npm test -- crds native`
//
// `--unit` (`npm test -- --unit`) runs only every workspace's `test:unit` (test/unit/*.test.ts):
// no native build, no cluster, no Python goldens, no verify. What "unit" means: docs/TESTING.md.
//
// First it runs scripts/setup.mjs (apt packages, npm ci, the Python venv, the cluster binaries;
// each once, only what the run needs). Every line it prints starts with the time since it
// started. When stdout is not a terminal (CI), each suite's full output goes to
// test-results/<suite>.log and only its summary — or, when it fails, its failing tests — is
// printed, with a heartbeat every minute, so the end of a CI log shows where the time went.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { failures } from "./test-output.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const t0 = Date.now();
const compact = !process.stdout.isTTY && process.env.LORAFORGE_TEST_VERBOSE !== "1";
const logDir = join(root, "test-results");

/**
 * Wall-clock limits per suite, far above their usual time (native ~6 min, cli ~5 min on two
 * cores): a suite that hangs is stopped and reported as failed, with its log, instead of using
 * up CI's time and leaving no summary.
 */
const SUITE_LIMIT_MINUTES = { native: 30, default: 20 };

/** The suites' process groups now running: Ctrl-C or SIGTERM stops them too. */
const running = new Set();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    for (const child of running) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
    }
    process.exit(130);
  });
}

/** "[+12:34]": minutes and seconds since the run started. */
function stamp() {
  const s = Math.round((Date.now() - t0) / 1000);
  return `[+${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}]`;
}
const say = (line) => console.log(`${stamp()} ${line}`);
const only = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unitOnly = process.argv.includes("--unit");
const wanted = (name) => only.length === 0 || only.includes(name);

/** @typedef {{ name: string, passed: number, failed: number, seconds: number, note: string }} Result */
/** @type {Result[]} */
const results = [];

/**
 * Runs a command and resolves with its exit code and output. The output is echoed as it comes
 * (`echo`), or, in compact mode, kept for the suite's log with a heartbeat line every minute.
 */
function run(cmd, args, { cwd = root, env = process.env, name = cmd, echo = !compact } = {}) {
  return new Promise((resolve) => {
    // Its own process group, so a suite past its time limit is stopped with everything it started.
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    running.add(child);
    let output = "";
    const limitMinutes = SUITE_LIMIT_MINUTES[name] ?? SUITE_LIMIT_MINUTES.default;
    const limit = setTimeout(() => {
      output += `\n${name}: stopped after its ${limitMinutes}-minute limit (scripts/test.mjs)\n`;
      say(`${name}: past its ${limitMinutes}-minute limit, stopping it`);
      try {
        process.kill(-child.pid, "SIGTERM");
        setTimeout(() => {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {}
        }, 10_000).unref();
      } catch {}
    }, limitMinutes * 60_000);
    const heartbeat = compact
      ? setInterval(() => {
          const passed = (output.match(/^\s*ok \d+ /gm) ?? []).length;
          const failed = (output.match(/^\s*not ok \d+ /gm) ?? []).length;
          say(`${name}: running (${passed} ok, ${failed} not ok so far)`);
        }, 60_000)
      : undefined;
    child.stdout.on("data", (d) => {
      if (echo) process.stdout.write(d);
      output += d;
    });
    child.stderr.on("data", (d) => {
      if (echo) process.stderr.write(d);
      output += d;
    });
    const done = (result) => {
      running.delete(child);
      clearInterval(heartbeat);
      clearTimeout(limit);
      resolve(result);
    };
    child.on("error", (error) => done({ code: 127, output: `${output}\n${error.message}` }));
    child.on("close", (code, signal) => done({ code: code ?? (signal ? 128 : 1), output }));
  });
}

function lastNumber(text, pattern) {
  const matches = [...text.matchAll(pattern)];
  const last = matches.at(-1);
  return last ? Number(last[1]) : undefined;
}

/** Records a suite. A non-zero exit with no failed case counted still counts as a failure. */
function record(name, started, code, passed, failed, note = "") {
  const crashed = code !== 0 && failed === 0;
  results.push({
    name,
    passed,
    failed: crashed ? 1 : failed,
    seconds: (Date.now() - started) / 1000,
    note: crashed ? `exit code ${code}${note ? `; ${note}` : ""}` : note,
  });
}

async function step(name, cmd, args, options) {
  console.log(`\n${stamp()} ━━ ${name}: ${cmd} ${args.join(" ")}`);
  const started = Date.now();
  const { code, output } = await run(cmd, args, { ...options, name });
  if (compact) {
    mkdirSync(logDir, { recursive: true });
    const log = join(logDir, `${name}.log`);
    writeFileSync(log, output, { flag: "a" });
    if (code !== 0) console.log(failures(output));
    say(
      `${name}: exit ${code} after ${((Date.now() - started) / 1000).toFixed(0)} s (log: ${log})`,
    );
  }
  return { started, code, output };
}

// ── 1. native ────────────────────────────────────────────────────────────────────────
async function nativeSuite() {
  if (!wanted("native")) return;
  const started = Date.now();
  if (!existsSync(join(root, "native", "CMakeLists.txt"))) {
    record("native", started, 0, 0, 0, "no native/CMakeLists.txt yet");
    return;
  }
  const build = join(root, "native", "build");
  const jobs = String(Math.max(1, cpus().length));
  const configure = existsSync(join(build, "CMakeCache.txt"))
    ? { code: 0 }
    : await step("native", "cmake", ["-S", "native", "-B", build, "-DCMAKE_BUILD_TYPE=Release"]);
  const compiled =
    configure.code === 0
      ? await step("native", "cmake", ["--build", build, "-j", jobs])
      : configure;
  if (compiled.code !== 0) {
    record("native", started, compiled.code, 0, 0, "build failed");
    return;
  }
  const ctest = await step("native", "ctest", [
    "--test-dir",
    build,
    "--output-on-failure",
    "-j",
    jobs,
    // tests without their own TIMEOUT: ctest's default is 25 minutes
    "--timeout",
    "600",
  ]);
  // "100% tests passed, 0 tests failed out of 12"
  const total = lastNumber(ctest.output, /tests failed out of (\d+)/g);
  const failed = lastNumber(ctest.output, /(\d+) tests failed out of/g);
  const note = total === undefined ? "no ctest summary" : "";
  record("native", started, ctest.code, (total ?? 0) - (failed ?? 0), failed ?? 0, note);
}

// ── 2 + 3. workspaces against one real cluster ─────────────────────────────────────────
/** The test layout of every workspace: test/unit/*.test.ts and test/integration/*.test.ts. */
const TEST_KINDS = ["unit", "integration"];

function hasTestFiles(dir, kinds) {
  return kinds.some((kind) => {
    const folder = join(root, dir, "test", kind);
    return existsSync(folder) && readdirSync(folder).some((f) => f.endsWith(".test.ts"));
  });
}

function workspaces(kinds = TEST_KINDS) {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  return pkg.workspaces.map((dir) => {
    const ws = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
    const script = kinds.length === 1 ? `test:${kinds[0]}` : "test";
    return {
      dir,
      name: dir.replaceAll("/", "-"),
      script,
      hasScript: Boolean(ws.scripts?.[script]),
      hasTests: hasTestFiles(dir, kinds),
    };
  });
}

// ── --unit: every workspace's test/unit, without a cluster ───────────────────────────
// Workspaces run side by side, as many as there are cores (at least 2: a unit run waits on
// process start-up and the disk as much as on the CPU); each one's output is printed whole
// when it ends, and the table keeps the workspaces' order.
async function unitSuites() {
  const selected = workspaces(["unit"]).filter((w) => wanted(w.name));
  const queue = [];
  for (const ws of selected) {
    if (ws.hasScript && ws.hasTests) queue.push(ws);
    else record(ws.name, Date.now(), 0, 0, 0, ws.hasScript ? "no test/unit yet" : "no test:unit");
  }
  const worker = async () => {
    for (let ws = queue.shift(); ws; ws = queue.shift()) {
      const args = ["run", ws.script, "-w", ws.dir];
      const started = Date.now();
      const { code, output } = await run("npm", args, { echo: false, name: ws.name });
      console.log(`\n━━ ${ws.name}: npm ${args.join(" ")}\n${output}`);
      const passed = lastNumber(output, /^(?:#|ℹ) pass (\d+)/gm) ?? 0;
      const failed = lastNumber(output, /^(?:#|ℹ) fail (\d+)/gm) ?? 0;
      record(ws.name, started, code, passed, failed);
    }
  };
  await Promise.all(Array.from({ length: Math.max(2, cpus().length) }, worker));
  const order = selected.map((ws) => ws.name);
  results.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
}

async function workspaceSuites() {
  const selected = workspaces().filter((ws) => wanted(ws.name));
  if (selected.length === 0) return;
  const runnable = selected.filter((ws) => ws.hasScript && ws.hasTests);
  for (const ws of selected.filter((w) => !runnable.includes(w))) {
    record(
      ws.name,
      Date.now(),
      0,
      0,
      0,
      ws.hasScript ? "no test/*/*.test.ts yet" : "no test script",
    );
  }
  if (runnable.length === 0) return;

  // tsx lets this plain-JS script use the TypeScript harness.
  const { tsImport } = await import("tsx/esm/api");
  const harness = await tsImport("../test/k8s/src/index.ts", import.meta.url);
  const started = Date.now();
  let cluster;
  try {
    cluster = await harness.startCluster({ controllerManager: true });
  } catch (error) {
    console.error(`cannot start the test cluster: ${error.message}`);
    record("k8s cluster", started, 1, 0, 0, "did not start");
    return;
  }
  say(`all suites share kube-apiserver ${cluster.version} at ${cluster.server}`);
  const env = {
    ...process.env,
    LORAFORGE_TEST_KUBECONFIG: cluster.kubeconfigPath,
    LORAFORGE_TEST_CONTROLLER_MANAGER: "1",
  };
  try {
    for (const ws of runnable) {
      const suite = await step(ws.name, "npm", ["test", "-w", ws.dir], { env });
      // node's test runner ends with "# pass N" / "# fail N" (TAP) or "ℹ pass N" (spec).
      const passed = lastNumber(suite.output, /^(?:#|ℹ) pass (\d+)/gm) ?? 0;
      const failed = lastNumber(suite.output, /^(?:#|ℹ) fail (\d+)/gm) ?? 0;
      record(ws.name, suite.started, suite.code, passed, failed);
    }
  } finally {
    await cluster.stop();
  }
}

// ── images: built here (images/build.mjs, cached), smoke-tested in a private containerd ──
async function imagesSuite() {
  if (!wanted("images")) return;
  const suite = await step("images", "node", ["--test", "images/test/smoke.test.mjs"]);
  const passed = lastNumber(suite.output, /^(?:#|ℹ) pass (\d+)/gm) ?? 0;
  const failed = lastNumber(suite.output, /^(?:#|ℹ) fail (\d+)/gm) ?? 0;
  record("images", suite.started, suite.code, passed, failed);
}

// ── 4. verify ──────────────────────────────────────────────────────────────────────────
async function verifySuite() {
  if (!wanted("verify")) return;
  const { started, code } = await step("verify", "npm", ["run", "verify"]);
  record("verify", started, code, code === 0 ? 1 : 0, code === 0 ? 0 : 1, "gen, types, lint");
}

function summary() {
  const rows = results.map((r) => [
    r.name,
    String(r.passed),
    String(r.failed),
    `${r.seconds.toFixed(1)} s`,
    r.failed > 0 ? `FAIL ${r.note}` : r.note || "ok",
  ]);
  const header = ["suite", "passed", "failed", "time", "status"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(`\n${line(header)}\n${widths.map((w) => "─".repeat(w)).join("  ")}`);
  for (const row of rows) console.log(line(row));
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  console.log(`\n${stamp()} ${passed} passed, ${failed} failed`);
  return failed;
}

const { setup } = await import("./setup.mjs");
try {
  await setup(unitOnly ? "unit" : "test");
} catch (error) {
  console.error(`${stamp()} set-up failed: ${error.message}`);
  process.exit(1);
}
say("set-up done");
if (compact) rmSync(logDir, { recursive: true, force: true });

if (unitOnly) {
  await unitSuites();
} else {
  await nativeSuite();
  await workspaceSuites();
  await imagesSuite();
  await verifySuite();
}
process.exitCode = summary() > 0 ? 1 : 0;
