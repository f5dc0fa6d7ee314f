import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LoraFineTuneStatusSchema } from "@loraforge/crds";
import type { AnswerResult } from "../../src/eval/report.ts";
import type { SampleRecord } from "../../src/eval/run.ts";
import { cutText, promptSha256, statusExamples } from "../../src/eval/statusExamples.ts";

const answer = (text: string): AnswerResult => ({
  text,
  tokens: 1,
  stop: "stop_token",
  exactMatch: 0,
  tokenF1: 0,
  rougeL: 0,
  repeatsPrompt: false,
  loss: null,
});

const sample = (i: number, text = `answer ${i}`): SampleRecord => ({
  id: String(i),
  line: i + 1,
  instruction: `instruction ${i}`,
  input: i % 2 ? `input ${i}` : "",
  reference: `reference ${i}`,
  base: answer(`base ${text}`),
  tuned: answer(text),
});

describe("the samples status.evaluation carries", () => {
  test("at most 3, the smallest prompt digests, the same choice from any subset holding them", () => {
    const all = Array.from({ length: 20 }, (_, i) => sample(i));
    const picked = statusExamples(all);
    assert.equal(picked.length, 3);
    const digests = all.map((s) => promptSha256(s.instruction, s.input)).sort();
    assert.deepEqual(
      picked.map((e) => e.promptSha256),
      digests.slice(0, 3),
    );
    // Another run whose split shares those prompts (others left out, order changed) picks them too.
    const shared = new Set(digests.slice(0, 3));
    const other = all
      .filter((s, i) => i % 3 === 0 || shared.has(promptSha256(s.instruction, s.input)))
      .reverse();
    assert.deepEqual(
      statusExamples(other).map((e) => e.promptSha256),
      digests.slice(0, 3),
    );
    const first = picked[0];
    const source = all.find((s) => promptSha256(s.instruction, s.input) === first?.promptSha256);
    assert.deepEqual(first, {
      promptSha256: first?.promptSha256,
      instruction: source?.instruction,
      input: source?.input,
      reference: source?.reference,
      base: source?.base.text,
      tuned: source?.tuned?.text,
    });
    assert.equal(statusExamples([{ ...sample(1), tuned: undefined }])[0]?.tuned, undefined);
    assert.deepEqual(statusExamples([]), []);
  });

  test("long texts are cut to 400 UTF-16 units with '…', never inside a surrogate pair", () => {
    assert.equal(cutText("short"), "short");
    assert.equal(cutText("x".repeat(400)), "x".repeat(400));
    const cut = cutText("x".repeat(1000));
    assert.equal(cut.length, 400);
    assert.ok(cut.endsWith("x…"));
    // An emoji (two units) across the boundary is dropped whole.
    const emoji = cutText(`${"x".repeat(398)}😀${"y".repeat(10)}`);
    assert.equal(emoji, `${"x".repeat(398)}…`);
    const huge = "😀<b>@x</b>\n".repeat(2000);
    const [e] = statusExamples([
      {
        ...sample(0),
        instruction: huge,
        input: huge,
        reference: huge,
        base: answer(huge),
        tuned: answer(huge),
      },
    ]);
    assert.ok(e);
    for (const t of [e.instruction, e.input, e.reference, e.base, e.tuned ?? ""])
      assert.ok(t.length <= 400 && t.endsWith("…"));
    // The digest is of the uncut prompt: two prompts differing after the cut stay apart.
    assert.notEqual(e.promptSha256, promptSha256(huge.slice(0, 399), huge));
    // What the API server's schema accepts (3 at most, 400 characters at most each).
    LoraFineTuneStatusSchema.parse({
      evaluation: {
        examples: statusExamples(Array.from({ length: 9 }, (_, i) => sample(i, huge))),
      },
    });
    assert.throws(() =>
      LoraFineTuneStatusSchema.parse({
        evaluation: { examples: Array.from({ length: 4 }, () => statusExamples([sample(0)])[0]) },
      }),
    );
    assert.throws(() =>
      LoraFineTuneStatusSchema.parse({
        evaluation: { examples: [{ ...statusExamples([sample(0)])[0], base: "x".repeat(401) }] },
      }),
    );
  });
});
