// Files and directories that appear whole or not at all, and stay after a crash or power loss.
//
// A file: written to a temporary name in the same folder (so the rename cannot cross file
// systems), fsynced, renamed over the target — rename(2) replaces it atomically, so a reader
// sees the old or the new file and never a missing one — then the folder is fsynced so the
// rename itself is on disk.
//
// A directory cannot be renamed over a non-empty one (POSIX has no atomic exchange, and Node
// no renameat2). So `<name>` is a symbolic link to a sibling `.<name>-<random>` directory
// holding the content: the new content is filled and fsynced in a fresh sibling, a new link to
// it is made under a temporary name, and that link is renamed over `<name>`. Readers that
// open `<name>/file` follow the link and see one version or the other, whole. One writer per
// folder at a time (a run's output directory has one).

import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The file-system calls used here; tests pass a recording wrapper to check their order. */
export type AtomicFs = Pick<
  typeof fsp,
  "open" | "rename" | "rm" | "mkdir" | "symlink" | "readlink" | "lstat" | "readdir"
>;

const tmpSuffix = () => randomBytes(6).toString("hex");

/** fsync of a directory: makes the creations, renames and removals in it durable. */
export async function syncDir(dir: string, fs: AtomicFs = fsp): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes a file whole or not at all: temporary name beside it, fsync, rename over, fsync folder. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  fs: AtomicFs = fsp,
): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${tmpSuffix()}.tmp`);
  // "wx": never follow or reuse something already at the temporary name.
  const fh = await fs.open(tmp, "wx");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dirname(path), fs);
}

/** fsyncs every regular file of a directory (one level), then the directory itself. */
async function syncTree(dir: string, fs: AtomicFs): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const fh = await fs.open(join(dir, entry.name), "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  await syncDir(dir, fs);
}

/** The sibling directory `<name>` links to, when `<name>` is such a link. */
async function linkedContent(target: string, fs: AtomicFs): Promise<string | undefined> {
  const st = await fs.lstat(target).catch(() => undefined);
  if (!st?.isSymbolicLink()) return undefined;
  const to = await fs.readlink(target);
  // Only a sibling this module made is ours to remove.
  return to.startsWith(`.${basename(target)}-`) && !to.includes("/")
    ? join(dirname(target), to)
    : undefined;
}

/**
 * Replaces directory `target` with the content `fill` writes into the directory it is given:
 * at every moment `target` is the whole old content or the whole new one. Returns `target`.
 */
export async function replaceDirAtomic(
  target: string,
  fill: (dir: string) => Promise<void>,
  fs: AtomicFs = fsp,
): Promise<string> {
  const parent = dirname(target);
  const name = basename(target);
  // mkdir, not mkdtemp: the content keeps the umask's permissions (mkdtemp makes it 0700),
  // and fails rather than reuse a name that exists.
  const content = join(parent, `.${name}-${tmpSuffix()}`);
  await fs.mkdir(content);
  const link = join(parent, `.${name}.${tmpSuffix()}.link`);
  let previous: string | undefined;
  try {
    await fill(content);
    await syncTree(content, fs);
    await fs.symlink(basename(content), link);
    previous = await linkedContent(target, fs);
    const st = await fs.lstat(target).catch(() => undefined);
    if (st?.isDirectory()) {
      // A real directory (written before this layout) cannot be swapped for a link in one
      // step: it is moved aside first, the one time this layout is adopted.
      await fs.rename(target, join(parent, `.${name}-${tmpSuffix()}.old`));
    }
    await fs.rename(link, target);
  } catch (e) {
    await fs.rm(link, { force: true });
    await fs.rm(content, { recursive: true, force: true });
    throw e;
  }
  // From here the target is the new content: a failure leaves it so.
  await syncDir(parent, fs);
  // The previous version stays until the next replacement: a reader that followed the old
  // link a moment ago still finds its files. Older versions, crash leftovers and a
  // directory moved aside go.
  const keep = new Set([basename(content), ...(previous ? [basename(previous)] : [])]);
  for (const entry of await fs.readdir(parent)) {
    if (!keep.has(entry) && (entry.startsWith(`.${name}-`) || entry.startsWith(`.${name}.`)))
      await fs.rm(join(parent, entry), { recursive: true, force: true });
  }
  return target;
}

/** Removes a directory written by replaceDirAtomic: the link and every version beside it. */
export async function removeDir(target: string, fs: AtomicFs = fsp): Promise<void> {
  const parent = dirname(target);
  const name = basename(target);
  await fs.rm(target, { recursive: true, force: true });
  const entries = await fs.readdir(parent).catch(() => [] as string[]);
  for (const entry of entries) {
    if (entry.startsWith(`.${name}-`) || entry.startsWith(`.${name}.`))
      await fs.rm(join(parent, entry), { recursive: true, force: true });
  }
}
