import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  formatProblem,
  splitTrainVal,
  validateBytes,
  validateFile,
} from "../../src/dataset/index.ts";
import { prepareDataset } from "../../src/prepare/prepare.ts";
import { ASSETS, importStories260K, tempDir } from "../support/helpers.ts";

const rec = (instruction: unknown, output: unknown, input: unknown = "") =>
  JSON.stringify({ instruction, input, output });
const good = rec("Say hi.", "Hi!");
const goodPretty = `  {\n    "instruction": "Say hi.",\n    "input": "",\n    "output": "Hi!"\n  }`;

interface Case {
  name: string;
  file: string;
  content: string | Buffer;
  line: number;
  record?: number;
  field?: string;
  message: RegExp;
}

/** Malformed datasets: each must give an error naming its line (and record, field when there is one). */
const CASES: Case[] = [
  { name: "empty file", file: "a.json", content: "", line: 1, message: /the file is empty/ },
  {
    name: "only whitespace",
    file: "a.jsonl",
    content: "\n  \n\t\n",
    line: 1,
    message: /only whitespace/,
  },
  {
    name: "UTF-16 file",
    file: "a.json",
    content: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`[${good}]`, "utf16le")]),
    line: 1,
    message: /UTF-16/,
  },
  {
    name: "invalid UTF-8 on line 3",
    file: "a.jsonl",
    content: Buffer.concat([
      Buffer.from(`${good}\n${good}\n{"instruction": "caf`),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(`", "output": "x"}\n`),
    ]),
    line: 3,
    message: /invalid UTF-8 at byte \d+ \(0xc3\)/,
  },
  {
    name: "truncated UTF-8 sequence at the end",
    file: "a.jsonl",
    content: Buffer.concat([Buffer.from(`${good}\n`), Buffer.from([0xe2, 0x82])]),
    line: 2,
    message: /invalid UTF-8/,
  },
  {
    name: "JSONL: bad JSON on line 4",
    file: "a.jsonl",
    content: `${good}\n${good}\n\n{"instruction": "x", "output": "y",}\n${good}\n`,
    line: 4,
    record: 2,
    message: /invalid JSON: Expected double-quoted property name/,
  },
  {
    name: "JSONL: unterminated string",
    file: "a.jsonl",
    content: `${good}\n{"instruction": "x, "output": "y"}\n`,
    line: 2,
    record: 1,
    message: /invalid JSON/,
  },
  {
    name: "JSON: error inside a pretty-printed record points at its line",
    file: "a.json",
    content: `[\n${goodPretty},\n  {\n    "instruction": "x",\n    "input": "",\n    "output": "y",\n  }\n]\n`,
    line: 11,
    record: 1,
    message: /Expected double-quoted property name/,
  },
  {
    name: "JSON: missing comma between records",
    file: "a.json",
    content: `[\n${goodPretty}\n${goodPretty}\n]`,
    line: 7,
    record: 0,
    message: /expected ',' or '\]' after record 0/,
  },
  {
    name: "JSON: trailing comma",
    file: "a.json",
    content: `[\n${good},\n]`,
    line: 3,
    message: /trailing comma/,
  },
  {
    name: "JSON: unterminated array",
    file: "a.json",
    content: `[\n${good},\n${good}\n`,
    line: 4,
    message: /missing '\]'/,
  },
  {
    name: "JSON: text after the array",
    file: "a.json",
    content: `[${good}]\nextra`,
    line: 2,
    message: /after the closing/,
  },
  { name: "JSON: empty array", file: "a.json", content: "[]\n", line: 1, message: /no records/ },
  {
    name: "not JSON at all",
    file: "a.json",
    content: "instruction,output\nhi,hello\n",
    line: 1,
    message: /starts with 'i'/,
  },
  {
    name: "NaN is not JSON",
    file: "a.json",
    content: `[\n${good},\n{"instruction": "x", "output": NaN}\n]`,
    line: 3,
    record: 1,
    message: /invalid JSON/,
  },
  {
    name: "raw control character in a string",
    file: "a.json",
    content: `[\n${good},\n${good},\n{"instruction": "a\u0001b", "output": "y"}\n]`,
    line: 4,
    record: 2,
    message: /Bad control character/,
  },
  {
    name: "missing output",
    file: "a.jsonl",
    content: `${good}\n{"instruction": "x", "input": ""}\n`,
    line: 2,
    record: 1,
    field: "output",
    message: /is missing/,
  },
  {
    name: "missing instruction",
    file: "a.jsonl",
    content: `{"output": "x"}\n`,
    line: 1,
    record: 0,
    field: "instruction",
    message: /is missing/,
  },
  {
    name: "output is a number",
    file: "a.jsonl",
    content: `${good}\n${good}\n${rec("x", 42)}\n`,
    line: 3,
    record: 2,
    field: "output",
    message: /must be a string/,
  },
  {
    name: "instruction is null",
    file: "a.json",
    content: `[${good},\n${rec(null, "y")}]`,
    line: 2,
    record: 1,
    field: "instruction",
    message: /must be a string/,
  },
  {
    name: "input is a list",
    file: "a.jsonl",
    content: `${rec("x", "y", ["a"])}\n`,
    line: 1,
    record: 0,
    field: "input",
    message: /must be a string, null or absent/,
  },
  {
    name: "a record that is an array",
    file: "a.json",
    content: `[\n${good},\n["x", "y"]\n]`,
    line: 3,
    record: 1,
    message: /found an array/,
  },
  {
    name: "a record that is a string",
    file: "a.jsonl",
    content: `${good}\n"just text"\n`,
    line: 2,
    record: 1,
    message: /found string/,
  },
  {
    name: "a huge record",
    file: "a.jsonl",
    content: `${good}\n${rec("x", "y".repeat((1 << 20) + 10))}\n`,
    line: 2,
    record: 1,
    message: /over the limit of 1048576/,
  },
  {
    name: "every record empty",
    file: "a.jsonl",
    content: `${rec("x", "")}\n${rec("  ", "y")}\n`,
    line: 0,
    message: /no usable records/,
  },
];

describe("malformed datasets", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let modelDir: string;
  before(async () => {
    tmp = await tempDir();
    modelDir = join(tmp.dir, "model");
    await importStories260K(modelDir);
  });
  after(() => tmp.cleanup());

  test(`the table has at least 20 cases (${CASES.length})`, () => assert.ok(CASES.length >= 20));

  for (const c of CASES) {
    test(c.name, async () => {
      const bytes = typeof c.content === "string" ? Buffer.from(c.content) : c.content;
      const report = validateBytes(bytes, c.file);
      assert.equal(report.ok, false);
      const err = report.problems.find((p) => p.severity === "error");
      assert.ok(err, `no error among ${JSON.stringify(report.problems)}`);
      assert.match(err.message, c.message, formatProblem(err));
      if (c.line > 0) assert.equal(err.line, c.line, formatProblem(err));
      if (c.record !== undefined) assert.equal(err.record, c.record, formatProblem(err));
      if (c.field !== undefined) assert.equal(err.field, c.field, formatProblem(err));
      assert.equal(err.file, c.file);

      // prepare writes nothing for it
      const dataset = join(tmp.dir, c.file);
      await writeFile(dataset, bytes);
      const dataDir = join(tmp.dir, `out-${c.name.replace(/\W+/g, "-")}`);
      await assert.rejects(
        prepareDataset({
          datasetFile: dataset,
          modelDir,
          template: { name: "alpaca" },
          cutoffLen: 256,
          trainOnInputs: false,
          addEos: true,
          valSetSize: 10,
          seed: 42,
          dataDir,
        }),
        /./,
      );
      assert.equal(existsSync(dataDir), false, "prepare wrote something for an invalid dataset");
    });
  }
  test("prepare warns when the cutoff truncates most examples or leaves them nothing to train on", async () => {
    const dataset = join(tmp.dir, "ok.jsonl");
    await writeFile(
      dataset,
      `${good}\n${rec("Tell me a very long story about a dog.", "x ".repeat(100))}\n`,
    );
    const r = await prepareDataset({
      datasetFile: dataset,
      modelDir,
      template: { name: "alpaca" },
      cutoffLen: 32,
      trainOnInputs: false,
      addEos: true,
      valSetSize: 0,
      seed: 1,
      dataDir: join(tmp.dir, "short-cutoff"),
    });
    assert.equal(r.manifest.train.noTarget, 2);
    assert.ok(
      r.warnings.some((w) =>
        /2 of 2 examples \(100\.0%\) are longer than the cutoff of 32/.test(w.message),
      ),
    );
    assert.ok(r.warnings.some((w) => /2 examples have nothing to train on/.test(w.message)));
  });
});

describe("records that are usable with warnings", () => {
  test("empty output is rejected by index, the rest is kept", () => {
    const r = validateBytes(
      Buffer.from(`${good}\n${rec("x", " ")}\n${good.replace("hi", "ho")}\n`),
      "d.jsonl",
    );
    assert.equal(r.ok, true);
    assert.equal(r.stats.rejected, 1);
    assert.equal(r.stats.usable, 2);
    const w = r.problems.find((p) => p.field === "output");
    assert.equal(w?.record, 1);
    assert.equal(w?.line, 2);
    assert.equal(w?.severity, "warning");
    assert.equal(
      validateBytes(Buffer.from(`${good}\n${rec("x", " ")}\n`), "d.jsonl", { strict: true }).ok,
      false,
    );
  });

  test("unknown fields are warned about, null and absent input are no input", () => {
    const r = validateBytes(
      Buffer.from(
        `[{"instruction": "a", "output": "b", "history": []}, {"instruction": "c", "input": null, "output": "d"}]`,
      ),
      "d.json",
    );
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.problems.map((p) => [p.record, p.field, p.severity]),
      [[0, "history", "warning"]],
    );
    assert.deepEqual(
      r.records.map((x) => x.input),
      ["", ""],
    );
  });

  test("duplicates and train/validation overlap are counted", () => {
    const lines = Array.from({ length: 20 }, (_, i) => rec(`task ${i % 10}`, `answer ${i % 10}`));
    const r = validateBytes(Buffer.from(lines.join("\n")), "d.jsonl", {
      split: { valSetSize: 4, seed: 1 },
    });
    assert.equal(r.stats.duplicates, 10);
    assert.equal(r.stats.split?.val, 4);
    assert.ok((r.stats.split?.overlap ?? 0) > 0);
    assert.ok(r.problems.some((p) => /also appear in the training split/.test(p.message)));
  });
});

describe("the datasets in ../shared/assets pass", () => {
  const files = [
    ["alpaca-stanford-5000/alpaca_5000.json", 5000, 2],
    ["alpaca-gsm8k/gsm_8k_train.json", 7473, 0],
    ["alpaca-llamafactory/alpaca_en_demo.json", 999, 0],
    ["alpaca-llamafactory/alpaca_zh_demo.json", 1000, 0],
    ["alpaca-llamafactory/identity.json", 91, 0],
  ] as const;
  for (const [file, records, rejected] of files) {
    test(file, async () => {
      const r = await validateFile(join(ASSETS, file), { split: { valSetSize: 2000, seed: 42 } });
      assert.equal(r.ok, true, r.problems.map(formatProblem).join("\n"));
      assert.equal(r.stats.records, records);
      assert.equal(r.stats.rejected, rejected);
      assert.equal(r.problems.filter((p) => p.severity === "error").length, 0);
    });
  }
});

describe("seeded validation split", () => {
  const items = Array.from({ length: 100 }, (_, i) => i);
  test("same seed, same split; another seed, another split", () => {
    const a = splitTrainVal(items, 10, 42);
    assert.deepEqual(a, splitTrainVal(items, 10, 42));
    assert.notDeepEqual(a.val, splitTrainVal(items, 10, 43).val);
    assert.equal(a.val.length, 10);
    assert.deepEqual(
      [...a.train, ...a.val].sort((x, y) => x - y),
      items,
    );
  });
  test("capped at a fifth of the data; 0 disables it", () => {
    assert.equal(splitTrainVal(items, 2000, 1).val.length, 20);
    assert.equal(splitTrainVal(items, 0, 1).val.length, 0);
  });
});

test("the dataset module has no side effects on import (no output, no exit)", async () => {
  const mod = await import("../../src/dataset/index.ts");
  assert.equal(typeof mod.validate, "function");
  const src = (await readdir(join(import.meta.dirname, "..", "..", "src", "dataset"))).filter((f) =>
    f.endsWith(".ts"),
  );
  const { readFile } = await import("node:fs/promises");
  for (const f of src) {
    const text = await readFile(join(import.meta.dirname, "..", "..", "src", "dataset", f), "utf8");
    assert.doesNotMatch(text, /process\.exit|console\./, f);
  }
});

describe("byte-order marks and control characters", () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

  for (const [file, body] of [
    ["bom.json", `[\n${good},\n${rec("Say bye.", "Bye!")}\n]\n`],
    ["bom.jsonl", `${good}\n${rec("Say bye.", "Bye!")}\n`],
  ] as const) {
    test(`a UTF-8 BOM at the start of ${file} is skipped with a warning`, () => {
      const r = validateBytes(Buffer.concat([BOM, Buffer.from(body)]), file);
      assert.equal(r.ok, true, JSON.stringify(r.problems));
      assert.equal(r.stats.usable, 2);
      assert.equal(r.records[0]?.instruction, "Say hi.");
      assert.equal(r.records[1]?.line, file.endsWith(".jsonl") ? 2 : 3, "line numbers unchanged");
      assert.deepEqual(
        r.problems.map((p) => [p.severity, p.line]),
        [["warning", 1]],
      );
      assert.match(
        r.problems[0]?.message ?? "",
        /UTF-8 byte-order mark \(EF BB BF\); it was skipped/,
      );
      assert.equal(
        validateBytes(Buffer.concat([BOM, Buffer.from(body)]), file, { strict: true }).ok,
        false,
      );
    });
  }

  test("a BOM and nothing else is still an empty file", () => {
    const r = validateBytes(BOM, "a.json");
    assert.equal(r.ok, false);
    assert.ok(r.problems.some((p) => p.severity === "error" && /only whitespace/.test(p.message)));
  });

  // JSON refuses raw C0 characters in strings, but lets every one in escaped ("\u0000"); C1
  // characters (U+0080-U+009F) and DEL may also be written raw.
  const json = `[\n${good},\n{"instruction": "Say\\u0000hi.", "input": "", "output": "Hi!"},\n{"instruction": "Tab\\there.", "input": "a\\r\\nb", "output": "Line\\nbreak"},\n{"instruction": "x", "input": "\u0085", "output": "\\u001b[31mred\\u001b[0m \\u007f"}\n]\n`;
  const jsonl = `${good}\n{"instruction": "Say\\u0000hi.", "output": "Hi!"}\n{"instruction": "Tab\\there.", "input": "a\\r\\nb", "output": "Line\\nbreak"}\n{"instruction": "x", "input": "\u0085", "output": "\\u001b[31mred\\u001b[0m \\u007f"}\n`;

  for (const [file, text, lines] of [
    ["ctl.json", json, [3, 5]],
    ["ctl.jsonl", jsonl, [2, 4]],
  ] as const) {
    test(`NUL, ESC, DEL and C1 characters in ${file} are warned about by file, record and field; --strict refuses`, () => {
      const r = validateBytes(Buffer.from(text), file);
      assert.equal(r.ok, true, "a warning: the records stay usable");
      assert.equal(r.stats.usable, 4);
      const warnings = r.problems.filter((p) => /control character/.test(p.message));
      assert.deepEqual(
        warnings.map((p) => [p.file, p.line, p.record, p.field]),
        [
          [file, lines[0], 1, "instruction"],
          [file, lines[1], 3, "input"],
          [file, lines[1], 3, "output"],
        ],
        "tab, CR and LF are text, not warned about",
      );
      assert.match(
        warnings[0]?.message ?? "",
        /contains a control character, the first U\+0000 \(NUL\) at character 4/,
      );
      assert.match(warnings[1]?.message ?? "", /the first U\+0085 at character 1/);
      assert.match(
        warnings[2]?.message ?? "",
        /contains 3 control characters, the first U\+001B \(ESC\)/,
      );
      assert.equal(
        formatProblem(warnings[0] as (typeof warnings)[number]),
        `warning: ${file}:${lines[0]}: record 1, field instruction: ${warnings[0]?.message}`,
      );
      assert.equal(validateBytes(Buffer.from(text), file, { strict: true }).ok, false);
    });
  }
});
