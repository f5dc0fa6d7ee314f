/**
 * One declaration per command: its flags (type, zod check, help line, completion), its usage and
 * help text. `parseCommand` reads argv with node:util parseArgs and checks every value with zod;
 * the help text and the shell completion scripts are generated from the same declaration.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { UsageError } from "../commands/output.ts";
import { didYouMean } from "./suggest.ts";

/** What the shell completes after the flag: a file, a directory, or one of fixed words. */
export type Completion = "file" | "dir" | readonly string[];

export interface Flag<T> {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  /** Placeholder in the help text (N, DIR, FILE, ...); none for booleans. */
  readonly value?: string;
  readonly help: string;
  /** Kept out of the help text and the completion (test hooks). */
  readonly hidden?: boolean;
  readonly complete?: Completion;
  readonly schema: z.ZodType<T>;
}

const whole = (min: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`));

const decimal = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/, `must be a number from ${min} to ${max}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, `must be a number from ${min} to ${max}`)
        .max(max, `must be a number from ${min} to ${max}`),
    );

export const flag = {
  string: (value: string, help: string, complete?: Completion): Flag<string> => ({
    type: "string",
    value,
    help,
    schema: z.string().min(1, "must not be empty"),
    ...(complete ? { complete } : {}),
  }),
  list: (value: string, help: string, complete?: Completion): Flag<string[]> => ({
    type: "string",
    multiple: true,
    value,
    help,
    schema: z.array(z.string().min(1, "must not be empty")),
    ...(complete ? { complete } : {}),
  }),
  int: (help: string, min = 0, value = "N"): Flag<number> => ({
    type: "string",
    value,
    help,
    schema: whole(min),
  }),
  number: (help: string, min: number, max: number, value = "X"): Flag<number> => ({
    type: "string",
    value,
    help,
    schema: decimal(min, max),
  }),
  choice: <const C extends readonly [string, ...string[]]>(
    choices: C,
    help: string,
  ): Flag<C[number]> => ({
    type: "string",
    value: choices.join("|"),
    help,
    complete: choices,
    schema: z.enum(choices, { error: `must be ${orList(choices)}` }) as unknown as z.ZodType<
      C[number]
    >,
  }),
  bool: (help: string): Flag<boolean> => ({ type: "boolean", help, schema: z.boolean() }),
};

function orList(words: readonly string[]): string {
  return words.length < 2
    ? (words[0] ?? "")
    : `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`;
}

export type Flags = Record<string, Flag<unknown>>;
export type Values<F extends Flags> = { [K in keyof F]?: F[K] extends Flag<infer T> ? T : never };

export interface Command<F extends Flags = Flags> {
  readonly name: string;
  /** One line for the command list of `loraforge --help`. */
  readonly summary: { usage: string; text: string };
  /** The usage line(s) at the top of `loraforge help <command>`. */
  readonly usage: string;
  /** What the command does, before the options. */
  readonly description: string;
  readonly flags: F;
  /** Extra option notes printed after the generated option lines (groups, defaults). */
  readonly flagNotes?: string;
  /** Trailing help text (environment, examples). Must contain "Example". */
  readonly epilogue: string;
  /** Words the shell completes for the first positional (sub-formats like `onnx`). */
  readonly subcommands?: readonly string[];
  /** What the shell completes for positionals. */
  readonly positionals?: Completion;
}

export function defineCommand<F extends Flags>(c: Command<F>): Command<F> {
  return c;
}

/** "--name VALUE" as the help text and the messages show it. */
export function flagUsage(name: string, f: Flag<unknown>): string {
  return f.type === "boolean" ? `--${name}` : `--${name} ${f.value ?? "VALUE"}`;
}

/** The help text: usage, description, the option lines from the declaration, the epilogue. */
export function helpText(c: Command): string {
  const shown = Object.entries(c.flags).filter(([, f]) => !f.hidden);
  const left = shown.map(([name, f]) => `  ${flagUsage(name, f)}${f.multiple ? " ..." : ""}`);
  const width = Math.max(0, ...left.map((l) => l.length)) + 3;
  const lines = shown.map(([, f], i) => {
    const [first, ...rest] = f.help.split("\n");
    return [
      `${(left[i] as string).padEnd(width)}${first}`,
      ...rest.map((r) => `${" ".repeat(width)}${r}`),
    ].join("\n");
  });
  return [
    c.usage,
    "",
    c.description.trimEnd(),
    "",
    ...(lines.length > 0 ? ["Options:", ...lines] : []),
    ...(c.flagNotes ? [c.flagNotes.trimEnd()] : []),
    ...(lines.length > 0 || c.flagNotes ? [""] : []),
    c.epilogue.trimEnd(),
    "",
  ].join("\n");
}

export interface Parsed<F extends Flags> {
  values: Values<F>;
  positionals: string[];
  /** The flags given on the command line, by name (for "has no effect" checks). */
  given: Set<keyof F & string>;
}

/**
 * Reads `args` for command `c`: unknown flags, a missing value and a bad value are UsageErrors that
 * name the flag (with the nearest known flag for a typo); every value goes through its zod schema.
 */
export function parseCommand<F extends Flags>(c: Command<F>, args: string[]): Parsed<F> {
  const names = Object.keys(c.flags);
  const known = new Set(names);
  // unknown flags first, named with the nearest known one; a value that starts with "-" (a
  // negative number) is joined to its flag, which parseArgs would otherwise call ambiguous
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    joined.push(a);
    if (a === "--") {
      joined.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") continue;
    const name = a.startsWith("--") ? (a.slice(2).split("=")[0] as string) : a.slice(1);
    if (!known.has(name))
      throw new UsageError(
        `unknown option ${a.startsWith("--") ? `--${name}` : a}${didYouMean(
          name,
          names.filter((n) => !c.flags[n]?.hidden),
          (s) => `--${s}`,
        )}`,
        c.name,
      );
    const next = args[i + 1];
    if (c.flags[name]?.type === "string" && !a.includes("=") && next?.startsWith("-")) {
      const nextName = next.replace(/^--?/, "").split("=")[0] as string;
      if (!known.has(nextName) && next !== "--") {
        joined[joined.length - 1] = `--${name}=${next}`;
        i++;
      }
    }
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: joined,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        Object.entries(c.flags).map(([name, f]) => [
          name,
          { type: f.type, ...(f.multiple ? { multiple: true } : {}) },
        ]),
      ),
    });
  } catch (e) {
    if (e instanceof TypeError && "code" in e && e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const m = /--([\w-]+)/.exec(e.message);
      const f = m ? c.flags[m[1] as string] : undefined;
      if (m && f)
        throw new UsageError(
          f.type === "boolean"
            ? `--${m[1]} takes no value`
            : `--${m[1]} needs a value: ${flagUsage(m[1] as string, f)}`,
          c.name,
        );
    }
    throw new UsageError(e instanceof Error ? e.message : String(e), c.name);
  }
  const values: Record<string, unknown> = {};
  const given = new Set<keyof F & string>();
  for (const [name, raw] of Object.entries(parsed.values)) {
    const f = c.flags[name] as Flag<unknown>;
    if (f.type === "string" && !f.multiple && Array.isArray(raw)) continue;
    const r = f.schema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new UsageError(
        `--${name} ${issue?.message ?? "is not valid"}, got ${JSON.stringify(raw)}`,
        c.name,
      );
    }
    values[name] = r.data;
    given.add(name as keyof F & string);
  }
  return { values: values as Values<F>, positionals: parsed.positionals, given };
}

/** Refuses flags that would be silently ignored: each given flag in `flags` gets `reason`. */
export function refuseWithout<F extends Flags>(
  p: Parsed<F>,
  c: Command<F>,
  flags: readonly (keyof F & string)[],
  reason: string,
): void {
  const idle = flags.filter((f) => p.given.has(f));
  if (idle.length > 0)
    throw new UsageError(
      `${idle.map((f) => `--${f}`).join(", ")} ${idle.length > 1 ? "have" : "has"} no effect ${reason}`,
      c.name,
    );
}
