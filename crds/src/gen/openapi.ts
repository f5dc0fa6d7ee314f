import { z } from "zod";

/**
 * zod → OpenAPI v3 structural schema, as apiextensions.k8s.io/v1 wants it.
 *
 * zod emits JSON Schema 2020-12; a CRD needs the OpenAPI v3.0 dialect with
 * Kubernetes' structural restrictions: every node typed, no additionalProperties
 * beside properties, boolean exclusiveMinimum/Maximum, x-kubernetes-* extensions.
 */

type Json = Record<string, unknown>;

const SAFE_INT = Number.MAX_SAFE_INTEGER;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function convert(node: Json, where: string): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "$schema":
      case "propertyNames":
        break;
      case "exclusiveMinimum":
        out.minimum = value;
        out.exclusiveMinimum = true;
        break;
      case "exclusiveMaximum":
        out.maximum = value;
        out.exclusiveMaximum = true;
        break;
      case "pattern":
        // zod spells date-time as a regex; the API server checks `format: date-time` itself.
        if (node.format !== "date-time") out.pattern = value;
        break;
      case "minimum":
        if (value !== -SAFE_INT) out.minimum = value;
        break;
      case "maximum":
        if (value !== SAFE_INT) out.maximum = value;
        break;
      case "properties": {
        const props: Json = {};
        for (const [name, sub] of Object.entries(value as Json)) {
          props[name] = convert(sub as Json, `${where}.${name}`);
        }
        out.properties = props;
        break;
      }
      case "items":
        out.items = convert(value as Json, `${where}[]`);
        break;
      case "additionalProperties":
        // `false` (zod .strict()) is what the API server does anyway: unknown fields
        // are refused by strict field validation and pruned otherwise.
        if (isObject(value) && !node.properties && !node["x-kubernetes-preserve-unknown-fields"]) {
          out.additionalProperties = convert(value, `${where}.*`);
        }
        break;
      case "anyOf":
      case "oneOf":
      case "allOf":
      case "not":
      case "$ref":
      case "$defs":
        throw new Error(
          `${where}: ${key} is not supported in the CRD generator; express it as a CEL rule`,
        );
      default:
        out[key] = value;
    }
  }
  if (out.type === undefined && !out["x-kubernetes-preserve-unknown-fields"]) {
    throw new Error(`${where}: schema has no type (not structural)`);
  }
  return out;
}

export function toStructuralSchema(schema: z.ZodType, where: string): Json {
  const js = z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "throw",
    reused: "inline",
  }) as Json;
  return convert(js, where);
}
