// Small builders of LoraFineTune manifests for tests.

import { API_VERSION, KIND, type LoraFineTune, parseLoraFineTune } from "@loraforge/crds";

export interface FixtureOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  annotations?: Record<string, string>;
  training?: Record<string, unknown>;
  resources?: Record<string, unknown>;
  dataset?: Record<string, unknown>;
  lora?: Record<string, unknown>;
  queueName?: string;
  priorityClass?: string;
  suspend?: boolean;
  modelPath?: string;
  evaluation?: Record<string, unknown>;
}

/** The manifest as a user would write it (before defaults). */
export function manifest(o: FixtureOptions = {}) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: o.name ?? "alpaca-7b",
      ...(o.namespace ? { namespace: o.namespace } : {}),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      baseModel: { source: { pvc: { claimName: "models", path: o.modelPath ?? "llama-2-7b-hf" } } },
      dataset: {
        source: { pvc: { claimName: "datasets", path: "alpaca/cleaned.json" } },
        ...(o.dataset ?? {}),
      },
      ...(o.lora ? { lora: o.lora } : {}),
      training: { precision: "fp16", gradientCheckpointing: true, ...(o.training ?? {}) },
      resources: { gpus: 1, gpuProduct: "Tesla-V100-SXM2-32GB", ...(o.resources ?? {}) },
      ...(o.evaluation ? { evaluation: o.evaluation } : {}),
      ...(o.queueName ? { queueName: o.queueName } : {}),
      ...(o.priorityClass ? { priorityClass: o.priorityClass } : {}),
      ...(o.suspend !== undefined ? { suspend: o.suspend } : {}),
      output: { pvc: { claimName: "runs", path: o.name ?? "alpaca-7b" } },
    },
  };
}

/** Parsed (defaulted) LoraFineTune. */
export function lft(o: FixtureOptions = {}): LoraFineTune {
  const m = manifest(o);
  return parseLoraFineTune({
    ...m,
    metadata: { ...m.metadata, namespace: o.namespace ?? "ml", uid: o.uid ?? "uid-1" },
  });
}
