import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";
import { buildCrd } from "../../src/gen/crd.ts";
import { CRD_TARGETS, renderCrd } from "../../src/gen/main.ts";
import {
  API_VERSION,
  ConditionType,
  FAILURE_REASONS,
  JOB_REFUSED_REASONS,
  KIND,
  parseLoraFineTune,
  Reason,
  readLoraFineTuneFile,
  safeParseLoraFineTune,
  VALIDATION_FAILURE_REASONS,
  validateSpecUpdate,
} from "../../src/index.ts";

type Node = Record<string, unknown> & { properties?: Record<string, Node>; items?: Node };

/** Every property below `node`, with its dotted path. */
function fields(node: Node, path: string): [string, Node][] {
  const out: [string, Node][] = [];
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    out.push([`${path}.${name}`, child]);
    out.push(...fields(child, `${path}.${name}`));
  }
  if (node.items) out.push(...fields(node.items, `${path}[]`));
  return out;
}

function versionSchema(): Node {
  const crd = buildCrd() as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } };
  const v = crd.spec.versions[0];
  assert.ok(v);
  return v.schema.openAPIV3Schema;
}

test("every spec and status field has a description", () => {
  const root = versionSchema();
  for (const part of ["spec", "status"] as const) {
    const node = root.properties?.[part];
    assert.ok(node, part);
    const all = fields(node, part);
    const missing = all.filter(
      ([, n]) => typeof n.description !== "string" || n.description.length < 8,
    );
    console.log(`# ${part}: ${all.length - missing.length}/${all.length} fields described`);
    assert.deepEqual(
      missing.map(([p]) => p),
      [],
      `fields without a description under ${part}`,
    );
    assert.ok(all.length > (part === "spec" ? 60 : 40), `${part} has ${all.length} fields`);
  }
});

test("descriptions send nobody to a source file: kubectl explain is the whole story", () => {
  const root = versionSchema();
  const sourceFile = /\b[\w./-]+\.(?:ts|mts|mjs|js|go|py|cpp|cc|h|cu)\b|\bsrc\//;
  const pointing = fields(root, "")
    .filter(([, n]) => typeof n.description === "string" && sourceFile.test(n.description))
    .map(([p, n]) => `${p}: ${n.description}`);
  assert.deepEqual(pointing, []);
});

test("the reason descriptions name every reason, each under the condition that can carry it", () => {
  const root = versionSchema();
  const status = root.properties?.status;
  const describedAs = (path: string) => {
    const found = fields(status ?? {}, "status").find(([p]) => p === path)?.[1].description;
    assert.equal(typeof found, "string", path);
    return String(found);
  };
  const conditionReason = describedAs("status.conditions[].reason");
  // A reason added to the constants and not to the description fails here.
  for (const reason of Object.values(Reason))
    assert.ok(conditionReason.includes(reason), `conditions[].reason does not name ${reason}`);
  const types = Object.values(ConditionType).join("|");
  const clause = (type: string) =>
    new RegExp(`\\b${type}: (.*?)(?= (?:${types}): |$)`).exec(conditionReason)?.[1] ?? "";
  const falseOf = (type: string) =>
    clause(type)
      .split("; ")
      .find((p) => p.endsWith("(False).")) ?? "";
  for (const reason of VALIDATION_FAILURE_REASONS)
    assert.match(falseOf("Validated"), new RegExp(`\\b${reason}\\b`), `Validated False: ${reason}`);
  for (const reason of JOB_REFUSED_REASONS)
    assert.match(clause("Admitted"), new RegExp(`\\b${reason}\\b`), `Admitted False: ${reason}`);
  for (const reason of FAILURE_REASONS) {
    assert.match(clause("Failed"), new RegExp(`\\b${reason}\\b`), `Failed: ${reason}`);
    assert.ok(describedAs("status.failure.reason").includes(reason), `failure.reason: ${reason}`);
    assert.ok(describedAs("status.reason").includes(reason), `status.reason: ${reason}`);
  }
});

test("the committed CRD and its chart copy are what the schemas generate", () => {
  const text = renderCrd();
  for (const target of CRD_TARGETS) assert.equal(readFileSync(target, "utf8"), text, target);
});

test("the CRD is structural: every node has a type, no unsupported keywords", () => {
  const root = versionSchema();
  for (const [path, node] of fields(root, "")) {
    if (node["x-kubernetes-preserve-unknown-fields"]) continue;
    assert.ok(typeof node.type === "string", `${path} has no type`);
    for (const k of ["anyOf", "oneOf", "allOf", "$ref", "propertyNames", "const"]) {
      assert.ok(!(k in node), `${path} uses ${k}`);
    }
  }
  const crd = parse(renderCrd().replace(/^#.*\n/, "")) as {
    spec: { names: { shortNames: string[] } };
  };
  assert.deepEqual(crd.spec.names.shortNames, ["lft"]);
});

test("examples parse and get the documented defaults", () => {
  const min = readLoraFineTuneFile(
    new URL("../../../examples/lorafinetune-minimal.yaml", import.meta.url).pathname,
  );
  assert.equal(min.spec.dataset.promptTemplate, "alpaca");
  assert.equal(min.spec.dataset.trainOnInputs, false);
  assert.equal(min.spec.dataset.groupByLength, false);
  assert.equal(min.spec.dataset.cutoffLen, 512);
  assert.equal(min.spec.dataset.valSetSize, 2000);
  assert.deepEqual(min.spec.lora, {
    r: 16,
    alpha: 16,
    dropout: 0.05,
    targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"],
    useRslora: false,
  });
  assert.equal(min.spec.training.batchSize, 128);
  assert.equal(min.spec.training.microBatchSize, 4);
  assert.equal(min.spec.training.epochs, 3);
  assert.equal(min.spec.training.learningRate, 3e-4);
  assert.equal(min.spec.training.warmupSteps, 100);
  assert.equal(min.spec.training.maxGradNorm, 1);
  assert.equal(min.spec.training.evalSteps, 200);
  assert.equal(min.spec.training.saveSteps, 200);
  assert.equal(min.spec.training.saveTotalLimit, 3);
  assert.equal(min.spec.checkpointSelection, "lowestTrainLoss");
  assert.equal(min.spec.suspend, false);
  const full = readLoraFineTuneFile(
    new URL("../../../examples/lorafinetune-full.yaml", import.meta.url).pathname,
  );
  assert.equal(full.spec.resources.gpuProduct, "Tesla-V100-SXM2-32GB");
  assert.equal(full.spec.queueName, "v100-queue");
});

const base = () => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name: "t" },
  spec: {
    baseModel: { source: { pvc: { claimName: "models", path: "m" } } },
    dataset: { source: { pvc: { claimName: "data", path: "d.json" } } },
    output: { pvc: { claimName: "runs", path: "r" } },
  },
});

test("zod reports the offending field of cross-field rules", () => {
  const m = base() as ReturnType<typeof base> & { spec: Record<string, unknown> };
  m.spec.training = { batchSize: 10, microBatchSize: 4 };
  const r = safeParseLoraFineTune(m);
  assert.equal(r.ok, false);
  if (!r.ok)
    assert.deepEqual(
      r.problems.map((p) => p.path),
      ["spec.training.microBatchSize"],
    );

  const v = base() as ReturnType<typeof base> & { spec: Record<string, unknown> };
  v.spec.training = { precision: "bf16" };
  v.spec.resources = { gpuProduct: "Tesla-V100-SXM2-32GB" };
  const rv = safeParseLoraFineTune(v);
  assert.equal(rv.ok, false);
  if (!rv.ok) assert.match(rv.problems[0]?.message ?? "", /compute capability/);

  const a = base() as ReturnType<typeof base> & { spec: Record<string, unknown> };
  a.spec.training = { precision: "bf16" };
  a.spec.resources = { gpuProduct: "NVIDIA-A100-SXM4-80GB" };
  assert.equal(safeParseLoraFineTune(a).ok, true);
});

test("validateSpecUpdate allows suspend and refuses everything else", () => {
  const before = parseLoraFineTune(base()).spec;
  assert.deepEqual(validateSpecUpdate(before, { ...before, suspend: true }), []);
  const changed = { ...before, lora: { ...before.lora, r: 8 } };
  assert.deepEqual(
    validateSpecUpdate(before, changed).map((p) => p.path),
    ["spec.lora"],
  );
});
