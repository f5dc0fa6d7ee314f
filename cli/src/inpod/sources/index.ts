// Where the trainer finds its model and dataset in the pod. A `pvc` source is a mount the
// operator made (LORAFORGE_MODEL_DIR / LORAFORGE_DATASET_PATH), an `image` model is copied by
// the Job's init container into the same variable's folder; `uri` (https, s3, hf) and `git`
// sources are fetched here, into LORAFORGE_SOURCES_DIR, with the Secret named by the source's
// `secretName` mounted at LORAFORGE_{MODEL,DATASET}_SECRET_DIR. A source that cannot be
// fetched fails the run with its location and the reason (SourceFailure: exit 3, or 6 when a
// retry may help).

import { access, mkdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import type { LoraFineTuneSpec } from "@loraforge/crds";
import { z } from "zod";
import { readCredentials } from "./credentials.ts";
import { SourceFailure } from "./failure.ts";
import { fetchGit } from "./git.ts";
import { fetchHfDatasetFile, fetchHfModel, isModelFile, parseHf } from "./hf.ts";
import { downloadHttps, splitPin } from "./https.ts";
import { fetchHttpsModel } from "./httpsModel.ts";
import { fetchS3Object, fetchS3Prefix, parseS3, s3Client } from "./s3.ts";

const GiB = 1024 ** 3;
const bytes = (fallback: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number of bytes")
    .default(String(fallback))
    .transform(Number);

/** The pod's environment for sources (set by operator/src/builders/job.ts). */
export const SourcesEnvSchema = z.object({
  LORAFORGE_SOURCES_DIR: z.string().min(1).default("/tmp/loraforge-sources"),
  LORAFORGE_MODEL_SECRET_DIR: z.string().min(1).optional(),
  LORAFORGE_DATASET_SECRET_DIR: z.string().min(1).optional(),
  LORAFORGE_MODEL_MAX_BYTES: bytes(1024 * GiB),
  LORAFORGE_DATASET_MAX_BYTES: bytes(10 * GiB),
  /** Extra CA certificates (PEM file) for https, git and hf sources. */
  LORAFORGE_CA_FILE: z.string().min(1).optional(),
  HF_ENDPOINT: z.string().url().optional(),
});
export type SourcesEnv = z.output<typeof SourcesEnvSchema>;

export function parseSourcesEnv(env: NodeJS.ProcessEnv): SourcesEnv {
  const r = SourcesEnvSchema.safeParse(env);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new SourceFailure(
      `environment ${first?.path.join(".")}`,
      first?.message ?? "invalid",
      "permanent",
      "setting",
    );
  }
  return r.data;
}

export interface ResolvedSources {
  modelDir: string;
  datasetFile: string;
  customTemplateFile?: string;
  baseModelName: string;
}

export interface ResolveContext {
  /** LORAFORGE_MODEL_DIR and LORAFORGE_DATASET_PATH: what the Job mounted (pvc, image). */
  mounted: { modelDir: string | undefined; datasetPath: string | undefined };
  env: SourcesEnv;
  signal?: AbortSignal | undefined;
  log: (line: string) => void;
}

async function readCa(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  const { readFile } = await import("node:fs/promises");
  // The extra CA is added to Node's defaults, not instead of them.
  const { rootCertificates } = await import("node:tls");
  return [...rootCertificates, await readFile(file, "utf8")].join("\n");
}

/** The template file next to a dataset URI (customTemplatePath is relative to its folder). */
function siblingUri(uri: string, path: string): string {
  if (uri.startsWith("s3://") || uri.startsWith("hf://")) {
    const noPin = uri.replace(/#.*$/, "");
    const slash = noPin.lastIndexOf("/");
    return `${noPin.slice(0, slash)}/${posix.normalize(path)}`;
  }
  return new URL(path, splitPin(uri).url).toString();
}

export async function resolveSources(
  spec: LoraFineTuneSpec,
  ctx: ResolveContext,
): Promise<ResolvedSources> {
  const { env } = ctx;
  const ca = await readCa(env.LORAFORGE_CA_FILE);
  const model = spec.baseModel.source;
  const data = spec.dataset.source;

  // ── the model ──
  let modelDir: string;
  if (model.uri) {
    modelDir = join(env.LORAFORGE_SOURCES_DIR, "model");
    const creds = await readCredentials(env.LORAFORGE_MODEL_SECRET_DIR);
    const common = { maxBytes: env.LORAFORGE_MODEL_MAX_BYTES, signal: ctx.signal, ca };
    ctx.log(`loraforge job: fetching the model from ${model.uri}`);
    if (model.uri.startsWith("hf://")) {
      const sha = await fetchHfModel(model.uri, modelDir, {
        ...common,
        endpoint: env.HF_ENDPOINT,
        token: creds.token,
      });
      ctx.log(`loraforge job: model at commit ${sha}`);
    } else if (model.uri.startsWith("s3://")) {
      parseS3(model.uri);
      const files = await fetchS3Prefix(model.uri, modelDir, {
        ...common,
        client: s3Client(creds),
        keep: isModelFile,
      });
      if (!files.includes("config.json"))
        throw new SourceFailure(model.uri, "no config.json under this prefix", "permanent");
    } else {
      await fetchHttpsModel(model.uri, modelDir, {
        ...common,
        headers: creds.token ? { authorization: `Bearer ${creds.token}` } : {},
      });
    }
  } else if (ctx.mounted.modelDir) {
    modelDir = ctx.mounted.modelDir;
  } else {
    throw new SourceFailure(
      "baseModel.source",
      "LORAFORGE_MODEL_DIR is not set: the Job does not mount the model (an operator older than this trainer?)",
      "permanent",
      "spec",
    );
  }

  // ── the dataset ──
  let datasetFile: string;
  let customTemplateFile: string | undefined;
  const tpl = spec.dataset.customTemplatePath;
  const maxBytes = env.LORAFORGE_DATASET_MAX_BYTES;
  if (data.git) {
    const dir = join(env.LORAFORGE_SOURCES_DIR, "dataset-repo");
    const creds = await readCredentials(env.LORAFORGE_DATASET_SECRET_DIR);
    // git's http.sslCAInfo replaces the system's CAs: give it the defaults plus the extra ones.
    let caFile: string | undefined;
    if (ca) {
      await mkdir(env.LORAFORGE_SOURCES_DIR, { recursive: true });
      caFile = join(env.LORAFORGE_SOURCES_DIR, "ca-bundle.pem");
      await writeFile(caFile, ca);
    }
    const head = await fetchGit({
      repo: data.git.repo,
      ref: data.git.ref,
      dir,
      maxBytes,
      credentials: creds,
      caFile,
      signal: ctx.signal,
      log: ctx.log,
    });
    ctx.log(`loraforge job: dataset repository at commit ${head}`);
    datasetFile = join(dir, data.git.path);
    const where = `${data.git.repo}@${data.git.ref}`;
    const isFile = await stat(datasetFile).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!isFile)
      throw new SourceFailure(where, `no file ${data.git.path} at commit ${head}`, "permanent");
    if (tpl) customTemplateFile = join(dir, tpl);
  } else if (data.uri) {
    const uri = data.uri;
    const dir = join(env.LORAFORGE_SOURCES_DIR, "dataset");
    const creds = await readCredentials(env.LORAFORGE_DATASET_SECRET_DIR);
    const name = (u: string) => posix.basename(u.replace(/[?#].*$/, "")) || "dataset.json";
    const fetchFile = async (u: string, dest: string) => {
      if (u.startsWith("hf://")) {
        await fetchHfDatasetFile(u, dest, {
          maxBytes,
          signal: ctx.signal,
          ca,
          endpoint: env.HF_ENDPOINT,
          token: creds.token,
        });
      } else if (u.startsWith("s3://")) {
        await fetchS3Object(u, dest, { client: s3Client(creds), maxBytes, signal: ctx.signal });
      } else {
        const { url, sha256 } = splitPin(u);
        await downloadHttps(url, dest, {
          maxBytes,
          sha256,
          signal: ctx.signal,
          ca,
          headers: creds.token ? { authorization: `Bearer ${creds.token}` } : {},
        });
      }
    };
    if (uri.startsWith("hf://")) parseHf(uri, "dataset");
    ctx.log(`loraforge job: fetching the dataset from ${uri.replace(/#.*$/, "")}`);
    datasetFile = join(dir, name(uri));
    await fetchFile(uri, datasetFile);
    if (tpl) {
      customTemplateFile = join(dir, "template", posix.basename(tpl));
      await fetchFile(siblingUri(uri, tpl), customTemplateFile);
    }
  } else if (ctx.mounted.datasetPath) {
    datasetFile = ctx.mounted.datasetPath;
    const pvc = data.pvc;
    if (tpl && pvc && datasetFile.endsWith(pvc.path)) {
      const volumeRoot = datasetFile.slice(0, datasetFile.length - pvc.path.length);
      customTemplateFile = join(volumeRoot, tpl);
    }
  } else {
    throw new SourceFailure(
      "dataset.source",
      "LORAFORGE_DATASET_PATH is not set: the Job does not mount the dataset",
      "permanent",
      "spec",
    );
  }
  await access(dirname(datasetFile));

  const baseModelName =
    spec.baseModel.name ??
    model.pvc?.path ??
    model.uri?.replace(/#.*$/, "") ??
    model.image?.reference ??
    modelDir;
  return {
    modelDir,
    datasetFile,
    ...(customTemplateFile ? { customTemplateFile } : {}),
    baseModelName,
  };
}
