import type { LineIndex } from "./lines.ts";

/**
 * Splits a top-level JSON array into its elements without parsing them, so that each element
 * can be parsed (and its errors reported) on its own, with the line it starts on.
 * JSON.parse on the whole file would only say "position 1834221".
 */
export interface ArrayElement {
  index: number;
  start: number;
  end: number;
  line: number;
}

export type ScanResult =
  | { ok: true; elements: ArrayElement[] }
  | { ok: false; offset: number; line: number; message: string; elements: ArrayElement[] };

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export function scanJsonArray(text: string, lines: LineIndex): ScanResult {
  const elements: ArrayElement[] = [];
  const fail = (offset: number, message: string): ScanResult => ({
    ok: false,
    offset,
    line: lines.lineOf(offset),
    message,
    elements,
  });
  const n = text.length;
  let i = 0;
  const skipWs = () => {
    while (i < n && isWs(text.charCodeAt(i))) i++;
  };
  skipWs();
  if (text.charCodeAt(i) !== 0x5b /* [ */) return fail(i, "expected '[' (an array of records)");
  i++;
  skipWs();
  if (text.charCodeAt(i) === 0x5d /* ] */) {
    i++;
    skipWs();
    return i === n ? { ok: true, elements } : fail(i, "unexpected text after the closing ']'");
  }
  for (;;) {
    skipWs();
    if (i >= n) return fail(n, "unexpected end of file inside the array (missing ']'?)");
    const start = i;
    const end = skipValue(text, i);
    if (end < 0) return fail(-end - 1, "unterminated value (a missing quote or bracket?)");
    elements.push({ index: elements.length, start, end, line: lines.lineOf(start) });
    i = end;
    skipWs();
    const c = text.charCodeAt(i);
    if (c === 0x2c /* , */) {
      i++;
      skipWs();
      if (text.charCodeAt(i) === 0x5d) return fail(i, "trailing comma before ']'");
      continue;
    }
    if (c === 0x5d) {
      i++;
      skipWs();
      return i === n ? { ok: true, elements } : fail(i, "unexpected text after the closing ']'");
    }
    if (i >= n) return fail(n, "unexpected end of file inside the array (missing ']'?)");
    return fail(i, `expected ',' or ']' after record ${elements.length - 1}`);
  }
}

/**
 * Returns the offset just past the value starting at `i`, or -(offset+1) of the place where the
 * value runs off the end of the text. Validity of the value itself is left to JSON.parse.
 */
function skipValue(text: string, i: number): number {
  const n = text.length;
  const first = text.charCodeAt(i);
  if (first === 0x22 /* " */) return skipString(text, i);
  if (first === 0x7b /* { */ || first === 0x5b /* [ */) {
    let depth = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        const e = skipString(text, i);
        if (e < 0) return e;
        i = e;
        continue;
      }
      if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -(n + 1);
  }
  // A bare literal (number, true, false, null, or garbage): up to the next delimiter.
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x2c || c === 0x5d || c === 0x7d || isWs(c)) break;
    i++;
  }
  return i;
}

function skipString(text: string, i: number): number {
  const n = text.length;
  i++;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      i += 2;
      continue;
    }
    if (c === 0x22) return i + 1;
    i++;
  }
  return -(n + 1);
}
