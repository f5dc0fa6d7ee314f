/**
 * Input paths checked before a command reads them, so a missing file is one line naming the path
 * and what to do, not a raw ENOENT deep in a pipeline (or a dataset of "0 records").
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { LoraFineTuneSpec } from "@loraforge/crds";
import { CliError, UsageError } from "../errors.ts";
import { LocalRunError } from "../train/resolve.ts";

async function kind(path: string): Promise<"file" | "dir" | "missing"> {
  try {
    return (await stat(path)).isDirectory() ? "dir" : "file";
  } catch {
    return "missing";
  }
}

export class MissingInputError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = "MissingInputError";
  }
}

/** `path` must be a readable file; `what` says what it is for the message ("dataset"). */
export async function requireFile(path: string, what: string): Promise<string> {
  const k = await kind(path);
  if (k === "missing") throw new MissingInputError(`${what} ${path}: no such file`);
  if (k === "dir") throw new MissingInputError(`${what} ${path}: is a directory, not a file`);
  return path;
}

const MODEL_HINT =
  "a Hugging Face model directory with config.json and tokenizer.json (loraforge import llama2c makes one from a llama2.c checkpoint)";

/** `dir` must be a model directory: it exists and has config.json. */
export async function requireModelDir(dir: string, hint = MODEL_HINT): Promise<string> {
  const k = await kind(dir);
  if (k === "missing")
    throw new MissingInputError(`model directory ${dir}: does not exist; ${hint}`);
  if (k === "file") throw new MissingInputError(`model directory ${dir}: is a file; ${hint}`);
  if ((await kind(join(dir, "config.json"))) !== "file")
    throw new MissingInputError(`model directory ${dir}: has no config.json; ${hint}`);
  return dir;
}

const ADAPTER_HINT =
  "a PEFT LoRA adapter directory with adapter_config.json and adapter_model.safetensors (loraforge train writes the chosen one to <out>/adapter)";

/** `dir` must be an adapter directory: it exists and has adapter_config.json. */
export async function requireAdapterDir(dir: string, hint = ADAPTER_HINT): Promise<string> {
  const k = await kind(dir);
  if (k === "missing")
    throw new MissingInputError(`adapter directory ${dir}: does not exist; ${hint}`);
  if (k === "file") throw new MissingInputError(`adapter directory ${dir}: is a file; ${hint}`);
  if ((await kind(join(dir, "adapter_config.json"))) !== "file")
    throw new MissingInputError(`adapter directory ${dir}: has no adapter_config.json; ${hint}`);
  return dir;
}

/**
 * For a spec run: the model directory and the dataset a pvc source resolved to must exist; the
 * message names the spec field, the claim and the --volume flag that maps it.
 */
export async function requireSpecInputs(
  spec: LoraFineTuneSpec,
  paths: { modelDir: string; datasetFile: string },
  volumes: Record<string, string>,
): Promise<void> {
  const where = (field: string, claim: string | undefined) =>
    claim === undefined
      ? ""
      : volumes[claim] === undefined
        ? `; ${field}.pvc.claimName is "${claim}" and no --volume ${claim}=DIR was given, so it was looked up beside the spec file`
        : `; ${field}.pvc.claimName "${claim}" is --volume ${claim}=${volumes[claim]}`;
  const model = spec.baseModel.source.pvc?.claimName;
  const mk = await kind(paths.modelDir);
  if (mk !== "dir" || (await kind(join(paths.modelDir, "config.json"))) !== "file")
    throw new LocalRunError(
      "baseModel.source",
      `model directory ${paths.modelDir}: ${mk === "missing" ? "does not exist" : mk === "file" ? "is a file" : "has no config.json"}${where("baseModel.source", model)}`,
    );
  const data = spec.dataset.source.pvc?.claimName;
  const dk = await kind(paths.datasetFile);
  if (dk !== "file")
    throw new LocalRunError(
      "dataset.source",
      `dataset ${paths.datasetFile}: ${dk === "missing" ? "no such file" : "is a directory, not a file"}${where("dataset.source", data)}`,
    );
}

/** `--volume CLAIM=DIR` flags (train, eval) as claimName -> local directory. */
export function parseVolumes(values: string[] | undefined): Record<string, string> {
  const volumes: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf("=");
    if (eq <= 0 || eq === v.length - 1)
      throw new UsageError(`--volume wants CLAIM=DIR, got "${v}"`, "train");
    volumes[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return volumes;
}
