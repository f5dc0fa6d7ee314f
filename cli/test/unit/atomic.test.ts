// Atomic, durable writes of files and directories (cli/src/util/atomic.ts): the order of the
// file-system calls (fsync the data, rename over the target, fsync the folder; never remove
// the target first). The reader thread that must never see a missing or mixed version while
// the writer replaces it is in test/integration/atomic.test.ts.

import assert from "node:assert/strict";
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type AtomicFs,
  removeDir,
  replaceDirAtomic,
  writeFileAtomic,
} from "../../src/util/atomic.ts";
import { tempDir } from "../support/helpers.ts";

/** The real file system, with every call (and every fsync of an opened handle) logged. */
function recordingFs(dir: string): { fs: AtomicFs; calls: string[] } {
  const calls: string[] = [];
  const rel = (p: unknown) => String(p).replace(`${dir}/`, "").replace(dir, ".");
  const fs: AtomicFs = {
    open: (async (path: string, flags?: string) => {
      const fh = await fsp.open(path, flags);
      calls.push(`open ${rel(path)} ${flags}`);
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        calls.push(`fsync ${rel(path)}`);
        return sync();
      };
      return fh;
    }) as AtomicFs["open"],
    rename: async (from, to) => {
      calls.push(`rename ${rel(from)} -> ${rel(to)}`);
      return fsp.rename(from, to);
    },
    rm: async (path, options) => {
      calls.push(`rm ${rel(path)}`);
      return fsp.rm(path, options);
    },
    mkdir: (async (path: string) => {
      calls.push(`mkdir ${rel(path)}`);
      return fsp.mkdir(path);
    }) as AtomicFs["mkdir"],
    symlink: async (to, path) => {
      calls.push(`symlink ${rel(path)} -> ${String(to)}`);
      return fsp.symlink(to, path);
    },
    readlink: fsp.readlink as AtomicFs["readlink"],
    lstat: fsp.lstat as AtomicFs["lstat"],
    readdir: fsp.readdir as AtomicFs["readdir"],
  };
  return { fs, calls };
}

const indexOf = (calls: string[], re: RegExp) => calls.findIndex((c) => re.test(c));

describe("atomic writes", () => {
  test("a file: fsync before the rename over the target, the folder fsynced after, nothing removed", async () => {
    const tmp = await tempDir();
    const path = join(tmp.dir, "summary.json");
    writeFileSync(path, "old");
    const { fs, calls } = recordingFs(tmp.dir);
    await writeFileAtomic(path, "new", fs);
    assert.equal(readFileSync(path, "utf8"), "new");
    const open = indexOf(calls, /^open \.summary\.json\.[0-9a-f]+\.tmp wx$/);
    const syncFile = indexOf(calls, /^fsync \.summary\.json\.[0-9a-f]+\.tmp$/);
    const rename = indexOf(calls, /^rename \.summary\.json\.[0-9a-f]+\.tmp -> summary\.json$/);
    const syncDir = indexOf(calls, /^fsync \.$/);
    assert.ok(
      open >= 0 && open < syncFile && syncFile < rename && rename < syncDir,
      calls.join("\n"),
    );
    assert.equal(indexOf(calls, /^rm /), -1, "the target is replaced by rename, never removed");
    assert.deepEqual(readdirSync(tmp.dir), ["summary.json"], "no temporary file is left");
    await tmp.cleanup();
  });

  test("a file: a failed rename keeps the old content and leaves no temporary file", async () => {
    const tmp = await tempDir();
    const path = join(tmp.dir, "selection.json");
    writeFileSync(path, "old");
    const { fs } = recordingFs(tmp.dir);
    const failing: AtomicFs = {
      ...fs,
      rename: async () => {
        throw Object.assign(new Error("EIO: i/o error, rename"), { code: "EIO" });
      },
    };
    await assert.rejects(writeFileAtomic(path, "new", failing), /EIO/);
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(readdirSync(tmp.dir), ["selection.json"]);
    await tmp.cleanup();
  });

  test("a directory: content fsynced, a link renamed over the target, the folder fsynced; the old version removed only after", async () => {
    const tmp = await tempDir();
    const target = join(tmp.dir, "adapter");
    const fill = (tag: string) => async (dir: string) => {
      writeFileSync(join(dir, "adapter_model.safetensors"), `weights ${tag}`);
      writeFileSync(join(dir, "adapter_config.json"), `config ${tag}`);
    };
    await replaceDirAtomic(target, fill("v1"));
    const first = readlinkSync(target);
    const { fs, calls } = recordingFs(tmp.dir);
    await replaceDirAtomic(target, fill("v2"), fs);
    assert.equal(readFileSync(join(target, "adapter_model.safetensors"), "utf8"), "weights v2");
    assert.ok(lstatSync(target).isSymbolicLink());
    const content = readlinkSync(target);
    assert.match(content, /^\.adapter-[0-9a-f]{12}$/);
    assert.equal(statSync(target).mode & 0o777, 0o777 & ~process.umask(), "the umask's mode");
    const syncFiles = indexOf(calls, new RegExp(`^fsync ${content}/adapter_config\\.json$`));
    const syncContent = indexOf(calls, new RegExp(`^fsync ${content}$`));
    const swap = indexOf(calls, /^rename \.adapter\.[0-9a-f]+\.link -> adapter$/);
    const syncParent = indexOf(calls, /^fsync \.$/);
    assert.ok(
      syncFiles >= 0 && syncFiles < syncContent && syncContent < swap && swap < syncParent,
      calls.join("\n"),
    );
    assert.equal(indexOf(calls, /^rm /), -1, "the target is never removed");
    assert.deepEqual(
      readdirSync(tmp.dir).sort(),
      [first, content, "adapter"].sort(),
      "the previous version stays for readers that followed the old link",
    );
    await replaceDirAtomic(target, fill("v3"), fs);
    assert.ok(indexOf(calls, new RegExp(`^rm ${first}$`)) > swap, "then it goes");
    assert.deepEqual(
      readdirSync(tmp.dir).sort(),
      [content, readlinkSync(target), "adapter"].sort(),
    );
    await removeDir(target);
    assert.deepEqual(readdirSync(tmp.dir), []);
    await tmp.cleanup();
  });

  test("a directory written before as a real one is adopted; crash leftovers are cleaned", async () => {
    const tmp = await tempDir();
    const target = join(tmp.dir, "adapter");
    mkdirSync(target);
    writeFileSync(join(target, "adapter_model.safetensors"), "legacy");
    mkdirSync(join(tmp.dir, ".adapter.tmp")); // the old code's staging folder, left by a crash
    mkdirSync(join(tmp.dir, ".adapter-crashed"));
    await replaceDirAtomic(target, async (dir) => {
      writeFileSync(join(dir, "adapter_model.safetensors"), "new");
    });
    assert.equal(readFileSync(join(target, "adapter_model.safetensors"), "utf8"), "new");
    assert.deepEqual(readdirSync(tmp.dir).sort(), [readlinkSync(target), "adapter"].sort());
    await tmp.cleanup();
  });
});
