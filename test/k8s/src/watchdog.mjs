// Kills a test cluster's processes when the process that started them dies without
// stopping them (SIGKILL, a crash, a test runner timeout), then removes its directory.
// Plain JavaScript so it runs under bare `node`.
//
// usage: node watchdog.mjs <parentPid> <dirToRemove|-> <pid>...

import { rmSync } from "node:fs";

const [parentArg, dir, ...pidArgs] = process.argv.slice(2);
const parent = Number(parentArg);
const pids = pidArgs.map(Number);

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
  if (pids.every((pid) => !alive(pid))) process.exit(0); // stopped normally
  if (alive(parent)) return;
  clearInterval(timer);
  signalAll("SIGTERM");
  setTimeout(() => {
    signalAll("SIGKILL");
    if (dir && dir !== "-") rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 3000);
}, 500);
