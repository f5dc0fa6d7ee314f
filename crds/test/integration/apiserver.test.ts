// The generated CRD against a real kube-apiserver: it applies, the examples are accepted
// and read back with their defaults, and a table of invalid manifests is refused with a
// message naming the offending field. zod must agree with the API server on every case.
//
// Requests carry ?fieldValidation=Strict, as `kubectl apply` sends by default, so that
// unknown fields are refused (without it the API server silently prunes them).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  connectTestCluster,
  eventually,
  type KubeClient,
  messageOf,
  type TestCluster,
} from "@loraforge/test-k8s";
import { parse } from "yaml";
import { z } from "zod";
import {
  API_VERSION,
  LoraFineTuneStatusSchema,
  PLURAL,
  type SpecProblem,
  safeParseLoraFineTune,
  validateSpecUpdate,
} from "../../src/index.ts";
import {
  base,
  INVALID,
  type Manifest,
  mergePatch,
  set,
  VALID,
} from "../support/apiserver-cases.ts";

const repo = join(import.meta.dirname, "..", "..", "..");
const CRD_FILE = join(repo, "crds", "loraforge.dev_lorafinetunes.yaml");
const CRD_NAME = `${PLURAL}.loraforge.dev`;

function readYaml(path: string): Manifest {
  return parse(readFileSync(path, "utf8")) as Manifest;
}

/** zod's issue path in the API server's notation: spec.lora.targetModules[1]. */
function apiPath(problem: SpecProblem): string {
  return problem.path.replace(/\.(\d+)(?=\.|$)/g, "[$1]");
}

/** Whether a zod problem is about `field` (an unknown key is reported on its parent). */
function names(problem: SpecProblem, field: string): boolean {
  const path = apiPath(problem);
  if (path.startsWith(field)) return true;
  const key = field.split(".").at(-1) ?? field;
  return field.startsWith(`${path}.`) && problem.message.includes(key);
}

describe("LoraFineTune CRD on a real kube-apiserver", () => {
  let cluster: TestCluster;
  let client: KubeClient;
  const ns = `crd-${randomBytes(3).toString("hex")}`;
  const collection = () => `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL}`;
  const strict = "fieldValidation=Strict";
  let serial = 0;
  const uniqueName = () => `case-${++serial}`;

  before(async () => {
    cluster = await connectTestCluster();
    client = cluster.client;
    console.log(`# CRD tests against kube-apiserver ${cluster.version}`);
    await client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
  });

  after(async () => {
    if (client) await client.request("DELETE", `/api/v1/namespaces/${ns}`);
    await cluster?.stop();
  });

  test("the generated CRD applies and becomes Established", async () => {
    const crd = parse(readFileSync(CRD_FILE, "utf8"));
    // Server-side apply: idempotent when another suite applied it to the shared cluster.
    await client.patch(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}?fieldManager=loraforge-tests&force=true&${strict}`,
      crd,
      "apply",
    );
    const Crd = z.object({
      status: z
        .object({
          conditions: z
            .array(
              z.object({ type: z.string(), status: z.string(), message: z.string().optional() }),
            )
            .optional(),
        })
        .optional(),
    });
    await eventually("the CRD to be Established", async () => {
      const got = Crd.parse(
        await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`),
      );
      const conditions = got.status?.conditions ?? [];
      const problem = conditions.find(
        (c) => c.type === "NonStructuralSchema" && c.status === "True",
      );
      if (problem) throw new Error(`non-structural schema: ${problem.message}`);
      return conditions.some((c) => c.type === "Established" && c.status === "True")
        ? true
        : undefined;
    });
    // Established can precede the REST endpoint by a moment.
    await eventually("the lorafinetunes endpoint", async () =>
      (await client.request("GET", collection())).status === 200 ? true : undefined,
    );
    const discovery = z
      .object({
        resources: z.array(
          z.object({
            name: z.string(),
            shortNames: z.array(z.string()).optional(),
            categories: z.array(z.string()).optional(),
          }),
        ),
      })
      .parse(await client.get(`/apis/${API_VERSION}`));
    const resource = discovery.resources.find((r) => r.name === PLURAL);
    assert.deepEqual(resource?.shortNames, ["lft"]);
    assert.ok(resource?.categories?.includes("loraforge"));
  });

  test("the API server publishes the descriptions that kubectl explain prints", async () => {
    // kubectl explain lft.spec.lora reads the published OpenAPI v3 document of the group.
    type Schema = { description?: string; properties?: Record<string, Schema> };
    const doc = await eventually("the OpenAPI v3 document of loraforge.dev", async () => {
      const res = await client.request("GET", `/openapi/v3/apis/${API_VERSION}`);
      if (res.status !== 200) return undefined;
      const body = res.body as { components?: { schemas?: Record<string, Schema> } };
      return body.components?.schemas?.["dev.loraforge.v1alpha1.LoraFineTune"];
    });
    const lora = doc.properties?.spec?.properties?.lora;
    assert.match(lora?.description ?? "", /LoRA adapter/);
    assert.match(lora?.properties?.r?.description ?? "", /rank/);
    assert.match(lora?.properties?.targetModules?.description ?? "", /q_proj/);
    assert.match(doc.properties?.status?.properties?.phase?.description ?? "", /Succeeded/);
  });

  for (const example of ["lorafinetune-minimal.yaml", "lorafinetune-full.yaml"]) {
    test(`examples/${example} is accepted and read back with zod's defaults`, async () => {
      const manifest = readYaml(join(repo, "examples", example));
      const parsed = safeParseLoraFineTune(manifest);
      assert.ok(
        parsed.ok,
        `zod refuses ${example}: ${JSON.stringify(!parsed.ok && parsed.problems)}`,
      );
      const metadata = manifest.metadata as Record<string, unknown>;
      const created = await client.create(`${collection()}?${strict}`, {
        ...manifest,
        metadata: { ...metadata, namespace: ns },
      });
      const name = String(metadata.name);
      const stored = z
        .object({ spec: z.record(z.string(), z.unknown()) })
        .parse(await client.get(`${collection()}/${name}`));
      assert.deepEqual(stored.spec, (created as { spec: unknown }).spec);
      // The API server's defaults are exactly zod's: same object, field for field.
      assert.deepEqual(stored.spec, JSON.parse(JSON.stringify(parsed.value.spec)));
    });
  }

  test("the full example sets every spec field (nothing left to defaults)", () => {
    const manifest = readYaml(join(repo, "examples", "lorafinetune-full.yaml"));
    const parsed = safeParseLoraFineTune(manifest);
    assert.ok(parsed.ok);
    assert.deepEqual(JSON.parse(JSON.stringify(parsed.value.spec)), manifest.spec);
  });

  test(`${INVALID.length} invalid manifests: refused by both, naming the field`, async (t) => {
    assert.ok(INVALID.length >= 30);
    const disagreements: string[] = [];
    for (const c of INVALID) {
      const manifest = c.manifest(uniqueName());
      const res = await client.request("POST", `${collection()}?${strict}`, {
        ...manifest,
        metadata: { ...(manifest.metadata as object), namespace: ns },
      });
      const message = messageOf(res.body);
      t.diagnostic(`${c.name} → ${res.status} ${message}`);
      const zod = safeParseLoraFineTune(manifest);
      // 422 Invalid; an unknown field under fieldValidation=Strict is a 400 BadRequest.
      if (![400, 422].includes(res.status) || !message.includes(c.field)) {
        disagreements.push(
          `${c.name}: API server answered ${res.status} "${message}", expected a refusal naming ${c.field}`,
        );
      }
      if (zod.ok) {
        disagreements.push(`${c.name}: zod accepts it, the API server does not`);
      } else if (!zod.problems.some((p) => names(p, c.field))) {
        disagreements.push(
          `${c.name}: zod names ${zod.problems.map(apiPath).join(", ")}, not ${c.field}`,
        );
      }
    }
    assert.deepEqual(disagreements, []);
  });

  test(`${VALID.length} valid variants: accepted by both`, async () => {
    const disagreements: string[] = [];
    for (const c of VALID) {
      const manifest = c.manifest(uniqueName());
      const res = await client.request("POST", `${collection()}?${strict}`, {
        ...manifest,
        metadata: { ...(manifest.metadata as object), namespace: ns },
      });
      const zod = safeParseLoraFineTune(manifest);
      if (res.status !== 201)
        disagreements.push(`${c.name}: API server: ${res.status} ${messageOf(res.body)}`);
      if (!zod.ok) disagreements.push(`${c.name}: zod: ${JSON.stringify(zod.problems)}`);
    }
    assert.deepEqual(disagreements, []);
  });

  test("status.evaluation.examples: 3 samples of 400 characters at most, as zod says", async () => {
    const name = uniqueName();
    await client.create(`${collection()}?${strict}`, {
      ...base(name),
      metadata: { name, namespace: ns },
    });
    const example = {
      promptSha256: "ab".repeat(32),
      instruction: "Write a story about Lily and a ball. </pre>",
      input: "",
      reference: "x".repeat(400),
      base: "é😀".repeat(100),
      tuned: "Once upon a time",
    };
    const cases: { name: string; examples: unknown[]; field?: string }[] = [
      { name: "three, at the bounds", examples: [example, example, example] },
      {
        name: "four",
        examples: [example, example, example, example],
        field: "status.evaluation.examples",
      },
      {
        name: "a 401-character text",
        examples: [{ ...example, base: "x".repeat(401) }],
        field: "status.evaluation.examples[0].base",
      },
      {
        name: "a digest that is not sha256 hex",
        examples: [{ ...example, promptSha256: "AB" }],
        field: "status.evaluation.examples[0].promptSha256",
      },
    ];
    for (const c of cases) {
      const status = { evaluation: { samples: 6, examples: c.examples } };
      const res = await client.request(
        "PATCH",
        `${collection()}/${name}/status?${strict}`,
        { status },
        "application/merge-patch+json",
      );
      const message = messageOf(res.body);
      const zod = LoraFineTuneStatusSchema.safeParse(status);
      if (c.field) {
        assert.equal(res.status, 422, `${c.name}: ${message}`);
        assert.ok(message.includes(c.field), `${c.name}: ${message}`);
        assert.equal(zod.success, false, c.name);
      } else {
        assert.equal(res.status, 200, `${c.name}: ${message}`);
        assert.equal(zod.success, true, c.name);
      }
    }
  });

  describe("after creation the spec is immutable except suspend", () => {
    // biome-ignore format: a table
    const UPDATES: { name: string; patch: Record<string, unknown>; field: string | undefined }[] = [
      { name: "suspend", patch: { suspend: true }, field: undefined },
      { name: "lora.r", patch: { lora: { r: 32 } }, field: "spec.lora" },
      { name: "training.learningRate", patch: { training: { learningRate: 0.0001 } }, field: "spec.training" },
      { name: "output path", patch: { output: { pvc: { path: "elsewhere" } } }, field: "spec.output" },
      { name: "baseModel source", patch: { baseModel: { source: { pvc: { path: "llama-2-13b-hf" } } } }, field: "spec.baseModel" },
      { name: "dataset cutoffLen", patch: { dataset: { cutoffLen: 1024 } }, field: "spec.dataset" },
      { name: "checkpointSelection", patch: { checkpointSelection: "last" }, field: "spec.checkpointSelection" },
      { name: "resources.gpus", patch: { resources: { gpus: 2 } }, field: "spec.resources" },
      { name: "evaluation.samples", patch: { evaluation: { samples: 10 } }, field: "spec.evaluation" },
      { name: "queueName (added)", patch: { queueName: "v100-queue" }, field: "spec.queueName" },
    ];
    for (const u of UPDATES) {
      test(`changing ${u.name} is ${u.field ? "refused" : "allowed"} by both`, async () => {
        const name = uniqueName();
        const original = base(name);
        await client.create(`${collection()}?${strict}`, {
          ...original,
          metadata: { name, namespace: ns },
        });
        const res = await client.request(
          "PATCH",
          `${collection()}/${name}?${strict}`,
          { spec: u.patch },
          "application/merge-patch+json",
        );
        const message = messageOf(res.body);
        const before = safeParseLoraFineTune(original);
        const after = safeParseLoraFineTune(
          set(structuredClone(original), "spec", mergePatch(original.spec, u.patch)),
        );
        assert.ok(before.ok && after.ok, "both versions are valid on their own");
        const zodProblems = validateSpecUpdate(before.value.spec, after.value.spec);
        if (u.field) {
          assert.equal(res.status, 422, message);
          assert.ok(message.includes(u.field), `message should name ${u.field}: ${message}`);
          assert.match(message, /immutable/);
          assert.ok(
            zodProblems.some((p) => p.path.startsWith(u.field as string)),
            JSON.stringify(zodProblems),
          );
        } else {
          assert.equal(res.status, 200, message);
          assert.equal((res.body as { spec: { suspend: boolean } }).spec.suspend, true);
          assert.deepEqual(zodProblems, []);
        }
      });
    }
  });
});
