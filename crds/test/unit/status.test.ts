import assert from "node:assert/strict";
import { test } from "node:test";
import {
  LoraFineTuneStatusSchema,
  OPERATOR_STATUS_FIELDS,
  TRAINER_STATUS_FIELDS,
} from "../../src/index.ts";

test("the operator's and the trainer's status fields cover every status field exactly once", () => {
  const owned = [...OPERATOR_STATUS_FIELDS, ...TRAINER_STATUS_FIELDS];
  const twice = owned.filter((f, i) => owned.indexOf(f) !== i);
  assert.deepEqual(twice, [], "fields with two writers");
  const schema = Object.keys(LoraFineTuneStatusSchema.shape).sort();
  assert.deepEqual([...owned].sort(), schema, "fields with no writer, or not in the schema");
});
