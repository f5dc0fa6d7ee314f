// How big is the base model? The operator cannot read the model's config.json (it lives
// on a PVC or behind a URI the operator never mounts), so the size comes from, in order:
//   1. the annotation loraforge.dev/model-params ("7e9", "6.7B", "13b", "260K");
//   2. a size token in the model's name, path or URI ("llama-2-7b-hf" → 7e9);
// and is unknown otherwise (the memory check is then skipped and the condition says so).

import type { LoraFineTune } from "@loraforge/crds";
import { MODEL_PARAMS_ANNOTATION } from "./naming.ts";

export interface ModelSize {
  params: number;
  /** Where the number came from, for condition messages. */
  source: string;
}

const SUFFIX: Record<string, number> = { k: 1e3, m: 1e6, b: 1e9, t: 1e12 };

/** "7e9", "7000000000", "6.7B", "13b", "260K" → a count; undefined when unparseable. */
export function parseParamCount(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  const plain = /^\d+(\.\d+)?(e\d+)?$/.exec(t);
  if (plain) {
    const n = Number(t);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  }
  const suffixed = /^(\d+(?:\.\d+)?)\s*([kmbt])$/.exec(t);
  if (suffixed?.[1] && suffixed[2]) return Number(suffixed[1]) * (SUFFIX[suffixed[2]] ?? 1);
  return undefined;
}

/** A "<number><k|m|b>" token between separators, as in model names ("Llama-2-13b-hf"). */
const NAME_TOKEN = /(?:^|[-_/.:])(\d+(?:\.\d+)?)([kmb])(?=$|[-_/.:])/gi;

export function paramsFromName(name: string): number | undefined {
  let found: number | undefined;
  for (const m of name.matchAll(NAME_TOKEN)) {
    if (!m[1] || !m[2]) continue;
    found = Number(m[1]) * (SUFFIX[m[2].toLowerCase()] ?? 1);
  }
  return found;
}

export type ModelSizeResult =
  | { ok: true; size: ModelSize | undefined }
  | { ok: false; message: string };

export function modelSizeOf(lft: LoraFineTune): ModelSizeResult {
  const annotation = lft.metadata.annotations?.[MODEL_PARAMS_ANNOTATION];
  if (annotation !== undefined) {
    const params = parseParamCount(annotation);
    if (params === undefined) {
      return {
        ok: false,
        message: `metadata.annotations["${MODEL_PARAMS_ANNOTATION}"]: "${annotation}" is not a parameter count (use e.g. 7e9 or 13B)`,
      };
    }
    return { ok: true, size: { params, source: `annotation ${MODEL_PARAMS_ANNOTATION}` } };
  }
  const src = lft.spec.baseModel.source;
  const candidates = [
    lft.spec.baseModel.name,
    src.pvc?.path,
    src.uri,
    src.image ? `${src.image.reference}/${src.image.path}` : undefined,
  ];
  for (const c of candidates) {
    if (!c) continue;
    const params = paramsFromName(c);
    if (params !== undefined)
      return { ok: true, size: { params, source: `the model name "${c}"` } };
  }
  return { ok: true, size: undefined };
}
