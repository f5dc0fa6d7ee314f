/**
 * Where a LoraFineTune's inputs and outputs are on this machine. A local run reads files only:
 * a `pvc` source is a directory given with --volume CLAIM=DIR (by default the spec file's own
 * directory); URI, git and image sources need the cluster (the trainer Job fetches them).
 */
import { dirname, isAbsolute, resolve } from "node:path";
import type { LoraFineTuneSpec } from "@loraforge/crds";
import { CliError } from "../errors.ts";

export interface LocalPaths {
  modelDir: string;
  datasetFile: string;
  customTemplateFile?: string;
  outDir: string;
  baseModelName: string;
}

export class LocalRunError extends CliError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`spec.${field}: ${message}`);
    this.name = "LocalRunError";
  }
}

export interface ResolveOptions {
  specFile: string;
  /** claimName -> local directory */
  volumes: Record<string, string>;
  /** --out: overrides spec.output */
  outDir?: string;
}

export function resolveLocalPaths(spec: LoraFineTuneSpec, opts: ResolveOptions): LocalPaths {
  const specDir = dirname(resolve(opts.specFile));
  const volume = (claim: string) => {
    const dir = opts.volumes[claim];
    if (dir === undefined) return specDir;
    return isAbsolute(dir) ? dir : resolve(dir);
  };
  const onVolume = (
    field: string,
    src: { pvc?: { claimName: string; path: string } | undefined },
  ) => {
    if (!src.pvc) {
      const kind =
        Object.keys(src).find((k) => (src as Record<string, unknown>)[k] !== undefined) ?? "?";
      throw new LocalRunError(
        `${field}.${kind}`,
        `a local run reads files only; use a pvc source with --volume CLAIM=DIR (the ${kind} source needs the cluster)`,
      );
    }
    return { claim: src.pvc.claimName, file: resolve(volume(src.pvc.claimName), src.pvc.path) };
  };
  const model = onVolume("baseModel.source", spec.baseModel.source);
  const data = onVolume("dataset.source", spec.dataset.source);
  let outDir: string;
  if (opts.outDir !== undefined) outDir = resolve(opts.outDir);
  else if (spec.output.pvc)
    outDir = resolve(volume(spec.output.pvc.claimName), spec.output.pvc.path);
  else throw new LocalRunError("output.uri", "a local run writes to a directory: pass --out DIR");
  const paths: LocalPaths = {
    modelDir: model.file,
    datasetFile: data.file,
    outDir,
    baseModelName: spec.baseModel.name ?? spec.baseModel.source.pvc?.path ?? model.file,
  };
  if (spec.dataset.customTemplatePath !== undefined) {
    paths.customTemplateFile = resolve(volume(data.claim), spec.dataset.customTemplatePath);
  }
  return paths;
}
