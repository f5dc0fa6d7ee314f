// Kills a test cluster's processes when the process that started them dies without
// stopping them (SIGKILL, SIGINT, a crash, a test runner timeout), puts the host back when
// the cluster ran a node (host.mjs), then removes its directory.
// Plain JavaScript so it runs under bare `node`.
//
// usage: node watchdog.mjs <parentPid> <dirToRemove|-> <hostRestorePlan|-> <pid>...
// Without a restore plan it exits once every pid is gone (a normal stop). With one it stays
// until the parent is gone or stop() kills it after restoring the host itself.

import { rmSync } from "node:fs";
import { restoreFromFile } from "./host.mjs";

const [parentArg, dir, restorePlan, ...pidArgs] = process.argv.slice(2);
const parent = Number(parentArg);
const pids = pidArgs.map(Number);
const restore = restorePlan && restorePlan !== "-" ? restorePlan : undefined;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalAll(signal) {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

const timer = setInterval(() => {
  if (!restore && pids.every((pid) => !alive(pid))) process.exit(0); // stopped normally
  if (alive(parent)) return;
  clearInterval(timer);
  signalAll("SIGTERM");
  setTimeout(() => {
    signalAll("SIGKILL");
    if (restore) {
      try {
        restoreFromFile(restore);
      } catch {
        // the plan is gone: stop() already restored and removed it
      }
    }
    if (dir && dir !== "-") rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 3000);
}, 500);
