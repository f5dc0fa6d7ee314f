import {
  API_VERSION,
  CATEGORIES,
  GROUP,
  KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from "../lorafinetune.ts";
import { LoraFineTuneSpecSchema } from "../spec.ts";
import { LoraFineTuneStatusSchema } from "../status.ts";
import { toStructuralSchema } from "./openapi.ts";

/** The CustomResourceDefinition of LoraFineTune, generated from the zod schemas. */
export function buildCrd(): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: [...CATEGORIES],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            {
              name: "Phase",
              type: "string",
              jsonPath: ".status.phase",
              description: "Phase of the run.",
            },
            {
              name: "Progress",
              type: "string",
              jsonPath: ".status.progress.summary",
              description: "Optimizer steps done of planned.",
            },
            {
              name: "Loss",
              type: "number",
              jsonPath: ".status.progress.loss",
              description: "Latest training loss.",
            },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: `${KIND} (${API_VERSION}) fine-tunes a Llama-family model with LoRA on an instruction dataset and produces a PEFT adapter.`,
              required: ["spec"],
              properties: {
                apiVersion: {
                  type: "string",
                  description:
                    "APIVersion defines the versioned schema of this representation of an object.",
                },
                kind: {
                  type: "string",
                  description: "Kind is the REST resource this object represents.",
                },
                metadata: { type: "object" },
                spec: toStructuralSchema(LoraFineTuneSpecSchema, "spec"),
                status: toStructuralSchema(LoraFineTuneStatusSchema, "status"),
              },
            },
          },
        },
      ],
    },
  };
}
