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

/**
 * What `kubectl get lft` shows (the API server builds the table from these paths), and
 * with `-o wide` the priority-1 columns too. Reason, Model and GPU are status fields the
 * operator writes for them; Progress and ETA are written by the trainer.
 */
export const PRINTER_COLUMNS = [
  { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Phase of the run." },
  {
    name: "Reason",
    type: "string",
    jsonPath: ".status.reason",
    description: "Why the run is in its phase: the failure reason, or what it waits for.",
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
  { name: "Queue", type: "string", jsonPath: ".spec.queueName", description: "Kueue LocalQueue." },
  {
    name: "Waiting",
    type: "date",
    jsonPath: ".status.queuedSince",
    description: "How long the run has waited for Kueue's admission (empty once admitted).",
  },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  {
    name: "Model",
    type: "string",
    jsonPath: ".status.model",
    description: "The base model.",
    priority: 1,
  },
  {
    name: "GPU",
    type: "string",
    jsonPath: ".status.gpu",
    description: "GPUs and GPU product.",
    priority: 1,
  },
  {
    name: "ETA",
    type: "string",
    jsonPath: ".status.progress.eta",
    description: "Estimated time until training ends.",
    priority: 1,
  },
];

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
          additionalPrinterColumns: PRINTER_COLUMNS,
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
