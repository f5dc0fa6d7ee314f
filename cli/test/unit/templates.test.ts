import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ALPACA,
  BUILTIN_TEMPLATES,
  CompiledTemplate,
  parseTemplateFile,
  TemplateError,
} from "../../src/prompt/templates.ts";

describe("prompt templates", () => {
  const alpaca = CompiledTemplate.compile(ALPACA);
  test("alpaca with input: alpaca-lora's exact text, response appended", () => {
    assert.equal(
      alpaca.render("Add the numbers.", "2 and 3", "5"),
      "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n5",
    );
  });
  test("alpaca without input (empty input means none, as `if input:` in Python)", () => {
    assert.equal(
      alpaca.render("Say hi.", ""),
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n",
    );
    assert.equal(ALPACA.response_split, "### Response:");
  });
  test("alpaca_short", () => {
    const t = CompiledTemplate.compile(BUILTIN_TEMPLATES.alpaca_short);
    assert.equal(t.render("Q", "", "A"), "### Instruction:\nQ\n\n### Response:\nA");
    assert.equal(t.render("Q", "I"), "### Instruction:\nQ\n\n### Input:\nI\n\n### Response:\n");
  });
  test("record text is inserted once, never re-expanded (like str.format)", () => {
    assert.ok(alpaca.render("use {input} and {{x}}", "").includes("use {input} and {{x}}"));
  });
  test("a custom template file, with literal braces", () => {
    const t = parseTemplateFile(
      JSON.stringify({
        description: "de",
        prompt_input: "Aufgabe: {instruction}\nEingabe: {input}\n{{json}}\nAntwort: ",
        prompt_no_input: "Aufgabe: {instruction}\nAntwort: ",
        response_split: "Antwort:",
      }),
      "de.json",
    );
    assert.equal(t.render("a", "b", "c"), "Aufgabe: a\nEingabe: b\n{json}\nAntwort: c");
  });
  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      "unknown placeholder",
      {
        prompt_input: "{instruction} {input} {output}",
        prompt_no_input: "{instruction}",
        response_split: "x",
      },
      /unknown placeholder \{output\}/,
    ],
    [
      "no {input} in prompt_input",
      { prompt_input: "{instruction}", prompt_no_input: "{instruction}", response_split: "x" },
      /has no \{input\}/,
    ],
    [
      "missing response_split",
      { prompt_input: "{instruction}{input}", prompt_no_input: "{instruction}" },
      /response_split/,
    ],
    [
      "unknown key",
      {
        prompt_input: "{instruction}{input}",
        prompt_no_input: "{instruction}",
        response_split: "x",
        extra: 1,
      },
      /extra/,
    ],
    [
      "single }",
      {
        prompt_input: "{instruction}{input} }",
        prompt_no_input: "{instruction}",
        response_split: "x",
      },
      /single '\}'/,
    ],
  ];
  for (const [name, json, re] of bad) {
    test(`a bad custom template is refused: ${name}`, () => {
      assert.throws(
        () => parseTemplateFile(JSON.stringify(json), "t.json"),
        (e: unknown) =>
          e instanceof TemplateError && re.test(e.message + JSON.stringify(e.problems)),
      );
    });
  }
  test("a template file that is not JSON names the file", () => {
    assert.throws(() => parseTemplateFile("{", "t.json"), /t\.json: .*invalid JSON/);
  });
});
