// hf:// sources through the Hugging Face Hub's file API (what huggingface_hub does):
//   model:   hf://<org>/<name>[@<revision>]            → the model's files into a directory
//   dataset: hf://datasets/<org>/<name>[@<revision>]/<path/in/repo> → one file
// The revision (default "main") is resolved to a commit first (`/api/{models,datasets}/<repo>/
// revision/<rev>`), and every file is fetched from `/<repo>/resolve/<commit>/<file>` at that
// commit, so a push during the download cannot mix two versions. A token (Secret key `token`)
// goes as `Authorization: Bearer`; the Hub redirects downloads to its CDN, which gets no token.
// The endpoint is HF_ENDPOINT (huggingface_hub's variable), default https://huggingface.co.

import { join } from "node:path";
import { z } from "zod";
import { SourceFailure } from "./failure.ts";
import { type DownloadOptions, downloadHttps, openHttps } from "./https.ts";

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

export interface HfRef {
  kind: "model" | "dataset";
  repo: string;
  revision: string;
  /** A dataset's file in the repository. */
  path: string | undefined;
}

const NAME = "[A-Za-z0-9][-A-Za-z0-9_.]*";
const HF_MODEL = new RegExp(`^hf://(${NAME}/${NAME})(?:@([^/]+))?/?$`);
const HF_DATASET = new RegExp(`^hf://datasets/(${NAME}/${NAME})(?:@([^/]+))?/(.+)$`);

export function parseHf(uri: string, kind: HfRef["kind"]): HfRef {
  const m = (kind === "model" ? HF_MODEL : HF_DATASET).exec(uri);
  const example =
    kind === "model"
      ? "hf://<org>/<name>[@<revision>]"
      : "hf://datasets/<org>/<name>[@<revision>]/<file>";
  if (!m?.[1])
    throw new SourceFailure(uri, `not a ${kind} on the Hub: write ${example}`, "permanent");
  const path = m[3];
  if (path?.split("/").some((s) => s === ".." || s === "."))
    throw new SourceFailure(uri, "the file path may not contain '.' or '..' segments", "permanent");
  return { kind, repo: m[1], revision: decodeURIComponent(m[2] ?? "main"), path };
}

/** The files of a model directory the trainer reads (weights, config, tokenizer). */
export function isModelFile(name: string): boolean {
  if (name.includes("/")) return false;
  return (
    name.endsWith(".safetensors") ||
    name === "model.safetensors.index.json" ||
    /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map)\.json$/.test(name) ||
    name === "tokenizer.model"
  );
}

const RevisionSchema = z.object({
  sha: z.string().regex(/^[0-9a-f]{40}$/),
  siblings: z.array(z.object({ rfilename: z.string() })).default([]),
});

export interface HfOptions extends Omit<DownloadOptions, "headers" | "sha256"> {
  endpoint?: string | undefined;
  token?: string | undefined;
}

async function revisionInfo(ref: HfRef, o: HfOptions) {
  const endpoint = (o.endpoint ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, "");
  const api = `${endpoint}/api/${ref.kind === "model" ? "models" : "datasets"}/${ref.repo}/revision/${encodeURIComponent(ref.revision)}`;
  const headers: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
  const res = await openHttps(api, { ...o, headers });
  let text = "";
  for await (const chunk of res) {
    text += chunk;
    if (text.length > 16 * 1024 * 1024)
      throw new SourceFailure(api, "the revision listing is over 16 MiB", "permanent");
  }
  let parsed: z.infer<typeof RevisionSchema>;
  try {
    parsed = RevisionSchema.parse(JSON.parse(text));
  } catch (e) {
    throw new SourceFailure(
      api,
      `unexpected answer: ${(e as Error).message.slice(0, 300)}`,
      "permanent",
    );
  }
  return { endpoint, headers, ...parsed };
}

const fileUrl = (endpoint: string, ref: HfRef, sha: string, file: string) =>
  `${endpoint}/${ref.kind === "dataset" ? "datasets/" : ""}${ref.repo}/resolve/${sha}/${file.split("/").map(encodeURIComponent).join("/")}`;

/** Downloads a model's files into `dir`; resolves with the commit they came from. */
export async function fetchHfModel(uri: string, dir: string, o: HfOptions): Promise<string> {
  const ref = parseHf(uri, "model");
  const info = await revisionInfo(ref, o);
  const files = info.siblings.map((s) => s.rfilename).filter(isModelFile);
  if (!files.includes("config.json"))
    throw new SourceFailure(
      uri,
      `commit ${info.sha} has no config.json: not a model directory`,
      "permanent",
    );
  let budget = o.maxBytes;
  for (const file of files.sort()) {
    const got = await downloadHttps(fileUrl(info.endpoint, ref, info.sha, file), join(dir, file), {
      ...o,
      maxBytes: budget,
      headers: info.headers,
    });
    budget -= got.bytes;
  }
  return info.sha;
}

/** Downloads one dataset file to `dest`; resolves with the commit it came from. */
export async function fetchHfDatasetFile(uri: string, dest: string, o: HfOptions): Promise<string> {
  const ref = parseHf(uri, "dataset");
  const info = await revisionInfo(ref, o);
  await downloadHttps(fileUrl(info.endpoint, ref, info.sha, ref.path as string), dest, {
    ...o,
    headers: info.headers,
  });
  return info.sha;
}
