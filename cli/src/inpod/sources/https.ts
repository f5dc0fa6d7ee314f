// One file over HTTPS: streamed to a temporary file beside the target, hashed and counted on
// the way, renamed into place only when whole, within the size limit and (when pinned) equal to
// its sha256. Redirects are followed (the Hub answers with one to its CDN), never to a
// non-https URL, and the Authorization header is not carried to another origin.

import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { request } from "node:https";
import { dirname, join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { bytesText, SourceFailure, statusPermanence } from "./failure.ts";

export interface DownloadOptions {
  /** Hex sha256 the bytes must have. */
  sha256?: string | undefined;
  /** Abort above this many bytes. */
  maxBytes: number;
  headers?: Record<string, string>;
  /** Extra trusted CA certificates (PEM), e.g. an internal mirror's. */
  ca?: string | undefined;
  signal?: AbortSignal | undefined;
  /** What the error message calls the thing ("source", "output"). */
  what?: string;
}

export interface Downloaded {
  path: string;
  sha256: string;
  bytes: number;
}

const MAX_REDIRECTS = 5;
const TIMEOUT_MS = 60_000;

/** `https://host/file#sha256=<hex>`: the pin a URI source may carry in its fragment. */
export function splitPin(uri: string): { url: string; sha256: string | undefined } {
  const hash = uri.indexOf("#");
  if (hash < 0) return { url: uri, sha256: undefined };
  const fragment = uri.slice(hash + 1);
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(fragment);
  if (!m?.[1])
    throw new SourceFailure(
      uri.slice(0, hash),
      `the fragment "#${fragment}" is not a pin: write #sha256=<64 hex digits>`,
      "permanent",
    );
  return { url: uri.slice(0, hash), sha256: m[1].toLowerCase() };
}

function get(url: URL, opts: DownloadOptions, headers: Record<string, string>) {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(
      url,
      { headers, ca: opts.ca, signal: opts.signal, timeout: TIMEOUT_MS },
      resolve,
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on("error", reject);
    req.end();
  });
}

/** Opens the URL, following redirects; resolves with a 200 response. */
export async function openHttps(location: string, opts: DownloadOptions): Promise<IncomingMessage> {
  const what = opts.what ?? "source";
  let url = new URL(location);
  let headers = { "user-agent": "loraforge", ...(opts.headers ?? {}) };
  for (let hop = 0; ; hop++) {
    if (url.protocol !== "https:")
      throw new SourceFailure(
        location,
        `refusing a non-https URL (${url.protocol})`,
        "permanent",
        what,
      );
    let res: IncomingMessage;
    try {
      res = await get(url, opts, headers);
    } catch (e) {
      throw new SourceFailure(location, (e as Error).message, "transient", what);
    }
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS)
        throw new SourceFailure(
          location,
          `more than ${MAX_REDIRECTS} redirects`,
          "permanent",
          what,
        );
      const next = new URL(res.headers.location, url);
      if (next.origin !== url.origin) {
        const { authorization: _, ...rest } = headers as Record<string, string>;
        headers = rest as typeof headers;
      }
      url = next;
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new SourceFailure(
        location,
        `HTTP ${status} ${res.statusMessage ?? ""}`.trim(),
        statusPermanence(status),
        what,
      );
    }
    return res;
  }
}

/** Downloads `url` to `dest` atomically; checks size and digest before the rename. */
export async function downloadHttps(
  location: string,
  dest: string,
  opts: DownloadOptions,
): Promise<Downloaded> {
  const what = opts.what ?? "source";
  const res = await openHttps(location, opts);
  const declared = Number(res.headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    res.destroy();
    throw new SourceFailure(
      location,
      `${bytesText(declared)} exceeds the size limit of ${bytesText(opts.maxBytes)}`,
      "permanent",
      what,
    );
  }
  return streamToFile(location, res, dest, opts);
}

/** Streams a body to `dest` atomically (temp file beside it + rename), hashing and counting. */
export async function streamToFile(
  location: string,
  body: NodeJS.ReadableStream,
  dest: string,
  opts: Pick<DownloadOptions, "sha256" | "maxBytes" | "signal" | "what">,
): Promise<Downloaded> {
  const what = opts.what ?? "source";
  await mkdir(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${randomBytes(6).toString("hex")}.partial`);
  const hash = createHash("sha256");
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > opts.maxBytes) {
        done(
          new SourceFailure(
            location,
            `more than ${bytesText(opts.maxBytes)} (the size limit); aborted after ${bytesText(bytes)}`,
            "permanent",
            what,
          ),
        );
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, meter, createWriteStream(tmp, { flags: "wx" }), { signal: opts.signal });
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof SourceFailure) throw e;
    throw new SourceFailure(
      location,
      `download interrupted: ${(e as Error).message}`,
      "transient",
      what,
    );
  }
  const digest = hash.digest("hex");
  if (opts.sha256 && digest !== opts.sha256.toLowerCase()) {
    await rm(tmp, { force: true });
    throw new SourceFailure(
      location,
      `sha256 mismatch: expected ${opts.sha256.toLowerCase()}, got ${digest} (${bytesText(bytes)})`,
      "permanent",
      what,
    );
  }
  await rename(tmp, dest);
  return { path: dest, sha256: digest, bytes };
}
