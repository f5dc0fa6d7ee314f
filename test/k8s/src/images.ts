// Small container images the test node needs before the project's own images exist:
// `pause` (the sandbox image: a static C program built with gcc) and `busybox` (Debian's
// busybox-static binary). Each is one reproducible layer in a `docker save`-style archive
// that `ctr images import` reads; no daemon, no registry. Cached under
// ~/.cache/loraforge/node-images/<hash of the inputs>/, built atomically.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const PAUSE_IMAGE = "loraforge.local/pause:test";
export const BUSYBOX_IMAGE = "loraforge.local/busybox:test";

const PAUSE_C = `// The pod sandbox's process: holds the namespaces, reaps zombies, exits on INT/TERM.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
`;

const BUSYBOX_BINARY = "/bin/busybox";

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "loraforge", "node-images");
}

function check(cmd: string, args: string[], what: string, cwd?: string): string {
  const result = spawnSync(cmd, args, { encoding: "utf8", cwd });
  if (result.error || result.status !== 0) {
    throw new Error(
      `${what}: \`${cmd} ${args.join(" ")}\` failed: ${result.error?.message ?? result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Writes a one-layer docker archive of `rootfs` (a directory) to `out`. */
function writeArchive(
  rootfs: string,
  work: string,
  ref: string,
  entrypoint: string[],
  out: string,
) {
  const layer = join(work, "layer.tar");
  // Same files → same bytes: sorted names, fixed times and owners.
  check(
    "tar",
    [
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "-C",
      rootfs,
      "-cf",
      layer,
      ".",
    ],
    `packing ${rootfs}`,
  );
  const diffId = `sha256:${sha256(readFileSync(layer))}`;
  const config = JSON.stringify({
    architecture: process.arch === "arm64" ? "arm64" : "amd64",
    os: "linux",
    config: { Entrypoint: entrypoint, Env: ["PATH=/bin"], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [diffId] },
  });
  const configName = `${sha256(config)}.json`;
  writeFileSync(join(work, configName), config);
  writeFileSync(
    join(work, "manifest.json"),
    JSON.stringify([{ Config: configName, RepoTags: [ref], Layers: ["layer.tar"] }]),
  );
  check(
    "tar",
    [
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "-C",
      work,
      "-cf",
      out,
      "manifest.json",
      configName,
      "layer.tar",
    ],
    `writing ${out}`,
  );
}

export interface TestImage {
  ref: string;
  tarPath: string;
}

/** The pause and busybox archives, built on first use. */
export function ensureTestImages(log: (line: string) => void): TestImage[] {
  if (!existsSync(BUSYBOX_BINARY)) {
    throw new Error(
      `${BUSYBOX_BINARY} is missing: install Debian's busybox-static package (apt-get install busybox-static)`,
    );
  }
  const gcc =
    check("gcc", ["--version"], "gcc is needed to build the pause image").split("\n")[0] ?? "";
  const key = sha256(
    [PAUSE_C, gcc, sha256(readFileSync(BUSYBOX_BINARY)), PAUSE_IMAGE, BUSYBOX_IMAGE, "v1"].join(
      "\n",
    ),
  ).slice(0, 16);
  const dir = join(cacheDir(), key);
  const images = [
    { ref: PAUSE_IMAGE, tarPath: join(dir, "pause.tar") },
    { ref: BUSYBOX_IMAGE, tarPath: join(dir, "busybox.tar") },
  ];
  if (images.every((image) => existsSync(image.tarPath))) return images;

  const started = Date.now();
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    // pause
    const pauseWork = join(staging, "pause");
    const pauseRoot = join(pauseWork, "rootfs");
    mkdirSync(pauseRoot, { recursive: true });
    writeFileSync(join(pauseWork, "pause.c"), PAUSE_C);
    check(
      "gcc",
      ["-Os", "-static", "-s", "-o", join(pauseRoot, "pause"), join(pauseWork, "pause.c")],
      "building pause",
    );
    writeArchive(pauseRoot, pauseWork, PAUSE_IMAGE, ["/pause"], join(staging, "pause.tar"));
    // busybox
    const bbWork = join(staging, "busybox");
    const bbRoot = join(bbWork, "rootfs");
    mkdirSync(join(bbRoot, "bin"), { recursive: true });
    mkdirSync(join(bbRoot, "tmp"), { recursive: true });
    chmodSync(join(bbRoot, "tmp"), 0o1777);
    copyFileSync(BUSYBOX_BINARY, join(bbRoot, "bin", "busybox"));
    chmodSync(join(bbRoot, "bin", "busybox"), 0o755);
    for (const applet of ["sh", "cat", "echo", "sleep", "wget", "ls", "mkdir"]) {
      symlinkSync("busybox", join(bbRoot, "bin", applet));
    }
    writeArchive(bbRoot, bbWork, BUSYBOX_IMAGE, ["/bin/sh"], join(staging, "busybox.tar"));
    rmSync(pauseWork, { recursive: true, force: true });
    rmSync(bbWork, { recursive: true, force: true });
    mkdirSync(cacheDir(), { recursive: true });
    try {
      renameSync(staging, dir);
    } catch (error) {
      if (!images.every((image) => existsSync(image.tarPath))) throw error;
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  log(
    `[k8s] built test images (pause, busybox) in ${((Date.now() - started) / 1000).toFixed(1)} s into ${dir}`,
  );
  return images;
}
