import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  exactMatch,
  lcsLength,
  normalizeAnswer,
  repeatsPrompt,
  rougeL,
  rougeTokens,
  templateMarkers,
  tokenF1,
} from "../../src/eval/metrics.ts";
import { ALPACA, ALPACA_SHORT } from "../../src/prompt/templates.ts";
import { GOLDEN } from "../support/helpers.ts";

interface GoldenPair {
  reference: string;
  prediction: string;
  exact_match: number;
  f1: number;
  rouge_l: { precision: number; recall: number; fmeasure: number };
}

const readGolden = async (file: string) =>
  (JSON.parse(await readFile(file, "utf8")) as { pairs: GoldenPair[] }).pairs;

describe("metrics vs the Python references (SQuAD v2.0 script, rouge-score)", () => {
  test("at least 500 pairs give identical float64 values", async () => {
    const pairs = await readGolden(join(GOLDEN, "eval_metrics.json"));
    assert.ok(pairs.length >= 500, `only ${pairs.length} golden pairs`);
    const mismatches: string[] = [];
    pairs.forEach((p, i) => {
      const ours = {
        exact_match: exactMatch(p.reference, p.prediction),
        f1: tokenF1(p.reference, p.prediction),
        rouge_l: rougeL(p.reference, p.prediction),
      };
      const theirs = { exact_match: p.exact_match, f1: p.f1, rouge_l: p.rouge_l };
      if (JSON.stringify(ours) !== JSON.stringify(theirs))
        mismatches.push(
          `#${i} ${JSON.stringify(p.reference.slice(0, 40))} vs ${JSON.stringify(p.prediction.slice(0, 40))}: ours ${JSON.stringify(ours)} python ${JSON.stringify(theirs)}`,
        );
    });
    assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} of ${pairs.length} differ`);
    // the pairs exercise every branch: matches, partial overlaps, nothing in common
    assert.ok(pairs.some((p) => p.exact_match === 1) && pairs.some((p) => p.exact_match === 0));
    assert.ok(pairs.some((p) => p.f1 > 0 && p.f1 < 1));
    assert.ok(pairs.some((p) => p.rouge_l.fmeasure > 0 && p.rouge_l.fmeasure < 1));
  });
});

describe("metric definitions", () => {
  test("SQuAD normalization: case, punctuation, articles, Python whitespace", () => {
    assert.equal(normalizeAnswer("  The  Cat, a DOG!  "), "cat dog");
    // Python's \b is Unicode-aware: "the" inside "théâtre" or "the_" is not an article
    assert.equal(normalizeAnswer("the\u00e9 the_x"), "the\u00e9 thex");
    // str.split() splits on U+001C and U+0085 but not on U+FEFF
    assert.equal(normalizeAnswer("a\x1cb\x85c\ufeffd"), "b c\ufeffd");
  });

  test("exact match and token F1", () => {
    assert.equal(exactMatch("The answer.", "answer"), 1);
    assert.equal(exactMatch("answer", "answers"), 0);
    assert.equal(
      tokenF1("quick brown fox", "the brown fox jumped"),
      (2 * (2 / 3) * (2 / 3)) / (4 / 3),
    );
    assert.equal(tokenF1("", "the"), 1); // both have no words after normalization
    assert.equal(tokenF1("", "x"), 0);
  });

  test("ROUGE-L: tokens, LCS and F-measure", () => {
    assert.deepEqual(rougeTokens("Don't stop-me now, caf\u00e9 42!"), [
      "don",
      "t",
      "stop",
      "me",
      "now",
      "caf",
      "42",
    ]);
    assert.equal(lcsLength(["a", "b", "c", "d"], ["b", "x", "d"]), 2);
    const s = rougeL("the cat sat on the mat", "the cat on a mat");
    assert.equal(s.precision, 4 / 5);
    assert.equal(s.recall, 4 / 6);
    assert.equal(rougeL("", "x").fmeasure, 0);
  });

  test("prompt repetition: template restarts and copied spans", () => {
    const markers = templateMarkers(ALPACA_SHORT);
    assert.deepEqual(markers.sort(), ["### Input:", "### Instruction:", "### Response:"]);
    assert.ok(templateMarkers(ALPACA).includes("### Instruction:"));
    assert.ok(
      templateMarkers(ALPACA).some((m) => m.startsWith("Below is an instruction that describes")),
    );
    const prompt = {
      instruction: "Write a story about Lily and a red ball in the park on a sunny day.",
    };
    assert.deepEqual(repeatsPrompt("Lily played.\n### Instruction:\nWrite", prompt, markers), {
      repeats: true,
      reason: "template",
    });
    // 8 words copied in a row
    assert.equal(
      repeatsPrompt("Once, write a story about Lily and a red ball. The end.", prompt, markers)
        .reason,
      "span",
    );
    // 7 words copied is not enough
    assert.equal(
      repeatsPrompt("Then about Lily and a red ball in. Rain came.", prompt, markers).repeats,
      false,
    );
    // a short instruction (4..7 words) counts when copied whole
    const short = { instruction: "Name a red fruit." };
    assert.equal(repeatsPrompt("Name a red fruit: apple", short, markers).repeats, true);
    assert.equal(repeatsPrompt("A red fruit: apple", short, markers).repeats, false);
    // under 4 words never counts as a copied span
    assert.equal(repeatsPrompt("Say hi. hi", { instruction: "Say hi." }, markers).repeats, false);
    // the input is a source too
    assert.equal(
      repeatsPrompt(
        "x one two three four five six seven eight y",
        { instruction: "Copy", input: "one two three four five six seven eight nine" },
        markers,
      ).repeats,
      true,
    );
  });
});
