import assert from "node:assert/strict";
import { test } from "node:test";
import { renderTable, rowOf, type ServerTable } from "../../src/table.ts";

const table: ServerTable = {
  kind: "Table",
  columnDefinitions: [
    { name: "Name", type: "string" },
    { name: "Phase", type: "string" },
    { name: "Loss", type: "number" },
    { name: "Model", type: "string", priority: 1 },
  ],
  rows: [
    { cells: ["a-long-name", "Running", 1.25, "llama-2-7b-hf"] },
    { cells: ["b", "Queued", null, ""] },
  ],
};

test("renderTable lays a server Table out as kubectl does; -o wide adds priority > 0", () => {
  assert.equal(
    renderTable(table),
    [
      "NAME          PHASE     LOSS",
      "a-long-name   Running   1.25",
      "b             Queued    <none>",
    ].join("\n"),
  );
  assert.equal(
    renderTable(table, { wide: true }),
    [
      "NAME          PHASE     LOSS     MODEL",
      "a-long-name   Running   1.25     llama-2-7b-hf",
      "b             Queued    <none>   <none>",
    ].join("\n"),
  );
});

test("rowOf: a row's cells by column name, null as undefined", () => {
  assert.deepEqual(rowOf(table, "b"), {
    Name: "b",
    Phase: "Queued",
    Loss: undefined,
    Model: "",
  });
  assert.equal(rowOf(table, "c"), undefined);
});
