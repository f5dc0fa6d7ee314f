import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { main } from "../../src/main.ts";
import { ASSETS, CLI_ROOT, cliBin, tempDir } from "../support/helpers.ts";

function capture() {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    out: { info: (l: string) => lines.push(l), error: (l: string) => errors.push(l) },
    lines,
    errors,
  };
}

describe("loraforge command line", () => {
  test("--help lists every command; each command has its own help", async () => {
    const c = capture();
    assert.equal(await main(["--help"], c.out), 0);
    for (const cmd of ["validate", "prepare", "train", "import llama2c", "job --spec"])
      assert.ok(c.lines.join("\n").includes(cmd), cmd);
    for (const cmd of ["validate", "prepare", "train", "import", "job"]) {
      const h = capture();
      assert.equal(await main([cmd, "--help"], h.out), 0);
      assert.match(h.lines.join("\n"), /Example:/, `${cmd} --help has an example`);
    }
  });

  test("usage errors exit 2 and point to the help", async () => {
    for (const argv of [
      ["frobnicate"],
      ["validate"],
      ["train", "a.yaml", "--backend", "tpu"],
      ["validate", "x.json", "--seed", "abc"],
    ]) {
      const c = capture();
      assert.equal(await main(argv, c.out), 2, argv.join(" "));
    }
  });

  test("validate: a NUL in a field is a warning naming file, record and field; --strict refuses the file", async () => {
    const tmp = await tempDir();
    const file = join(tmp.dir, "nul.jsonl");
    await writeFile(
      file,
      '{"instruction": "Say hi.", "output": "Hi!"}\n{"instruction": "Say\\u0000bye.", "output": "Bye!"}\n',
    );
    const lax = capture();
    assert.equal(await main(["validate", file], lax.out), 0);
    assert.match(
      [...lax.lines, ...lax.errors].join("\n"),
      /warning: .*nul\.jsonl:2: record 1, field instruction: contains a control character, the first U\+0000 \(NUL\)/,
    );
    const strict = capture();
    assert.equal(await main(["validate", file, "--strict"], strict.out), 3);
    await tmp.cleanup();
  });

  test("validate: 0 for a good dataset, 3 with the problem's line for a bad one", async () => {
    const ok = capture();
    assert.equal(
      await main(["validate", join(ASSETS, "alpaca-llamafactory", "identity.json")], ok.out),
      0,
    );
    assert.match(ok.lines.join("\n"), /91 records, 91 usable/);
    const tmp = await tempDir();
    try {
      const bad = join(tmp.dir, "bad.jsonl");
      await writeFile(bad, '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n');
      const c = capture();
      assert.equal(await main(["validate", bad], c.out), 3);
      assert.match(c.errors.join("\n"), /bad\.jsonl:2: record 1, field output: is missing/);
    } finally {
      await tmp.cleanup();
    }
  });

  test("a spec with a non-local source is refused naming the field", async () => {
    const tmp = await tempDir();
    try {
      const spec = join(tmp.dir, "s.yaml");
      await writeFile(
        spec,
        "apiVersion: loraforge.dev/v1alpha1\nkind: LoraFineTune\nmetadata: {name: s}\nspec:\n  baseModel: {source: {uri: 'hf://meta-llama/Llama-2-7b-hf'}}\n  dataset: {source: {pvc: {claimName: d, path: x.json}}}\n  output: {pvc: {claimName: r, path: o}}\n",
      );
      const c = capture();
      assert.equal(await main(["train", spec], c.out), 3);
      assert.match(
        c.errors.join("\n"),
        /spec\.baseModel\.source\.uri: a local run reads files only/,
      );
    } finally {
      await tmp.cleanup();
    }
  });

  test("bin/loraforge.mjs runs the bundle, which needs no TypeScript loader", async () => {
    const bin = await cliBin();
    const bundled = readFileSync(join(CLI_ROOT, "dist", "loraforge.mjs"), "utf8");
    assert.doesNotMatch(bundled, /from "tsx|"tsx\/esm/);
    const r = spawnSync(process.execPath, [bin, "help", "train"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /loraforge train <spec.yaml>/);
  });
});
