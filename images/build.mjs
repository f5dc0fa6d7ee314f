#!/usr/bin/env node
// Builds the LoraForge images with no Docker daemon and no registry:
//
//   node images/build.mjs [operator|trainer-cpu|trainer-cuda ...]     (no name: all)
//
// Each image is defined once, in images/<name>/image.mjs: a Debian base (pinned packages), layers
// of files (bundles from scripts/bundle.mjs, the core from native/, node, wheels' libraries) and
// the OCI config. The base root filesystem comes from mmdebstrap, the image is assembled with
// umoci and exported with skopeo to a docker-archive that `ctr images import` loads.
//
// Reproducible: every timestamp is EPOCH, tars are sorted with numeric owner 0, so the same
// inputs give the same manifest digest. Built images are cached in
// ~/.cache/loraforge/images/<sha256 of the inputs>.tar (+ .json), written atomically, so a second
// run only rebuilds the bundles, checks the core is up to date and hashes the inputs.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BUNDLES, bundle } from "../scripts/bundle.mjs";

const IMAGES_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(IMAGES_DIR, "..");
export const IMAGE_NAMES = ["operator", "trainer-cpu", "trainer-cuda"];
/** Images built only when named: examples the end-to-end tests use (a model shipped as an image). */
export const EXAMPLE_IMAGE_NAMES = ["model-stories260k"];
export const CACHE_DIR = join(homedir(), ".cache", "loraforge", "images");
const WHEEL_CACHE = join(homedir(), ".cache", "loraforge", "wheels");
/** Every timestamp in every image (2026-01-01T00:00:00Z): same inputs → same digest. */
export const EPOCH = 1767225600;
const EPOCH_ISO = new Date(EPOCH * 1000).toISOString();
/** The suite with its point-release updates and security fixes (where the pinned versions live). */
const debianSources = (suite) => [
  `deb http://deb.debian.org/debian ${suite} main`,
  `deb http://deb.debian.org/debian ${suite}-updates main`,
  `deb http://deb.debian.org/debian-security ${suite}-security main`,
];
/** The images' user: not root, no home but /tmp (the only writable place with a read-only root). */
export const USER_ID = 65532;
/** Image references: ghcr.io/loraforge/<name>:<first 12 hex of the inputs hash>. */
export const REGISTRY = "ghcr.io/loraforge";

/**
 * @typedef {{ path: string, from?: string, content?: string, mode?: number }} FileSpec
 * @typedef {{ name: string, files: FileSpec[] }} LayerSpec
 * @typedef {{ suite: string, packages: Record<string, string> }} BaseSpec
 * @typedef {{ name: string, description: string, base: BaseSpec,
 *   layers: (inputs: Inputs) => Promise<LayerSpec[]>,
 *   config: { entrypoint: string[], env: Record<string, string>, labels: Record<string, string> } }} ImageDefinition
 * @typedef {{ name: string, ref: string, tar: string, digest: string, configDigest: string,
 *   inputs: string, size: number, layers: { name: string, digest: string, size: number }[],
 *   packages: string[], cached?: boolean }} BuiltImage
 */

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.error)
    throw new Error(
      `images: ${cmd} could not run (${r.error.message})${r.error.code === "ENOENT" ? ` — apt-get install ${cmd}` : ""}`,
    );
  if (r.status !== 0)
    throw new Error(
      `images: \`${cmd} ${args.join(" ")}\` failed (exit ${r.status}):\n${(r.stderr || r.stdout).slice(-3000)}`,
    );
  return r.stdout;
}

function sha256File(path) {
  return new Promise((res, rej) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("error", rej)
      .on("data", (d) => h.update(d))
      .on("end", () => res(h.digest("hex")));
  });
}
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

/** A file written by rename, so a reader never sees half of it and two builders don't clash. */
function atomicWrite(dest, write) {
  mkdirSync(dirname(dest), { recursive: true });
  const staging = `${dest}.tmp-${process.pid}-${Date.now()}`;
  try {
    write(staging);
    renameSync(staging, dest);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

// ── inputs: the things images are made of, each produced once per process ──

function once(fn) {
  const memo = new Map();
  return (...args) => {
    const key = JSON.stringify(args);
    if (!memo.has(key)) memo.set(key, fn(...args));
    return memo.get(key);
  };
}

/** @typedef {ReturnType<typeof makeInputs>} Inputs */
function makeInputs() {
  return {
    /** The node that runs the repo's tests (a Debian bookworm build; v20 is what the code targets). */
    node: once(async () => [
      { path: "/usr/local/bin/node", from: realpathSync(process.execPath), mode: 0o755 },
    ]),
    cliBundle: once(async () => {
      await bundle(["cli"]);
      return {
        packageJson: join(REPO, "cli", "package.json"),
        files: BUNDLES.cli.map((b) => ({ name: b.outfile.split("/").pop(), path: b.outfile })),
      };
    }),
    operatorBundle: once(async () => {
      await bundle(["operator"]);
      return BUNDLES.operator[0].outfile;
    }),
    /** loraforge-core, Release, built (incrementally) from native/. */
    core: once(async () => {
      const buildDir = releaseBuildDir();
      if (!existsSync(join(buildDir, "CMakeCache.txt")))
        sh("cmake", ["-S", join(REPO, "native"), "-B", buildDir, "-DCMAKE_BUILD_TYPE=Release"]);
      sh("nice", ["-n", "10", "cmake", "--build", buildDir, "--target", "loraforge-core", "-j2"]);
      return join(buildDir, "loraforge-core");
    }),
    /**
     * loraforge-core with the CUDA backend (sm_75, sm_80, sm_90), built with the pinned CUDA 13.0
     * toolchain from PyPI wheels (native/cuda/toolchain.sh) in the folder and with the flags of
     * CI's CUDA compile check (native/cuda/build_check.sh), so CI compiles the backend once.
     */
    cudaCore: once(async () => {
      const flags = spawnSync("bash", [join(REPO, "native", "cuda", "toolchain.sh"), "13.0"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      });
      if (flags.status !== 0) throw new Error("native/cuda/toolchain.sh 13.0 failed (see above)");
      const buildDir = join(REPO, "native", "build", "ci-cuda");
      sh("cmake", [
        "-S",
        join(REPO, "native"),
        "-B",
        buildDir,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLORAFORGE_CUDA=ON",
        "-DCMAKE_CUDA_ARCHITECTURES=75;80;90",
        "-DCMAKE_CUDA_FLAGS=-Werror=all-warnings",
        ...flags.stdout.trim().split("\n"),
      ]);
      sh("nice", ["-n", "10", "cmake", "--build", buildDir, "--target", "loraforge-core", "-j2"]);
      return join(buildDir, "loraforge-core");
    }),
    /** Shared libraries out of a PyPI wheel, downloaded once into ~/.cache/loraforge/wheels. */
    wheelLibs: once(async (name, version, libs) => {
      const dir = join(WHEEL_CACHE, `${name}-${version}`);
      if (!libs.every((l) => existsSync(join(dir, l)))) {
        atomicWrite(dir, (staging) => {
          mkdirSync(staging, { recursive: true });
          const py = existsSync(join(REPO, ".venv", "bin", "python"))
            ? join(REPO, ".venv", "bin", "python")
            : "python3";
          console.error(`images: downloading the ${name}==${version} wheel from PyPI`);
          sh(py, [
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            join(staging, "wheel"),
            `${name}==${version}`,
          ]);
          sh(py, ["-c", EXTRACT_LIBS_PY, join(staging, "wheel"), staging, ...libs]);
          rmSync(join(staging, "wheel"), { recursive: true });
        });
      }
      return libs.map((l) => ({ name: l, path: join(dir, l) }));
    }),
  };
}

// Copies lib files from the wheel's .../lib/ folder to the destination, by file name.
const EXTRACT_LIBS_PY = `
import sys, zipfile, glob, os, shutil
wheels, dest, libs = sys.argv[1], sys.argv[2], sys.argv[3:]
found = {}
for w in glob.glob(os.path.join(wheels, "*.whl")):
    with zipfile.ZipFile(w) as z:
        for n in z.namelist():
            b = n.rsplit("/", 1)[-1]
            if b in libs and "/lib/" in n:
                with z.open(n) as src, open(os.path.join(dest, b), "wb") as out:
                    shutil.copyfileobj(src, out)
                found[b] = n
missing = [l for l in libs if l not in found]
if missing:
    sys.exit("not in the wheel: " + ", ".join(missing))
`;

function releaseBuildDir() {
  const dir = join(REPO, "native", "build");
  const cache = join(dir, "CMakeCache.txt");
  if (!existsSync(cache) || /CMAKE_BUILD_TYPE:\w+=Release\b/.test(readFileSync(cache, "utf8")))
    return dir;
  // native/build is someone's Debug (or other) build: leave it alone.
  return join(REPO, "native", "build-release");
}

// ── the Debian base: one root filesystem per package set, cached ──

function baseKey(base) {
  return sha256(
    JSON.stringify({
      v: 1,
      base,
      sources: debianSources(base.suite),
      epoch: EPOCH,
      hook: BASE_HOOK,
      user: USER_ID,
    }),
  );
}

// Removes what only a package manager needs at build time and adds the non-root user.
const BASE_HOOK = [
  'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/* "$1"/var/log/* "$1"/etc/machine-id',
  `echo 'nonroot:x:${USER_ID}:${USER_ID}:nonroot:/tmp:/usr/sbin/nologin' >> "$1"/etc/passwd`,
  `echo 'nonroot:x:${USER_ID}:' >> "$1"/etc/group`,
].join(" && ");

function debianBase(base) {
  const tar = join(CACHE_DIR, `rootfs-${baseKey(base)}.tar`);
  if (existsSync(tar)) return tar;
  const include = Object.entries(base.packages).map(([p, v]) => `${p}=${v}`);
  console.error(
    `images: mmdebstrap ${base.suite} minbase${include.length ? ` + ${include.join(" ")}` : ""}`,
  );
  atomicWrite(tar, (staging) => {
    sh(
      "mmdebstrap",
      [
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        ...(include.length ? [`--include=${include.join(",")}`] : []),
        ...["man", "doc", "info", "locale", "lintian", "linda"].map(
          (d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`,
        ),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        // dpkg fsyncs every file by default: minutes on a busy disk, and the result is a tar anyway
        "--dpkgopt=force-unsafe-io",
        `--customize-hook=${BASE_HOOK}`,
        base.suite,
        staging,
        ...debianSources(base.suite),
      ],
      // the chroot in memory (when /dev/shm is there): dpkg's writes on a shared, busy disk are slow
      {
        env: {
          ...process.env,
          SOURCE_DATE_EPOCH: String(EPOCH),
          ...(existsSync("/dev/shm") ? { TMPDIR: "/dev/shm" } : {}),
        },
      },
    );
  });
  return tar;
}

/** Name=version of every package in a base root filesystem (recorded in docs/IMAGES.md). */
function basePackages(rootfsTar) {
  const status = sh("tar", ["-xOf", rootfsTar, "./var/lib/dpkg/status"]);
  const out = [];
  for (const para of status.split("\n\n")) {
    const pkg = /^Package: (.+)$/m.exec(para)?.[1];
    const ver = /^Version: (.+)$/m.exec(para)?.[1];
    if (pkg && ver) out.push(`${pkg}=${ver}`);
  }
  return out.sort();
}

// ── layers: a sorted tar with fixed owner, modes and mtimes ──

function layerTar(layer, dir) {
  const stage = join(dir, `stage-${layer.name}`);
  for (const f of layer.files) {
    if (!f.path.startsWith("/"))
      throw new Error(`images: layer ${layer.name}: ${f.path} is not absolute`);
    const dest = join(stage, f.path);
    mkdirSync(dirname(dest), { recursive: true });
    if (f.content !== undefined) writeFileSync(dest, f.content);
    else if (f.from) {
      if (!existsSync(f.from))
        throw new Error(`images: layer ${layer.name}: ${f.from} (for ${f.path}) does not exist`);
      copyFileSync(f.from, dest);
    } else throw new Error(`images: layer ${layer.name}: ${f.path} has neither from nor content`);
    chmodSync(dest, f.mode ?? 0o644);
  }
  for (const d of walkDirs(stage)) chmodSync(d, 0o755);
  const tar = join(dir, `${layer.name}.tar`);
  sh("tar", [
    "--create",
    `--file=${tar}`,
    `--directory=${stage}`,
    "--sort=name",
    `--mtime=@${EPOCH}`,
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--format=posix",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    ...readdirSync(stage).sort(),
  ]);
  return tar;
}

function* walkDirs(dir) {
  yield dir;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) yield* walkDirs(join(dir, e.name));
}

// ── one image ──

async function loadDefinition(name) {
  const file = join(IMAGES_DIR, name, "image.mjs");
  const known = [...IMAGE_NAMES, ...EXAMPLE_IMAGE_NAMES];
  if (!known.includes(name) || !existsSync(file))
    throw new Error(`images: unknown image "${name}" (known: ${known.join(", ")})`);
  return /** @type {ImageDefinition} */ ((await import(pathToFileURL(file).href)).default);
}

/** sha256 over the builder's own code, the definition, the base and every file's content. */
async function inputsHash(def, layers) {
  // the builder and the definition (containerd.mjs and the tests don't change what is built)
  const code = ["build.mjs", "trainer.mjs", join(def.name, "image.mjs")].map((f) => [
    f,
    sha256(readFileSync(join(IMAGES_DIR, f))),
  ]);
  const files = [];
  for (const l of layers)
    for (const f of l.files)
      files.push([
        l.name,
        f.path,
        f.mode ?? 0o644,
        f.content !== undefined ? sha256(f.content) : await sha256File(f.from),
      ]);
  return sha256(
    JSON.stringify({ code, base: baseKey(def.base), files, config: def.config, epoch: EPOCH }),
  );
}

/** Builds one image (or finds it in the cache). */
export async function buildImage(name, inputs = makeInputs()) {
  const def = await loadDefinition(name);
  const layers = await def.layers(inputs);
  const hash = await inputsHash(def, layers);
  const ref = `${REGISTRY}/${def.name}:${hash.slice(0, 12)}`;
  const tar = join(CACHE_DIR, `${hash}.tar`);
  const meta = join(CACHE_DIR, `${hash}.json`);
  if (existsSync(tar) && existsSync(meta)) {
    const now = new Date();
    utimesSync(meta, now, now); // in use: pruneOlder leaves it for a day
    return { ...JSON.parse(readFileSync(meta, "utf8")), tar, cached: true };
  }

  const base = debianBase(def.base);
  const work = mkdtempSync(join(tmpdir(), `lf-image-${name}-`));
  try {
    const layout = join(work, "oci");
    const image = `${layout}:${def.name}`;
    sh("umoci", ["init", "--layout", layout]);
    sh("umoci", ["new", "--image", image]);
    const history = (by) => ["--history.created", EPOCH_ISO, "--history.created_by", by];
    sh("umoci", [
      "raw",
      "add-layer",
      "--image",
      image,
      ...history(
        `mmdebstrap ${def.base.suite} minbase ${Object.keys(def.base.packages).join(" ")}`.trim(),
      ),
      base,
    ]);
    for (const l of layers)
      sh("umoci", [
        "raw",
        "add-layer",
        "--image",
        image,
        ...history(`loraforge images/build.mjs: ${l.name}`),
        layerTar(l, work),
      ]);
    const labels = {
      "org.opencontainers.image.title": `loraforge/${def.name}`,
      "org.opencontainers.image.description": def.description,
      "org.opencontainers.image.created": EPOCH_ISO,
      "dev.loraforge.inputs": hash,
      ...def.config.labels,
    };
    sh("umoci", [
      "config",
      "--image",
      image,
      "--no-history",
      "--created",
      EPOCH_ISO,
      "--author",
      "loraforge images/build.mjs",
      "--config.user",
      `${USER_ID}:${USER_ID}`,
      "--config.workingdir",
      "/tmp",
      ...def.config.entrypoint.flatMap((e) => ["--config.entrypoint", e]),
      ...Object.entries({
        PATH: "/usr/local/bin:/usr/bin:/bin",
        HOME: "/tmp",
        ...def.config.env,
      }).flatMap(([k, v]) => ["--config.env", `${k}=${v}`]),
      ...Object.entries(labels).flatMap(([k, v]) => ["--config.label", `${k}=${v}`]),
    ]);
    sh("umoci", ["gc", "--layout", layout]);

    const blob = (d) => join(layout, "blobs", "sha256", d.replace(/^sha256:/, ""));
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
    const digest = index.manifests[0].digest;
    const manifest = JSON.parse(readFileSync(blob(digest), "utf8"));
    const layerInfo = manifest.layers.map((l, i) => ({
      name: i === 0 ? "debian" : layers[i - 1].name,
      digest: l.digest,
      size: l.size,
    }));
    /** @type {BuiltImage} */
    const built = {
      name: def.name,
      ref,
      tar,
      digest,
      configDigest: manifest.config.digest,
      inputs: hash,
      size: layerInfo.reduce((s, l) => s + l.size, 0),
      layers: layerInfo,
      packages: basePackages(base),
    };
    atomicWrite(tar, (staging) =>
      sh("skopeo", ["copy", "--quiet", `oci:${image}`, `docker-archive:${staging}:${ref}`]),
    );
    atomicWrite(meta, (staging) => writeFileSync(staging, `${JSON.stringify(built, null, 2)}\n`));
    pruneOlder(def.name, hash);
    return built;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * A new build of an image removes the cached tars (hundreds of MB each) of its other inputs that
 * nothing built or used for a day. Not sooner: another checkout sharing the cache (a second
 * worktree, a test run in progress) may be about to import the one it just built.
 */
const PRUNE_AFTER_MS = 24 * 3600 * 1000;
function pruneOlder(name, keep) {
  for (const f of readdirSync(CACHE_DIR)) {
    const m = /^([0-9a-f]{64})\.json$/.exec(f);
    if (!m || m[1] === keep) continue;
    try {
      if (Date.now() - statSync(join(CACHE_DIR, f)).mtimeMs < PRUNE_AFTER_MS) continue;
    } catch {
      continue; // removed meanwhile
    }
    let other;
    try {
      other = JSON.parse(readFileSync(join(CACHE_DIR, f), "utf8"));
    } catch {
      continue; // another builder's half-read file: leave it
    }
    if (other.name !== name) continue;
    rmSync(join(CACHE_DIR, `${m[1]}.tar`), { force: true });
    rmSync(join(CACHE_DIR, f), { force: true });
  }
}

/**
 * The images, built or from the cache: what a node imports with `ctr -n k8s.io images import
 * <tar>` and a pod names as `image: <ref>` (imagePullPolicy: Never).
 * @param {string[]} [names]
 * @returns {Promise<BuiltImage[]>}
 */
export async function ensureImages(names = IMAGE_NAMES) {
  const inputs = makeInputs();
  const out = [];
  for (const n of names) out.push(await buildImage(n, inputs));
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    const names = process.argv.slice(2);
    for (const img of await ensureImages(names.length ? names : undefined)) {
      const mb = (img.size / 1e6).toFixed(1);
      console.log(
        `${img.name.padEnd(13)} ${img.ref}  ${img.digest}  ${mb} MB compressed${img.cached ? "  (cached)" : ""}\n  ${img.tar}`,
      );
    }
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  }
}
