// s3:// sources and outputs through the AWS SDK (@aws-sdk/client-s3, lib-storage for
// multipart uploads). This module is the only importer of the SDK.
//
// Credentials and the endpoint come from the run's Secret (keys accessKeyId, secretAccessKey,
// sessionToken, region, endpoint); without keys the SDK's default chain is used (IRSA / pod
// identity / instance role). `endpoint` points at an S3-compatible store (MinIO, Ceph RGW,
// versitygw, ...) and switches to path-style addressing, which those stores expect.

import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { Credentials } from "./credentials.ts";
import { type Permanence, SourceFailure, statusPermanence } from "./failure.ts";
import { streamToFile } from "./https.ts";

export interface S3Location {
  bucket: string;
  /** The key, or a prefix without a trailing "/" ("" for the bucket's root). */
  key: string;
}

export function parseS3(uri: string, what = "source"): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!m?.[1])
    throw new SourceFailure(uri, "not an S3 URI: write s3://<bucket>/<key>", "permanent", what);
  const key = (m[2] ?? "").replace(/\/+$/, "");
  if (key.split("/").some((s) => s === "." || s === ".."))
    throw new SourceFailure(uri, "the key may not contain '.' or '..' segments", "permanent", what);
  return { bucket: m[1], key };
}

export function s3Client(c: Credentials): S3Client {
  return new S3Client({
    region: c.region ?? "us-east-1",
    ...(c.endpoint ? { endpoint: c.endpoint, forcePathStyle: true } : {}),
    ...(c.accessKeyId && c.secretAccessKey
      ? {
          credentials: {
            accessKeyId: c.accessKeyId,
            secretAccessKey: c.secretAccessKey,
            ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
          },
        }
      : {}),
    maxAttempts: 3,
  });
}

/** An SDK error as a SourceFailure naming the location and S3's own error code. */
export function s3Failure(location: string, e: unknown, what = "source"): SourceFailure {
  if (e instanceof SourceFailure) return e;
  if (e instanceof S3ServiceException) {
    const status = e.$metadata.httpStatusCode ?? 0;
    const permanence: Permanence = status === 0 ? "transient" : statusPermanence(status);
    return new SourceFailure(
      location,
      `${e.name}${status ? ` (HTTP ${status})` : ""}: ${e.message}`,
      permanence,
      what,
    );
  }
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? (err.cause as NodeJS.ErrnoException | undefined)?.code;
  return new SourceFailure(
    location,
    `${code ? `${code}: ` : ""}${err.message || String(e)}`,
    "transient",
    what,
  );
}

export interface S3Options {
  client: S3Client;
  maxBytes: number;
  signal?: AbortSignal | undefined;
}

/** One object to a local file (atomic). */
export async function fetchS3Object(uri: string, dest: string, o: S3Options) {
  const { bucket, key } = parseS3(uri);
  try {
    const head = await o.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: o.signal,
    });
    if ((head.ContentLength ?? 0) > o.maxBytes)
      throw new SourceFailure(
        uri,
        `${head.ContentLength} bytes exceed the size limit of ${o.maxBytes} bytes`,
        "permanent",
      );
    const got = await o.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: o.signal,
    });
    return await streamToFile(uri, got.Body as Readable, dest, o);
  } catch (e) {
    throw s3Failure(uri, e);
  }
}

/** Every object under `<uri>/` whose relative name `keep` accepts, into `dir`. */
export async function fetchS3Prefix(
  uri: string,
  dir: string,
  o: S3Options & { keep: (name: string) => boolean },
): Promise<string[]> {
  const { bucket, key } = parseS3(uri);
  const prefix = key === "" ? "" : `${key}/`;
  const names: { name: string; size: number }[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await o.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        { abortSignal: o.signal },
      );
      for (const obj of page.Contents ?? []) {
        const name = (obj.Key ?? "").slice(prefix.length);
        if (name !== "" && o.keep(name)) names.push({ name, size: obj.Size ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (e) {
    throw s3Failure(uri, e);
  }
  const total = names.reduce((s, n) => s + n.size, 0);
  if (total > o.maxBytes)
    throw new SourceFailure(
      uri,
      `${total} bytes under the prefix exceed the size limit of ${o.maxBytes} bytes`,
      "permanent",
    );
  for (const { name } of names)
    await fetchS3Object(`s3://${bucket}/${prefix}${name}`, join(dir, name), o);
  return names.map((n) => n.name);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** Uploads one file (multipart above 8 MiB) and returns its key. */
export async function uploadFile(
  client: S3Client,
  bucket: string,
  key: string,
  file: string,
  signal?: AbortSignal,
): Promise<string> {
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: createReadStream(file) },
    queueSize: 2,
    partSize: 8 * 1024 * 1024,
  });
  if (signal) signal.addEventListener("abort", () => void upload.abort(), { once: true });
  await upload.done();
  return key;
}

/** Uploads every file under `dir` to `<prefix>/<relative path>`; resolves with the keys. */
export async function uploadDir(
  client: S3Client,
  bucket: string,
  prefix: string,
  dir: string,
  signal?: AbortSignal,
): Promise<{ key: string; bytes: number }[]> {
  const done: { key: string; bytes: number }[] = [];
  for (const file of await filesUnder(dir)) {
    const key = `${prefix}/${relative(dir, file).split(sep).join("/")}`;
    await uploadFile(client, bucket, key, file, signal);
    done.push({ key, bytes: (await stat(file)).size });
  }
  return done;
}

export async function putText(
  client: S3Client,
  bucket: string,
  key: string,
  body: string,
  signal?: AbortSignal,
): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" }),
    { abortSignal: signal },
  );
}
