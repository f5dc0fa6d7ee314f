// A private containerd (its own root, state, socket and config under one folder) for running the
// images without Kubernetes: `ctr images import` then `ctr run --rm` with runc. Stopping it
// kills the daemon and removes the folder; nothing else on the machine is touched except
// runc's per-container state, which `ctr run --rm` removes.
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const NAMESPACE = "loraforge-images";

/**
 * @returns {Promise<{ dir: string, address: string,
 *   ctr: (args: string[], opts?: { timeoutMs?: number }) => { status: number | null, stdout: string, stderr: string },
 *   stop: () => Promise<void> }>}
 */
export async function startContainerd() {
  for (const bin of ["containerd", "ctr", "runc"])
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0)
      throw new Error(`images: ${bin} is not installed (apt-get install containerd runc)`);
  // short path: the socket's path must fit in sun_path (108 bytes)
  const dir = mkdtempSync(join(tmpdir(), "lf-ctrd-"));
  const address = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  writeFileSync(
    config,
    `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${address}"
[ttrpc]
  address = "${address}.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "${dir}/root/snapshots-overlayfs"
`,
  );
  mkdirSync(join(dir, "root"));
  const logFile = join(dir, "containerd.log");
  const logFd = openSync(logFile, "a");
  const daemon = spawn("containerd", ["--config", config], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  let exited = false;
  daemon.on("exit", () => {
    exited = true;
  });

  const ctr = (args, { timeoutMs = 300_000 } = {}) => {
    const r = spawnSync("ctr", ["--address", address, "--namespace", NAMESPACE, ...args], {
      encoding: "utf8",
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
  };

  const stop = async () => {
    // containers are run with --rm; anything left (a failed run) is removed before the daemon goes
    for (const id of ctr(["tasks", "list", "--quiet"]).stdout.split("\n").filter(Boolean))
      ctr(["tasks", "kill", "--signal", "SIGKILL", id]);
    for (const id of ctr(["containers", "list", "--quiet"]).stdout.split("\n").filter(Boolean)) {
      for (let i = 0; i < 20 && ctr(["tasks", "delete", id]).status !== 0; i++) {
        if (!ctr(["tasks", "list", "--quiet"]).stdout.includes(id)) break;
        await sleep(100);
      }
      ctr(["containers", "delete", id]);
    }
    if (!exited) {
      daemon.kill("SIGTERM");
      for (let i = 0; i < 100 && !exited; i++) await sleep(100);
      if (!exited) daemon.kill("SIGKILL");
    }
    // overlay mounts of a container that did not end cleanly would keep the folder busy
    spawnSync("sh", [
      "-c",
      `grep -o '${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`,
    ]);
    rmSync(dir, { recursive: true, force: true });
  };

  for (let i = 0; i < 200; i++) {
    if (exited)
      throw new Error(
        `images: containerd exited at start:\n${readFileSync(logFile, "utf8").slice(-2000)}`,
      );
    if (existsSync(address) && ctr(["version"]).status === 0) return { dir, address, ctr, stop };
    await sleep(100);
  }
  await stop();
  throw new Error(`images: containerd did not answer on ${address} within 20 s`);
}
