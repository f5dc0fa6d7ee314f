// Manifests for the LoraFineTune validation tables: a small valid spec, invalid variants
// that each break one rule (with the field the refusal must name), and valid variants
// near the rules' edges. Used by apiserver.test.ts; plain data, no cluster needed.

import { API_VERSION, KIND } from "../../src/index.ts";

export type Manifest = Record<string, unknown> & { spec: Record<string, unknown> };

/** A small valid LoraFineTune; the cases below each break one thing in a copy of it. */
export function base(name: string): Manifest {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name },
    spec: {
      baseModel: { source: { pvc: { claimName: "models", path: "llama-2-7b-hf" } } },
      dataset: { source: { pvc: { claimName: "datasets", path: "alpaca/cleaned.json" } } },
      output: { pvc: { claimName: "runs", path: "alpaca-7b-v3" } },
    },
  };
}

/** Sets `value` at a dotted path under spec (creating objects on the way). */
export function set(manifest: Manifest, path: string, value: unknown): Manifest {
  const keys = path.split(".");
  let node: Record<string, unknown> = manifest;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys.at(-1) as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return manifest;
}

function with_(changes: Record<string, unknown>) {
  return (name: string) => {
    const m = base(name);
    for (const [path, value] of Object.entries(changes)) set(m, path, value);
    return m;
  };
}

export interface InvalidCase {
  name: string;
  manifest: (name: string) => Manifest;
  /** The field the API server's message (and zod's issue path) must name. */
  field: string;
}

const pvc = (path: string) => ({ pvc: { claimName: "runs", path } });

// biome-ignore format: one case per line reads as a table
export const INVALID: InvalidCase[] = [
  // exactly one source
  { name: "baseModel.source with pvc and uri", field: "spec.baseModel.source", manifest: with_({ "spec.baseModel.source.uri": "hf://meta-llama/Llama-2-7b-hf" }) },
  { name: "baseModel.source with no source", field: "spec.baseModel.source", manifest: with_({ "spec.baseModel.source": {} }) },
  { name: "dataset.source with pvc and git", field: "spec.dataset.source", manifest: with_({ "spec.dataset.source.git": { repo: "https://github.com/tloen/alpaca-lora", ref: "main", path: "alpaca_data.json" } }) },
  { name: "output with pvc and uri", field: "spec.output", manifest: with_({ "spec.output.uri": "s3://runs/alpaca" }) },
  { name: "output with no destination", field: "spec.output", manifest: with_({ "spec.output": {} }) },
  // cross-field rules
  { name: "microBatchSize does not divide batchSize", field: "spec.training.microBatchSize", manifest: with_({ "spec.training": { batchSize: 128, microBatchSize: 3 } }) },
  { name: "bf16 on a V100", field: "spec.training.precision", manifest: with_({ "spec.training.precision": "bf16", "spec.resources": { gpus: 1, gpuProduct: "Tesla-V100-SXM2-32GB" } }) },
  { name: "bf16 on a T4", field: "spec.training.precision", manifest: with_({ "spec.training.precision": "bf16", "spec.resources": { gpus: 1, gpuProduct: "Tesla-T4" } }) },
  { name: "int8 without a GPU", field: "spec.training.quantization", manifest: with_({ "spec.training.quantization": "int8", "spec.resources.gpus": 0 }) },
  { name: "nf4 without a GPU", field: "spec.training.quantization", manifest: with_({ "spec.training.quantization": "nf4", "spec.resources.gpus": 0 }) },
  { name: "fp16 without a GPU", field: "spec.training.precision", manifest: with_({ "spec.training.precision": "fp16", "spec.resources.gpus": 0 }) },
  { name: "custom template without its path", field: "spec.dataset.customTemplatePath", manifest: with_({ "spec.dataset.promptTemplate": "custom" }) },
  { name: "bestEvalScore with evaluation disabled", field: "spec.checkpointSelection", manifest: with_({ "spec.checkpointSelection": "bestEvalScore", "spec.evaluation.enabled": false }) },
  { name: "priorityClass without queueName", field: "spec.priorityClass", manifest: with_({ "spec.priorityClass": "loraforge-high" }) },
  { name: "a target module twice", field: "spec.lora.targetModules", manifest: with_({ "spec.lora.targetModules": ["q_proj", "q_proj"] }) },
  // out-of-range values
  { name: "r = 0", field: "spec.lora.r", manifest: with_({ "spec.lora.r": 0 }) },
  { name: "r < 0", field: "spec.lora.r", manifest: with_({ "spec.lora.r": -8 }) },
  { name: "dropout = 1", field: "spec.lora.dropout", manifest: with_({ "spec.lora.dropout": 1 }) },
  { name: "dropout > 1", field: "spec.lora.dropout", manifest: with_({ "spec.lora.dropout": 1.5 }) },
  { name: "learning rate = 0", field: "spec.training.learningRate", manifest: with_({ "spec.training.learningRate": 0 }) },
  { name: "learning rate < 0", field: "spec.training.learningRate", manifest: with_({ "spec.training.learningRate": -0.0003 }) },
  { name: "epochs = 0", field: "spec.training.epochs", manifest: with_({ "spec.training.epochs": 0 }) },
  { name: "unknown target module", field: "spec.lora.targetModules[1]", manifest: with_({ "spec.lora.targetModules": ["q_proj", "lm_head"] }) },
  { name: "no target module", field: "spec.lora.targetModules", manifest: with_({ "spec.lora.targetModules": [] }) },
  { name: "cutoff too small", field: "spec.dataset.cutoffLen", manifest: with_({ "spec.dataset.cutoffLen": 16 }) },
  { name: "negative validation split", field: "spec.dataset.valSetSize", manifest: with_({ "spec.dataset.valSetSize": -1 }) },
  { name: "17 GPUs", field: "spec.resources.gpus", manifest: with_({ "spec.resources.gpus": 17 }) },
  // placement: a toleration without a key tolerates every taint
  { name: "toleration with no key", field: "spec.resources.tolerations", manifest: with_({ "spec.resources.tolerations": [{ operator: "Exists" }] }) },
  { name: "toleration with an empty key", field: "spec.resources.tolerations", manifest: with_({ "spec.resources.tolerations": [{ key: "nvidia.com/gpu", operator: "Exists" }, { key: "", operator: "Exists", effect: "NoSchedule" }] }) },
  { name: "grace period below 10 s", field: "spec.resources.terminationGracePeriodSeconds", manifest: with_({ "spec.resources.terminationGracePeriodSeconds": 5 }) },
  { name: "grace period above an hour", field: "spec.resources.terminationGracePeriodSeconds", manifest: with_({ "spec.resources.terminationGracePeriodSeconds": 3601 }) },
  // paths that escape their volume
  { name: "output path climbs out", field: "spec.output.pvc.path", manifest: with_({ "spec.output": pvc("../other-run") }) },
  { name: "output path climbs out midway", field: "spec.output.pvc.path", manifest: with_({ "spec.output": pvc("runs/../../etc") }) },
  { name: "output path is absolute", field: "spec.output.pvc.path", manifest: with_({ "spec.output": pvc("/etc/cron.d") }) },
  { name: "model path is ..", field: "spec.baseModel.source.pvc.path", manifest: with_({ "spec.baseModel.source.pvc.path": ".." }) },
  { name: "dataset path in git climbs out", field: "spec.dataset.source.git.path", manifest: with_({ "spec.dataset.source": { git: { repo: "https://github.com/tloen/alpaca-lora", ref: "main", path: "../../secrets.json" } } }) },
  // URI schemes
  { name: "file:// model", field: "spec.baseModel.source.uri", manifest: with_({ "spec.baseModel.source": { uri: "file:///models/llama-2-7b-hf" } }) },
  { name: "http:// dataset", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "http://example.com/alpaca.json" } }) },
  { name: "ftp:// output", field: "spec.output.uri", manifest: with_({ "spec.output": { uri: "ftp://example.com/runs" } }) },
  { name: "git repo over ssh", field: "spec.dataset.source.git.repo", manifest: with_({ "spec.dataset.source": { git: { repo: "git@github.com:tloen/alpaca-lora.git", ref: "main", path: "alpaca_data.json" } } }) },
  // https hosts that are never a source, and host forms URL parsers read differently
  { name: "cloud metadata endpoint", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://169.254.169.254/latest/meta-data/iam/security-credentials/" } }) },
  { name: "loopback model", field: "spec.baseModel.source.uri", manifest: with_({ "spec.baseModel.source": { uri: "https://127.0.0.1:8443/models/llama" } }) },
  { name: "https output (only s3 outputs can be written)", field: "spec.output.uri", manifest: with_({ "spec.output": { uri: "https://example.com/runs" } }) },
  { name: "secretName on a pvc dataset", field: "spec.dataset.source.secretName", manifest: with_({ "spec.dataset.source.secretName": "creds" }) },
  { name: "secretName on a pvc output", field: "spec.output.secretName", manifest: with_({ "spec.output.secretName": "creds" }) },
  { name: "0.0.0.0 output", field: "spec.output.uri", manifest: with_({ "spec.output": { uri: "https://0.0.0.0/runs" } }) },
  { name: "IPv6 loopback", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[::1]/alpaca.json" } }) },
  { name: "IPv6 loopback written long", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[0:0:0:0:0:0:0:1]/alpaca.json" } }) },
  { name: "IPv4-mapped IPv6", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[::ffff:a9fe:a9fe]/latest" } }) },
  { name: "IPv4-mapped IPv6, dotted", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[::ffff:169.254.169.254]/latest" } }) },
  { name: "NAT64 of the metadata endpoint", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[64:ff9b::a9fe:a9fe]/latest" } }) },
  { name: "IPv6 link-local", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[fe80::1]/alpaca.json" } }) },
  { name: "IPv6 zone", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://[fe80::1%25eth0]/alpaca.json" } }) },
  { name: "localhost", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://localhost:9000/alpaca.json" } }) },
  { name: "a name under localhost", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://Data.LocalHost./alpaca.json" } }) },
  { name: "GCP metadata name", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://metadata.google.internal/computeMetadata/v1/" } }) },
  { name: "IPv4 as one decimal number", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://2852039166/latest" } }) },
  { name: "IPv4 in hex", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://0xa9.0xfe.0xa9.0xfe/latest" } }) },
  { name: "IPv4 in octal", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://0251.0376.0251.0376/latest" } }) },
  { name: "IPv4 shortened", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://127.1/alpaca.json" } }) },
  { name: "percent-encoded host", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://%31%36%39.254.169.254/latest" } }) },
  { name: "user info before the host", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://example.com@169.254.169.254/latest" } }) },
  { name: "backslash before '@'", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://169.254.169.254\\@example.com/latest" } }) },
  { name: "non-ASCII digits in the host", field: "spec.dataset.source.uri", manifest: with_({ "spec.dataset.source": { uri: "https://\uff11\uff12\uff17.0.0.1/alpaca.json" } }) },
  { name: "git repo on the metadata endpoint", field: "spec.dataset.source.git.repo", manifest: with_({ "spec.dataset.source": { git: { repo: "https://169.254.169.254/repo.git", ref: "main", path: "alpaca_data.json" } } }) },
  { name: "git repo on localhost", field: "spec.dataset.source.git.repo", manifest: with_({ "spec.dataset.source": { git: { repo: "https://localhost/repo.git", ref: "main", path: "alpaca_data.json" } } }) },
  // tolerations the Job's validation would refuse
  { name: "toleration Exists with a value", field: "spec.resources.tolerations[0].value", manifest: with_({ "spec.resources.tolerations": [{ key: "nvidia.com/gpu", operator: "Exists", value: "present" }] }) },
  { name: "toleration without key and with Equal", field: "spec.resources.tolerations[0].operator", manifest: with_({ "spec.resources.tolerations": [{ effect: "NoSchedule" }] }) },
  { name: "toleration key that is not a label key", field: "spec.resources.tolerations[0].key", manifest: with_({ "spec.resources.tolerations": [{ key: "gpu pool!", operator: "Exists" }] }) },
  { name: "toleration key prefix over 253 characters", field: "spec.resources.tolerations[0].key", manifest: with_({ "spec.resources.tolerations": [{ key: `${"a".repeat(254)}/gpu`, operator: "Exists" }] }) },
  { name: "toleration value that is not a label value", field: "spec.resources.tolerations[0].value", manifest: with_({ "spec.resources.tolerations": [{ key: "pool", value: "v100 only" }] }) },
  { name: "tolerationSeconds without NoExecute", field: "spec.resources.tolerations[0].tolerationSeconds", manifest: with_({ "spec.resources.tolerations": [{ key: "pool", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 60 }] }) },
  // wrong types and shapes
  { name: "r as a string", field: "spec.lora.r", manifest: with_({ "spec.lora.r": "16" }) },
  { name: "fractional epochs", field: "spec.training.epochs", manifest: with_({ "spec.training.epochs": 1.5 }) },
  { name: "trainOnInputs as a string", field: "spec.dataset.trainOnInputs", manifest: with_({ "spec.dataset.trainOnInputs": "yes" }) },
  { name: "unknown precision", field: "spec.training.precision", manifest: with_({ "spec.training.precision": "fp8" }) },
  { name: "unknown field", field: "spec.lora.rank", manifest: with_({ "spec.lora.rank": 16 }) },
  { name: "no dataset", field: "spec.dataset", manifest: with_({ "spec.dataset": undefined }) },
  { name: "suspend as a string", field: "spec.suspend", manifest: with_({ "spec.suspend": "true" }) },
  { name: "name that is not a DNS label", field: "metadata.name", manifest: (n) => set(base(n), "metadata.name", `Bad_${n}`) },
];

// biome-ignore format: one case per line reads as a table
export const VALID: { name: string; manifest: (name: string) => Manifest }[] = [
  { name: "bf16 on an A100", manifest: with_({ "spec.training.precision": "bf16", "spec.resources": { gpus: 1, gpuProduct: "NVIDIA-A100-SXM4-80GB" } }) },
  { name: "fp16 with nf4 on a V100", manifest: with_({ "spec.training": { precision: "fp16", quantization: "nf4" }, "spec.resources": { gpus: 1, gpuProduct: "Tesla-V100-SXM2-32GB" } }) },
  { name: "a Kueue queue and priority class", manifest: with_({ "spec.queueName": "v100-queue", "spec.priorityClass": "loraforge-high" }) },
  { name: "fp32 on CPU", manifest: with_({ "spec.training.precision": "fp32", "spec.resources.gpus": 0 }) },
  { name: "credentials Secrets for an hf model, a git dataset and an s3 output", manifest: with_({ "spec.baseModel.source": { uri: "hf://org/private", secretName: "hf-token" }, "spec.dataset.source": { git: { repo: "https://git.example.com/data.git", ref: "0123456789abcdef0123456789abcdef01234567", path: "alpaca.json" }, secretName: "git-creds" }, "spec.output": { uri: "s3://runs/alpaca", secretName: "s3-creds" } }) },
  { name: "hf:// model, s3:// output", manifest: with_({ "spec.baseModel.source": { uri: "hf://meta-llama/Llama-2-7b-hf" }, "spec.output": { uri: "s3://runs/alpaca" } }) },
  { name: "dataset from git", manifest: with_({ "spec.dataset.source": { git: { repo: "https://github.com/tloen/alpaca-lora", ref: "8bb8579", path: "alpaca_data_cleaned.json" } } }) },
  { name: "custom template with its path", manifest: with_({ "spec.dataset.promptTemplate": "custom", "spec.dataset.customTemplatePath": "templates/vicuna.json" }) },
  { name: "dots inside a name are not traversal", manifest: with_({ "spec.output": pvc("runs/v1..2/..hidden") }) },
  { name: "a keyed toleration and a grace period", manifest: with_({ "spec.resources.tolerations": [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }], "spec.resources.terminationGracePeriodSeconds": 300 }) },
  { name: "microBatchSize = batchSize", manifest: with_({ "spec.training": { batchSize: 8, microBatchSize: 8 } }) },
  { name: "https model on a public name with a port and query", manifest: with_({ "spec.baseModel.source": { uri: "https://models.example.com:8443/llama-2-7b-hf?rev=main#x" } }) },
  { name: "https dataset on a public IPv4 and a public IPv6", manifest: with_({ "spec.dataset.source": { uri: "https://93.184.216.34/alpaca.json" }, "spec.baseModel.source": { uri: "https://[2606:2800:220:1:248:1893:25c8:1946]/models/tiny" } }) },
  { name: "private addresses pass admission (the operator's allow-list decides)", manifest: with_({ "spec.dataset.source": { uri: "https://10.0.0.5/alpaca.json" }, "spec.baseModel.source": { uri: "https://[fd00::5]/models/tiny" } }) },
  { name: "a name that merely starts with digits", manifest: with_({ "spec.dataset.source": { uri: "https://127-0-0-1.example.com/alpaca.json" } }) },
  { name: "toleration Exists with a key, Equal with a value, NoExecute with seconds", manifest: with_({ "spec.resources.tolerations": [{ key: "nvidia.com/gpu", operator: "Exists" }, { key: "example.com/pool", value: "v100_32g" }, { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 30 }] }) },
];

/** RFC 7386 JSON merge patch, for computing what zod should see after an update. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}
