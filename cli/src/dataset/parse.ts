import { scanJsonArray } from "./jsonArray.ts";
import { LineIndex } from "./lines.ts";
import type { Problem } from "./problems.ts";
import { AlpacaRecordSchema, type DatasetRecord, KNOWN_FIELDS } from "./record.ts";
import { firstInvalidUtf8, lineOfByte } from "./utf8.ts";

export type DatasetFormat = "auto" | "json" | "jsonl";

export interface ParseOptions {
  format?: DatasetFormat;
  /** A record whose source text is longer than this is refused (default 1 MiB). */
  maxRecordBytes?: number;
}

export interface ParsedDataset {
  file: string;
  format: "json" | "jsonl";
  /** Records that can be trained on. Rejected records (empty instruction/output) are not here. */
  records: DatasetRecord[];
  /** Count of records in the file, kept or rejected. */
  total: number;
  rejected: number;
  problems: Problem[];
}

export const DEFAULT_MAX_RECORD_BYTES = 1 << 20;

/**
 * Parses an Alpaca dataset (a JSON array of records, or JSON Lines). Never throws on bad input:
 * every problem is returned, located by line, record and field. Errors mean the file must not be
 * used; warnings (unknown fields, rejected empty records) leave the rest usable.
 */
export function parseDataset(
  bytes: Uint8Array,
  file: string,
  options: ParseOptions = {},
): ParsedDataset {
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const problems: Problem[] = [];
  const result = (
    format: "json" | "jsonl",
    records: DatasetRecord[],
    total: number,
    rejected: number,
  ) => ({ file, format, records, total, rejected, problems }) satisfies ParsedDataset;
  const fallbackFormat = options.format === "jsonl" ? "jsonl" : "json";
  const error = (message: string, extra: Partial<Problem> = {}) => {
    problems.push({ file, message, severity: "error", ...extra });
  };

  if (bytes.length === 0) {
    error("the file is empty (expected a JSON array of records or JSON Lines)", { line: 1 });
    return result(fallbackFormat, [], 0, 0);
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    // Windows editors write one; tools reading UTF-8 JSON commonly skip it (Python's
    // utf-8-sig codec, .NET's System.Text.Json, PowerShell).
    // So do we (TextDecoder drops it below), and say so.
    problems.push({
      file,
      line: 1,
      message:
        "the file starts with a UTF-8 byte-order mark (EF BB BF); it was skipped (save the file as UTF-8 without BOM to silence this)",
      severity: "warning",
    });
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    error("the file is UTF-16 (it starts with a UTF-16 byte-order mark); convert it to UTF-8", {
      line: 1,
    });
    return result(fallbackFormat, [], 0, 0);
  }
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    error(
      `invalid UTF-8 at byte ${bad} (0x${(bytes[bad] as number).toString(16).padStart(2, "0")}); the file must be UTF-8`,
      { line: lineOfByte(bytes, bad) },
    );
    return result(fallbackFormat, [], 0, 0);
  }
  // Drops a leading BOM (ignoreBOM false, the default).
  const text = new TextDecoder("utf-8").decode(bytes);
  const firstChar = text.trimStart()[0];
  if (firstChar === undefined) {
    error("the file holds only whitespace (expected a JSON array of records or JSON Lines)", {
      line: 1,
    });
    return result(fallbackFormat, [], 0, 0);
  }
  let format: "json" | "jsonl";
  if (options.format === "json" || options.format === "jsonl") format = options.format;
  else if (firstChar === "[") format = "json";
  else if (firstChar === "{") format = "jsonl";
  else {
    error(
      `the file starts with '${firstChar}': expected '[' (a JSON array of records) or '{' (JSON Lines)`,
      { line: new LineIndex(text).lineOf(text.length - text.trimStart().length) },
    );
    return result(fallbackFormat, [], 0, 0);
  }

  const records: DatasetRecord[] = [];
  let rejected = 0;
  let total = 0;
  const accept = (value: unknown, index: number, line: number) => {
    total++;
    const rec = checkRecord(value, index, line, file, problems);
    if (rec === "rejected") rejected++;
    else if (rec !== null) records.push(rec);
  };

  if (format === "json") {
    const lines = new LineIndex(text);
    const scan = scanJsonArray(text, lines);
    if (!scan.ok) {
      const rec = scan.elements.length;
      error(`invalid JSON: ${scan.message}`, {
        line: scan.line,
        ...(rec > 0 || scan.message.startsWith("expected ',' or ']'")
          ? { record: Math.max(0, rec - 1) }
          : {}),
      });
      return result(format, [], 0, 0);
    }
    if (scan.elements.length === 0) {
      error("the array holds no records", { line: 1 });
      return result(format, [], 0, 0);
    }
    for (const el of scan.elements) {
      const source = text.slice(el.start, el.end);
      if (source.length > maxRecordBytes) {
        error(
          `the record is ${source.length} characters long, over the limit of ${maxRecordBytes}; split it or raise the limit`,
          { line: el.line, record: el.index },
        );
        total++;
        continue;
      }
      const parsed = parseJson(source);
      if (!parsed.ok) {
        error(`invalid JSON: ${parsed.message}`, {
          line: parsed.offset === undefined ? el.line : lines.lineOf(el.start + parsed.offset),
          record: el.index,
        });
        total++;
        continue;
      }
      accept(parsed.value, el.index, el.line);
    }
  } else {
    let index = 0;
    let lineNo = 0;
    let pos = 0;
    while (pos <= text.length) {
      let nl = text.indexOf("\n", pos);
      if (nl === -1) nl = text.length;
      lineNo++;
      let raw = text.slice(pos, nl);
      pos = nl + 1;
      if (raw.endsWith("\r")) raw = raw.slice(0, -1);
      if (raw.trim() === "") continue;
      const here = index++;
      if (raw.length > maxRecordBytes) {
        error(
          `the record is ${raw.length} characters long, over the limit of ${maxRecordBytes}; split it or raise the limit`,
          { line: lineNo, record: here },
        );
        total++;
        continue;
      }
      const parsed = parseJson(raw);
      if (!parsed.ok) {
        error(`invalid JSON: ${parsed.message}`, { line: lineNo, record: here });
        total++;
        continue;
      }
      accept(parsed.value, here, lineNo);
    }
    if (index === 0) error("the file holds no records", { line: 1 });
  }
  return result(format, records, total, rejected);
}

function parseJson(
  source: string,
): { ok: true; value: unknown } | { ok: false; message: string; offset?: number } {
  try {
    return { ok: true, value: JSON.parse(source) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const m = /at position (\d+)/.exec(message);
    const cleaned = message
      .replace(/ in JSON at position \d+.*$/s, "")
      .replace(/^JSON\.parse: /, "");
    return m?.[1] !== undefined
      ? { ok: false, message: cleaned, offset: Number(m[1]) }
      : { ok: false, message: cleaned };
  }
}

function checkRecord(
  value: unknown,
  index: number,
  line: number,
  file: string,
  problems: Problem[],
): DatasetRecord | "rejected" | null {
  const at = { file, line, record: index };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    problems.push({
      ...at,
      message: `a record must be an object with instruction, input and output; found ${kind}`,
      severity: "error",
    });
    return null;
  }
  const parsed = AlpacaRecordSchema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({
        ...at,
        field: issue.path.map(String).join(".") || undefined,
        message: issue.message,
        severity: "error",
      } as Problem);
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    if (!KNOWN_FIELDS.has(key)) {
      problems.push({
        ...at,
        field: key,
        message: "unknown field, ignored (an Alpaca record has instruction, input, output)",
        severity: "warning",
      });
    }
  }
  const { instruction, output } = parsed.data;
  const input = parsed.data.input ?? "";
  for (const [field, text] of [
    ["instruction", instruction],
    ["input", input],
    ["output", output],
  ] as const) {
    const found = controlCharacters(text);
    if (found) {
      problems.push({
        ...at,
        field,
        message: `contains ${found.count === 1 ? "a control character" : `${found.count} control characters`}, the first ${found.first} at character ${found.at}: invisible in most editors, it reaches the model as text`,
        severity: "warning",
      });
    }
  }
  let reject = false;
  if (instruction.trim() === "") {
    problems.push({
      ...at,
      field: "instruction",
      message: "is empty: record rejected",
      severity: "warning",
    });
    reject = true;
  }
  if (output.trim() === "") {
    problems.push({
      ...at,
      field: "output",
      message: "is empty: record rejected",
      severity: "warning",
    });
    reject = true;
  }
  if (reject) return "rejected";
  return { index, line, instruction, input, output };
}

/** C0 and C1 controls and DEL (Unicode category Cc) other than tab, line feed and carriage return. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

const CONTROL_NAMES: Record<number, string> = { 0: "NUL", 27: "ESC", 127: "DEL" };

/** The control characters in a field (JSON lets them in escaped, "\u0000"), or undefined. */
function controlCharacters(text: string): { count: number; first: string; at: number } | undefined {
  const matches = [...text.matchAll(CONTROL)];
  const m = matches[0];
  if (!m) return undefined;
  const cp = (m[0] as string).charCodeAt(0);
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  const name = CONTROL_NAMES[cp];
  return { count: matches.length, first: name ? `${hex} (${name})` : hex, at: (m.index ?? 0) + 1 };
}
