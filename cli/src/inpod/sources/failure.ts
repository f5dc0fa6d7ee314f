// How a source or an output that cannot be reached fails the run: one message that names the
// location (never its credentials) and the reason, and the exit code of docs/CONTRACTS.md §2 —
// 3 (invalid input, not retried) when retrying cannot help (404, 403, digest mismatch, size
// limit, no such ref), 6 (io, retried by the Job) when it might (network, 5xx, timeouts).

import { TRAINER_EXIT_CODES } from "@loraforge/crds";
import { TrainingFailure } from "../pipeline.ts";

export type Permanence = "permanent" | "transient";

/** A URL without user info, query or fragment: what logs and status may show. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, "//").replace(/[?#].*$/, "");
  }
}

export class SourceFailure extends TrainingFailure {
  override name = "SourceFailure";
  constructor(
    readonly location: string,
    readonly reason: string,
    permanence: Permanence,
    what = "source",
  ) {
    super(
      `${what} ${redact(location)}: ${reason}`,
      permanence === "permanent" ? TRAINER_EXIT_CODES.invalidInput : TRAINER_EXIT_CODES.io,
    );
  }
}

/** An HTTP status as permanent (4xx but 408/429) or transient (5xx, 408, 429). */
export function statusPermanence(status: number): Permanence {
  return status >= 400 && status < 500 && status !== 408 && status !== 429
    ? "permanent"
    : "transient";
}

/** "1.5 GiB" */
export function bytesText(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
