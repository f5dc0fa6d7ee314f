// The stress half of the atomic-write tests: 150 fsynced directory replacements against a
// reader thread that spins on the files (seconds of real disk and a busy core; not a unit test).

import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { replaceDirAtomic } from "../../src/util/atomic.ts";
import { tempDir } from "../support/helpers.ts";

describe("atomic writes", () => {
  test("a reader in another thread never sees the directory missing, partial or mixed", async () => {
    const tmp = await tempDir();
    const target = join(tmp.dir, "adapter");
    const write = (n: number) => async (dir: string) => {
      // Big enough that a copy takes a while; both files name the same version.
      writeFileSync(join(dir, "adapter_model.safetensors"), `${n}\n${"w".repeat(256 * 1024)}`);
      writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ version: n }));
    };
    await replaceDirAtomic(target, write(0));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const reader = new Worker(
      `
      const { workerData, parentPort } = require("node:worker_threads");
      const { readFileSync } = require("node:fs");
      const { join } = require("node:path");
      const stop = new Int32Array(workerData.stop);
      let reads = 0;
      const problems = [];
      while (Atomics.load(stop, 0) === 0 && problems.length < 5) {
        try {
          const config = JSON.parse(readFileSync(join(workerData.target, "adapter_config.json"), "utf8"));
          const weights = readFileSync(join(workerData.target, "adapter_model.safetensors"), "utf8");
          const version = Number(weights.slice(0, weights.indexOf("\\n")));
          // The weights may be newer than the config read just before, never older or cut.
          if (weights.length !== String(version).length + 1 + 256 * 1024 || version < config.version)
            problems.push("mixed or partial: config " + config.version + ", weights " + version);
          reads++;
        } catch (e) {
          problems.push(e.code || e.message);
        }
      }
      parentPort.postMessage({ reads, problems });
      `,
      { eval: true, workerData: { stop: stop.buffer, target } },
    );
    const result = new Promise<{ reads: number; problems: string[] }>((resolve, reject) => {
      reader.once("message", resolve);
      reader.once("error", reject);
    });
    for (let n = 1; n <= 150; n++) await replaceDirAtomic(target, write(n));
    Atomics.store(stop, 0, 1);
    const { reads, problems } = await result;
    assert.deepEqual(problems, [], `${reads} reads`);
    assert.ok(reads > 0);
    assert.ok(existsSync(join(target, "adapter_config.json")));
    await tmp.cleanup();
  });
});
