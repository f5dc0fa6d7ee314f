// docs/TROUBLESHOOTING.md keeps up with the code: its failure table has a row for exactly
// the failure reasons of @loraforge/crds, every other reason the operator can write is
// explained somewhere in it, and its `kubectl get lft` shows the CRD's columns.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FAILURE_REASONS, Reason } from "@loraforge/crds";
import { parse } from "yaml";

const DOC = join(import.meta.dirname, "..", "..", "..", "docs", "TROUBLESHOOTING.md");
const text = readFileSync(DOC, "utf8");

/** The first cell (a `code` span) of each table row in the section under `heading`. */
function tableReasons(heading: string): string[] {
  const start = text.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `TROUBLESHOOTING.md has a section "${heading}"`);
  const end = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1] ?? "");
}

test("the failure table has one row per failure reason, and no other", () => {
  assert.deepEqual(tableReasons("Failure reasons").sort(), [...FAILURE_REASONS].sort());
});

test("every reason the operator can write is explained (only the all-is-well ones are not)", () => {
  const allWell = new Set<string>([Reason.SpecValid, Reason.NotSuspended]);
  const documented = new Set([
    ...tableReasons("Failure reasons"),
    ...tableReasons("Waiting reasons"),
    ...tableReasons("Warnings that do not stop a run"),
  ]);
  const missing = Object.values(Reason).filter((r) => !allWell.has(r) && !documented.has(r));
  assert.deepEqual(missing, [], "add a row to docs/TROUBLESHOOTING.md for each");
});

test("section 1's kubectl get lft has the CRD's columns, default and -o wide", () => {
  const crd = parse(
    readFileSync(
      join(import.meta.dirname, "..", "..", "..", "crds", "loraforge.dev_lorafinetunes.yaml"),
      "utf8",
    ),
  ) as {
    spec: { versions: { additionalPrinterColumns: { name: string; priority?: number }[] }[] };
  };
  const columns = crd.spec.versions[0]?.additionalPrinterColumns ?? [];
  const shown = (wide: boolean) =>
    columns.filter((c) => (c.priority ?? 0) > 0 === wide).map((c) => c.name.toUpperCase());
  const start = text.indexOf("\n## 1. ");
  const section = text.slice(start, text.indexOf("\n## ", start + 1));
  assert.ok(section.includes(`kubectl get lft -n ml            # ${shown(false).join(", ")}\n`));
  assert.ok(section.includes(`kubectl get lft -n ml -o wide    # + ${shown(true).join(", ")}\n`));
  const header = section.split("\n").find((l) => l.startsWith("NAME "));
  assert.deepEqual(header?.trim().split(/\s+/), ["NAME", ...shown(false), ...shown(true)]);
});
