import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { bashCompletion, zshCompletion } from "../../src/args/completion.ts";
import { defineCommand, flag, parseCommand } from "../../src/args/flags.ts";
import { closest, editDistance } from "../../src/args/suggest.ts";
import { DECLARATIONS } from "../../src/commands/help.ts";
import { UsageError } from "../../src/commands/output.ts";
import { main } from "../../src/main.ts";
import { REPO_ROOT, STORIES, tempDir } from "../support/helpers.ts";

function capture() {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    out: { info: (l: string) => lines.push(l), error: (l: string) => errors.push(l) },
    lines,
    errors,
    text: () => [...lines, ...errors].join("\n"),
  };
}

describe("did you mean", () => {
  test("edit distance counts a swap of neighbours as one edit", () => {
    assert.equal(editDistance("cutoff", "cutoff"), 0);
    assert.equal(editDistance("cutof", "cutoff"), 1);
    assert.equal(editDistance("trian", "train"), 1);
    assert.equal(editDistance("", "abc"), 3);
  });
  test("the nearest word when it is near enough, else nothing", () => {
    assert.equal(closest("valdate", ["validate", "prepare", "train"]), "validate");
    assert.equal(closest("learningRat", ["learningRate", "epochs"]), "learningRate");
    assert.equal(closest("temp", ["temperature", "top-k"]), "temperature");
    assert.equal(closest("frobnicate", ["validate", "prepare", "train"]), undefined);
  });
});

describe("flag declarations", () => {
  const cmd = defineCommand({
    name: "demo",
    summary: { usage: "demo", text: "a demo" },
    usage: "loraforge demo",
    description: "A demo.",
    flags: {
      cutoff: flag.int("cutoff", 1),
      "top-p": flag.number("nucleus", 0, 1, "P"),
      backend: flag.choice(["cpu", "cuda"], "backend"),
      volume: flag.list("CLAIM=DIR", "volumes"),
      strict: flag.bool("strict"),
    },
    epilogue: "Example:\n  loraforge demo",
  });
  const usage = (args: string[]) => {
    try {
      parseCommand(cmd, args);
    } catch (e) {
      assert.ok(e instanceof UsageError, String(e));
      return e.message;
    }
    assert.fail(`${args.join(" ")} was accepted`);
  };
  test("values come out typed and checked by zod", () => {
    const p = parseCommand(cmd, [
      "x",
      "--cutoff",
      "12",
      "--top-p=0.5",
      "--backend",
      "cuda",
      "--volume",
      "a=b",
      "--volume",
      "c=d",
      "--strict",
    ]);
    assert.deepEqual(p.values, {
      cutoff: 12,
      "top-p": 0.5,
      backend: "cuda",
      volume: ["a=b", "c=d"],
      strict: true,
    });
    assert.deepEqual(p.positionals, ["x"]);
    assert.deepEqual([...p.given].sort(), ["backend", "cutoff", "strict", "top-p", "volume"]);
  });
  test("each mistake is named with the flag", () => {
    assert.equal(usage(["--cutof", "3"]), "unknown option --cutof; did you mean --cutoff?");
    assert.equal(usage(["--zzz"]), "unknown option --zzz");
    assert.equal(usage(["--cutoff", "abc"]), '--cutoff must be a whole number, got "abc"');
    assert.equal(usage(["--cutoff", "0"]), '--cutoff must be at least 1, got "0"');
    assert.equal(usage(["--top-p", "2"]), '--top-p must be a number from 0 to 1, got "2"');
    assert.equal(usage(["--backend", "tpu"]), '--backend must be cpu or cuda, got "tpu"');
    assert.equal(usage(["--cutoff"]), "--cutoff needs a value: --cutoff N");
    assert.equal(usage(["--strict=yes"]), "--strict takes no value");
    assert.equal(usage(["--top-p", "-1"]), '--top-p must be a number from 0 to 1, got "-1"');
    assert.equal(usage(["--cutoff", "--strict"]), "--cutoff needs a value: --cutoff N");
  });
  test("every declared flag is in its command's help, and each help has an example", async () => {
    for (const c of DECLARATIONS) {
      const h = capture();
      assert.equal(await main([c.name, "--help"], h.out), 0);
      for (const [name, f] of Object.entries(c.flags))
        assert.equal(h.text().includes(`--${name}`), !f.hidden, `${c.name} --${name}`);
      assert.match(h.text(), /Example/, c.name);
    }
  });
});

describe("the five mistakes of issue 16", () => {
  test("a missing dataset names the path; no '0 records' line", async () => {
    const c = capture();
    assert.equal(await main(["validate", "/nonexistent/data.json"], c.out), 3);
    assert.equal(c.text(), "dataset /nonexistent/data.json: no such file");
  });
  test("a missing model directory names the claim and the --volume flag that maps it", async () => {
    const spec = join(REPO_ROOT, "examples", "stories260k-demo.yaml");
    const given = capture();
    assert.equal(await main(["train", spec, "--volume", "models=/nonexistent"], given.out), 3);
    assert.equal(
      given.text(),
      'spec.baseModel.source: model directory /nonexistent/stories260K: does not exist; baseModel.source.pvc.claimName "models" is --volume models=/nonexistent',
    );
    const tmp = await tempDir();
    try {
      const far = join(tmp.dir, "s.yaml");
      await writeFile(far, await readFile(spec, "utf8"));
      const none = capture();
      assert.equal(await main(["eval", far], none.out), 3);
      assert.match(
        none.text(),
        /model directory \S+stories260K: does not exist; baseModel\.source\.pvc\.claimName is "models" and no --volume models=DIR was given/,
      );
      const v = capture();
      assert.equal(await main(["validate", STORIES, "--model", tmp.dir], v.out), 3);
      assert.match(
        v.text(),
        /model directory \S+: has no config\.json; a Hugging Face model directory/,
      );
    } finally {
      await tmp.cleanup();
    }
  });
  test("export, chat and eval name a missing model or adapter directory and say what belongs there", async () => {
    const tmp = await tempDir();
    try {
      const model = join(tmp.dir, "model");
      await mkdir(model);
      await writeFile(join(model, "config.json"), "{}");
      const run = async (args: string[]) => {
        const c = capture();
        assert.equal(await main(args, c.out), 3, args.join(" "));
        return c.text();
      };
      const noModel =
        /^model directory \/nonexistent\/m: does not exist; a Hugging Face model directory with config\.json/;
      assert.match(await run(["export", "onnx", "/nonexistent/m"]), noModel);
      assert.match(await run(["chat", "/nonexistent/m"]), noModel);
      const noAdapter =
        /^adapter directory \/nonexistent\/a: does not exist; a PEFT LoRA adapter directory with adapter_config\.json/;
      assert.match(await run(["export", "onnx", model, "--adapter", "/nonexistent/a"]), noAdapter);
      assert.match(await run(["chat", model, "--adapter", "/nonexistent/a"]), noAdapter);
      assert.match(
        await run([
          "eval",
          "--model",
          model,
          "--adapter",
          "/nonexistent/a",
          "--data",
          STORIES,
          "--out",
          tmp.dir,
        ]),
        noAdapter,
      );
      assert.match(
        await run(["chat", model, "--adapter", model]),
        /^adapter directory \S+\/model: has no adapter_config\.json/,
      );
      assert.equal(
        await run(["chat", model, "--onnx", "/nonexistent/model.onnx"]),
        "--onnx model /nonexistent/model.onnx: no such file",
      );
      // A spec's run without --adapter evaluates <out>/adapter, which train writes.
      const spec = join(tmp.dir, "s.yaml");
      await writeFile(
        spec,
        await readFile(join(REPO_ROOT, "examples", "stories260k-demo.yaml"), "utf8"),
      );
      await rename(model, join(tmp.dir, "stories260K")); // claims are looked up beside the spec
      await mkdir(join(tmp.dir, "stories-instruct"));
      await writeFile(join(tmp.dir, "stories-instruct", "stories.jsonl"), await readFile(STORIES));
      assert.match(
        await run(["eval", spec, "--out", join(tmp.dir, "run")]),
        /^adapter directory \S+\/run\/adapter: does not exist; the run's chosen adapter is not there yet: run loraforge train \S+s\.yaml first, or give --adapter DIR$/,
      );
    } finally {
      await tmp.cleanup();
    }
  });
  test("an unknown flag is named with the nearest known one", async () => {
    const c = capture();
    assert.equal(await main(["validate", STORIES, "--cutof", "12"], c.out), 2);
    assert.match(c.text(), /^loraforge validate: unknown option --cutof; did you mean --cutoff\?/);
  });
  test("--cutoff abc is an error; --cutoff without --model is refused with the reason", async () => {
    const bad = capture();
    assert.equal(await main(["validate", STORIES, "--cutoff", "abc"], bad.out), 2);
    assert.match(bad.text(), /--cutoff must be a whole number, got "abc"/);
    const idle = capture();
    assert.equal(await main(["validate", STORIES, "--cutoff", "12"], idle.out), 2);
    assert.match(idle.text(), /--cutoff has no effect without --model/);
    const sampling = capture();
    assert.equal(
      await main(
        ["eval", "--model", "/m", "--data", "/d", "--out", "/o", "--top-k", "5", "--volume", "a=b"],
        sampling.out,
      ),
      2,
    );
    assert.match(sampling.text(), /--volume has no effect without a spec file/);
    const split = capture();
    assert.equal(
      await main(
        ["eval", "--model", "/m", "--eval-file", "/d", "--out", "/o", "--seed", "3"],
        split.out,
      ),
      2,
    );
    assert.match(split.text(), /--seed has no effect with --eval-file/);
    const tmp = await tempDir();
    try {
      await writeFile(join(tmp.dir, "config.json"), "{}");
      const greedy = capture();
      const common = ["eval", "--model", tmp.dir, "--data", STORIES, "--out", tmp.dir];
      assert.equal(await main([...common, "--top-k", "5", "--top-p", "0.9"], greedy.out), 2);
      assert.match(greedy.text(), /--top-k, --top-p have no effect at temperature 0/);
    } finally {
      await tmp.cleanup();
    }
  });
  test("a typo in a spec key: the YAML line and the nearest key", async () => {
    const tmp = await tempDir();
    try {
      const spec = join(tmp.dir, "s.yaml");
      const text = (await readFile(join(REPO_ROOT, "examples", "stories260k-demo.yaml"), "utf8"))
        .replace("    learningRate:", "    learningRat:")
        .replace("  lora:", "  lroa:");
      await writeFile(spec, text);
      const lines = text.split("\n");
      const lineOf = (s: string) => lines.findIndex((l) => l.startsWith(s)) + 1;
      const c = capture();
      assert.equal(await main(["train", spec], c.out), 3);
      assert.match(
        c.text(),
        new RegExp(
          `s\\.yaml:${lineOf("    learningRat:")}: spec\\.training\\.learningRat: unknown key; did you mean learningRate\\?`,
        ),
      );
      assert.match(
        c.text(),
        new RegExp(`s\\.yaml:${lineOf("  lroa:")}: spec\\.lroa: unknown key; did you mean lora\\?`),
      );
      // a wrong value (not a key) gets its line too
      await writeFile(
        spec,
        text
          .replace("lroa:", "lora:")
          .replace("learningRat:", "learningRate:")
          .replace("epochs: 3", "epochs: three"),
      );
      const v = capture();
      assert.equal(await main(["train", spec], v.out), 3);
      assert.match(
        v.text(),
        new RegExp(`s\\.yaml:${lineOf("    epochs:")}: spec\\.training\\.epochs: `),
      );
    } finally {
      await tmp.cleanup();
    }
  });
  test("a mistyped command gets the nearest command", async () => {
    const c = capture();
    assert.equal(await main(["trian", "spec.yaml"], c.out), 2);
    assert.match(c.text(), /unknown command "trian"; did you mean train\?/);
    const h = capture();
    assert.equal(await main(["help", "evl"], h.out), 2);
    assert.match(h.text(), /no command "evl"; did you mean eval\?/);
  });
});

describe("--version and shell completion", () => {
  const bash = (script: string, words: string[]) => {
    const r = spawnSync(
      "bash",
      [
        "-c",
        `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _loraforge; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p loraforge >&2`,
        "bash",
        script,
        ...words,
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /complete .*-F _loraforge loraforge/);
    return r.stdout.split("\n").filter(Boolean);
  };

  test("bash: commands, flags, choices and sub-formats come from the declarations", async () => {
    const tmp = await tempDir();
    try {
      const c = capture();
      assert.equal(await main(["completion", "bash"], c.out), 0);
      const script = join(tmp.dir, "loraforge.bash");
      await writeFile(script, c.lines.join("\n"));
      assert.deepEqual(bash(script, ["loraforge", "va"]), ["validate"]);
      assert.deepEqual(bash(script, ["loraforge", "validate", "--cut"]), ["--cutoff"]);
      assert.deepEqual(bash(script, ["loraforge", "train", "s.yaml", "--backend", ""]), [
        "auto",
        "cpu",
        "cuda",
      ]);
      assert.deepEqual(bash(script, ["loraforge", "export", ""]), ["onnx"]);
      assert.deepEqual(bash(script, ["loraforge", "completion", ""]), ["bash", "zsh"]);
      assert.deepEqual(bash(script, ["loraforge", "eval", "--json"]), ["--json"]);
      // every visible flag of every command completes
      for (const d of DECLARATIONS)
        for (const [name, f] of Object.entries(d.flags))
          if (!f.hidden)
            assert.ok(
              bash(script, ["loraforge", d.name, `--${name}`]).includes(`--${name}`),
              `${d.name} --${name}`,
            );
    } finally {
      await tmp.cleanup();
    }
  });

  test("zsh: an _arguments spec per flag, with the choices", () => {
    const z = zshCompletion(DECLARATIONS);
    assert.match(z, /^#compdef loraforge\n/);
    assert.ok(
      z.includes(
        "'--backend[trainer backend (default auto, the GPU when the core has cuda and one is present, else cpu)]:auto|cpu|cuda:(auto cpu cuda)'",
      ),
      z,
    );
    assert.ok(z.includes("'*--volume["), "repeatable flags are starred");
    assert.ok(z.includes("'1:format:(onnx)'"));
    for (const d of DECLARATIONS)
      for (const [name, f] of Object.entries(d.flags))
        if (!f.hidden) assert.ok(z.includes(`--${name}[`), `${d.name} --${name}`);
    assert.equal(bashCompletion(DECLARATIONS).includes("external-data-threshold"), false);
  });
});
