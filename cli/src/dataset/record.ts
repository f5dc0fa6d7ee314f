import { z } from "zod";

/** One Alpaca record as written in a dataset file. `input` may be absent or null (no input). */
export const AlpacaRecordSchema = z.object({
  instruction: z.string({
    error: (i) => (i.input === undefined ? "is missing" : "must be a string"),
  }),
  input: z.string({ error: "must be a string, null or absent" }).nullish(),
  output: z.string({ error: (i) => (i.input === undefined ? "is missing" : "must be a string") }),
});

export const KNOWN_FIELDS = new Set(["instruction", "input", "output"]);

/** A record after parsing: where it came from, and its three texts (input "" when absent). */
export interface DatasetRecord {
  /** 0-based position in the file (array index for JSON, non-blank line count for JSONL). */
  index: number;
  /** 1-based line the record starts on. */
  line: number;
  instruction: string;
  input: string;
  output: string;
}
