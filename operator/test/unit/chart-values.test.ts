// values.schema.json covers every value of values.yaml, and no object in it takes keys it does
// not know: a misspelt key (`--set securityContext.readOnlyRootFilesytem=false`) must fail
// `helm install` naming the key, not vanish. Read from the chart's files; the integration
// test (chart-policy.test.ts) shows real helm refusing such values.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";

const chart = join(import.meta.dirname, "..", "..", "..", "charts", "loraforge");

interface Schema {
  $ref?: string;
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
}

const root = JSON.parse(readFileSync(join(chart, "values.schema.json"), "utf8")) as Schema;
const values = parse(readFileSync(join(chart, "values.yaml"), "utf8")) as unknown;

/** A "#/a/b" pointer into the schema file, followed until it is no $ref. */
function resolve(s: Schema): Schema {
  let node = s;
  for (let hops = 0; node.$ref; hops++) {
    assert.ok(node.$ref.startsWith("#/") && hops < 8, `unsupported $ref ${node.$ref}`);
    let target: unknown = root;
    for (const part of node.$ref.slice(2).split("/"))
      target = (target as Record<string, unknown> | undefined)?.[part];
    assert.ok(target && typeof target === "object", `$ref ${node.$ref} points nowhere`);
    node = target as Schema;
  }
  return node;
}

/** Objects of the schema that accept any key: neither closed nor a typed map. */
function openObjects(s: Schema, path: string): string[] {
  const node = resolve(s);
  const out: string[] = [];
  if (node.type === "object" || node.properties) {
    const extra = node.additionalProperties;
    if (extra === undefined || extra === true) out.push(path);
    if (extra && typeof extra === "object") out.push(...openObjects(extra, `${path}.*`));
    for (const [k, child] of Object.entries(node.properties ?? {}))
      out.push(...openObjects(child, `${path}.${k}`));
  }
  if (node.items) out.push(...openObjects(node.items, `${path}[]`));
  return out;
}

/** Keys of values.yaml that the schema has no entry for. */
function unknownValues(value: unknown, s: Schema, path: string): string[] {
  const node = resolve(s);
  if (Array.isArray(value))
    return node.items
      ? value.flatMap((v, i) => unknownValues(v, node.items as Schema, `${path}[${i}]`))
      : [];
  if (!value || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const child =
      node.properties?.[k] ??
      (typeof node.additionalProperties === "object" ? node.additionalProperties : undefined);
    if (child) return unknownValues(v, child, `${path}.${k}`);
    return node.additionalProperties === false ? [`${path}.${k}`] : [];
  });
}

test("every value in values.yaml has a schema with a description", () => {
  assert.deepEqual(unknownValues(values, root, ""), []);
  const undescribed = Object.keys(values as object).filter(
    (k) => !root.properties?.[k]?.description,
  );
  assert.deepEqual(undescribed, [], "top-level values without a description");
});

test("no object in the schema takes unknown keys, save Helm's global and the operator's affinity", () => {
  // global is Helm's (a parent chart passes its own); affinity is core/v1 Affinity, too deep
  // to restate, and the API server checks it on apply.
  assert.deepEqual(openObjects(root, "values").sort(), ["values.affinity", "values.global"]);
});
