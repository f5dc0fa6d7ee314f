// Storing a finished run's result in spec.output. A `pvc` output is the mounted folder the
// trainer wrote into (the operator made it the run's own, `<path>/<run>-<uid>`): nothing to
// copy. An `s3` output uploads, under `<uri>/<run>-<uid>/`, the selected adapter (`adapter/`),
// `eval.json`, the selected checkpoint (`checkpoints/checkpoint-<step>/`), `summary.json`
// and `metrics.jsonl`, then writes `loraforge-complete.json` LAST: a reader that finds the
// marker finds every file. Status then points at the uploaded locations. A result that cannot
// be stored fails the run (SourceFailure: exit 3 when denied or missing, 6 when unreachable);
// it never reports success.

import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { type LoraFineTune, OUTPUT_COMPLETE_MARKER, runOutputFolder } from "@loraforge/crds";
import { z } from "zod";
import type { TrainingResult } from "./pipeline.ts";
import { readCredentials } from "./sources/credentials.ts";
import { SourceFailure } from "./sources/failure.ts";
import { parseS3, putText, s3Client, s3Failure, uploadDir, uploadFile } from "./sources/s3.ts";

export const OutputEnvSchema = z.object({
  LORAFORGE_OUTPUT_SECRET_DIR: z.string().min(1).optional(),
});

export interface LocalResult {
  /** The trainer's output directory (a PVC folder, or the emptyDir of a URI output). */
  outDir: string;
  result: TrainingResult;
}

async function isFile(p: string) {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Stores the result where spec.output says; resolves with the status to report. */
export async function storeOutput(
  lft: LoraFineTune,
  local: LocalResult,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
  log: (line: string) => void = () => {},
): Promise<TrainingResult> {
  const uri = lft.spec.output.uri;
  if (!uri) return local.result;
  if (!uri.startsWith("s3://"))
    throw new SourceFailure(uri, "only s3:// outputs can be uploaded", "permanent", "output");
  const uid = lft.metadata.uid;
  if (typeof uid !== "string" || uid === "")
    throw new SourceFailure(
      uri,
      "the spec file has no metadata.uid to name the run's folder",
      "permanent",
      "output",
    );
  const { bucket, key } = parseS3(uri, "output");
  const folder = [key, runOutputFolder(lft.metadata.name, uid)].filter((s) => s !== "").join("/");
  const root = `s3://${bucket}/${folder}`;
  const creds = await readCredentials(OutputEnvSchema.parse(env).LORAFORGE_OUTPUT_SECRET_DIR);
  const client = s3Client(creds);
  const { adapter, selectedCheckpoint, evaluation } = local.result;
  if (!adapter)
    throw new SourceFailure(uri, "the run produced no adapter to store", "permanent", "output");
  log(`loraforge job: uploading the result to ${root}/`);
  const uploaded: { key: string; bytes: number }[] = [];
  try {
    uploaded.push(...(await uploadDir(client, bucket, `${folder}/adapter`, adapter.path, signal)));
    const evalJson = join(local.outDir, "eval.json");
    if (await isFile(evalJson)) {
      await uploadFile(client, bucket, `${folder}/eval.json`, evalJson, signal);
      uploaded.push({ key: `${folder}/eval.json`, bytes: (await stat(evalJson)).size });
    }
    if (selectedCheckpoint) {
      const prefix = `${folder}/checkpoints/${basename(selectedCheckpoint.path)}`;
      uploaded.push(...(await uploadDir(client, bucket, prefix, selectedCheckpoint.path, signal)));
    }
    for (const name of ["summary.json", "metrics.jsonl", "selection.json"]) {
      const file = join(local.outDir, name);
      if (!(await isFile(file))) continue;
      await uploadFile(client, bucket, `${folder}/${name}`, file, signal);
      uploaded.push({ key: `${folder}/${name}`, bytes: (await stat(file)).size });
    }
    const marker = {
      version: 1,
      run: { name: lft.metadata.name, namespace: lft.metadata.namespace, uid },
      adapter: { path: `${root}/adapter`, digest: adapter.digest, sizeBytes: adapter.sizeBytes },
      files: uploaded,
      completedAt: new Date().toISOString(),
    };
    await putText(
      client,
      bucket,
      `${folder}/${OUTPUT_COMPLETE_MARKER}`,
      `${JSON.stringify(marker, null, 2)}\n`,
      signal,
    );
  } catch (e) {
    throw s3Failure(root, e, "output");
  } finally {
    client.destroy();
  }
  const stored: TrainingResult = { adapter: { ...adapter, path: `${root}/adapter` } };
  if (selectedCheckpoint)
    stored.selectedCheckpoint = {
      ...selectedCheckpoint,
      path: `${root}/checkpoints/${basename(selectedCheckpoint.path)}`,
    };
  if (evaluation)
    stored.evaluation = {
      ...evaluation,
      ...(evaluation.path ? { path: `${root}/eval.json` } : {}),
    };
  return stored;
}

/** The marker of a stored s3 output (for readers such as the tests and the action). */
export const CompleteMarkerSchema = z.object({
  version: z.literal(1),
  adapter: z.object({ path: z.string(), digest: z.string(), sizeBytes: z.number() }),
  files: z.array(z.object({ key: z.string(), bytes: z.number() })),
});
