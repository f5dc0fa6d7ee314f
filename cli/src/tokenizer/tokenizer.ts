import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Problem } from "../dataset/problems.ts";
import { ProblemsError } from "../errors.ts";
import { createTextEncoder, type TextEncoder } from "./hfTokenizer.ts";

/**
 * A model's tokenizer with its special ids checked: the decapoda failure (bos == eos, or ids that
 * disagree between config.json and tokenizer_config.json) is refused here, at start.
 */
export interface ModelTokenizer {
  readonly encoder: TextEncoder;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /**
   * The token appended after each response, so training teaches the model to end with it: EOS,
   * unless generation stops on other tokens only (generation_config.json's eos_token_id leaves EOS
   * out), then the first of those. A model imported from llama2.c ends with BOS: its stories were
   * separated by BOS and it never saw EOS.
   */
  readonly endId: number;
  /** Tokens generation stops on: generation_config.json's eos_token_id (as transformers' generate), else EOS. */
  readonly stopIds: number[];
  /** Where stopIds come from, in words. */
  readonly stopSource: string;
  /** Prepend BOS to every example (tokenizer_config.add_bos_token, default true as in Llama). */
  readonly addBos: boolean;
  /** config.json vocab_size: every id written to a shard must be below it. */
  readonly vocabSize: number;
  /** Non-fatal findings (pad equals eos, ...). */
  readonly warnings: Problem[];
  /** Special-token strings that, if present in data, the tokenizer would read as special. */
  readonly specialStrings: string[];
  /** ids of `text` with BOS prepended when addBos (what `tokenizer(text)` gives for Llama). */
  encode(text: string): number[];
}

export class TokenizerError extends ProblemsError {
  constructor(problems: Problem[]) {
    super(
      problems.map((p) => `${p.file}${p.field ? ` (${p.field})` : ""}: ${p.message}`).join("\n"),
      problems,
    );
    this.name = "TokenizerError";
  }
}

const TokenSpec = z.union([z.string(), z.object({ content: z.string() }).loose(), z.null()]);
const TokenizerConfigSchema = z
  .object({
    bos_token: TokenSpec.optional(),
    eos_token: TokenSpec.optional(),
    pad_token: TokenSpec.optional(),
    unk_token: TokenSpec.optional(),
    add_bos_token: z.boolean().optional(),
  })
  .loose();
const ModelConfigSchema = z
  .object({
    vocab_size: z.number().int().positive(),
    bos_token_id: z.number().int().nonnegative().nullish(),
    eos_token_id: z
      .union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())])
      .nullish(),
    pad_token_id: z.number().int().nonnegative().nullish(),
  })
  .loose();
const GenerationConfigSchema = z
  .object({
    eos_token_id: z
      .union([
        z.number().int().nonnegative(),
        z.array(z.number().int().nonnegative()).min(1, "lists no token"),
      ])
      .nullish(),
  })
  .loose();
const TokenizerJsonSchema = z
  .object({
    model: z.object({ type: z.string() }).loose(),
    added_tokens: z
      .array(
        z
          .object({ id: z.number().int(), content: z.string(), special: z.boolean().optional() })
          .loose(),
      )
      .optional(),
  })
  .loose();

async function readJson(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TokenizerError([
      { file: path, message: `cannot read: ${(e as Error).message}`, severity: "error" },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError([
      { file: path, message: `invalid JSON: ${(e as Error).message}`, severity: "error" },
    ]);
  }
}

function zodProblems(file: string, error: z.ZodError): Problem[] {
  return error.issues.map((i) => ({
    file,
    field: i.path.map(String).join(".") || "(root)",
    message: i.message,
    severity: "error" as const,
  }));
}

/**
 * Loads <modelDir>/tokenizer.json with tokenizer_config.json, config.json and (when there)
 * generation_config.json beside it.
 */
export async function loadModelTokenizer(modelDir: string): Promise<ModelTokenizer> {
  const tokPath = join(modelDir, "tokenizer.json");
  const tcPath = join(modelDir, "tokenizer_config.json");
  const cfgPath = join(modelDir, "config.json");
  const genPath = join(modelDir, "generation_config.json");
  const tokRaw = await readJson(tokPath, true);
  const tcRaw = (await readJson(tcPath, false)) ?? {};
  const cfgRaw = await readJson(cfgPath, true);
  const genRaw = (await readJson(genPath, false)) ?? {};
  const tokJson = TokenizerJsonSchema.safeParse(tokRaw);
  if (!tokJson.success) throw new TokenizerError(zodProblems(tokPath, tokJson.error));
  const tc = TokenizerConfigSchema.safeParse(tcRaw);
  if (!tc.success) throw new TokenizerError(zodProblems(tcPath, tc.error));
  const cfg = ModelConfigSchema.safeParse(cfgRaw);
  if (!cfg.success) throw new TokenizerError(zodProblems(cfgPath, cfg.error));
  const gen = GenerationConfigSchema.safeParse(genRaw);
  if (!gen.success) throw new TokenizerError(zodProblems(genPath, gen.error));

  let encoder: TextEncoder;
  try {
    encoder = createTextEncoder(
      tokRaw as Record<string, unknown>,
      tcRaw as Record<string, unknown>,
    );
  } catch (e) {
    throw new TokenizerError([
      {
        file: tokPath,
        message: `the tokenizer library cannot load it: ${(e as Error).message}`,
        severity: "error",
      },
    ]);
  }
  return checkSpecialTokens({
    encoder,
    tokenizerConfig: tc.data,
    modelConfig: cfg.data,
    generationConfig: gen.data,
    addedTokens: tokJson.data.added_tokens ?? [],
    files: {
      tokenizer: tokPath,
      tokenizerConfig: tcPath,
      config: cfgPath,
      generationConfig: genPath,
    },
  });
}

interface CheckInput {
  encoder: TextEncoder;
  tokenizerConfig: z.infer<typeof TokenizerConfigSchema>;
  modelConfig: z.infer<typeof ModelConfigSchema>;
  /** generation_config.json, when the model has one. */
  generationConfig?: z.infer<typeof GenerationConfigSchema>;
  addedTokens: { id: number; content: string; special?: boolean | undefined }[];
  files: { tokenizer: string; tokenizerConfig: string; config: string; generationConfig?: string };
}

export function checkSpecialTokens(input: CheckInput): ModelTokenizer {
  const { encoder, tokenizerConfig: tc, modelConfig: cfg, files } = input;
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const tokenText = (t: z.infer<typeof TokenSpec> | undefined) =>
    t === undefined || t === null ? undefined : typeof t === "string" ? t : t.content;

  const resolve = (name: "bos" | "eos", fallback: string): number | undefined => {
    const fromTc = tokenText(tc[`${name}_token`]);
    const tcId = fromTc === undefined ? undefined : encoder.tokenToId(fromTc);
    if (fromTc !== undefined && tcId === undefined) {
      problems.push({
        file: files.tokenizerConfig,
        field: `${name}_token`,
        message: `"${fromTc}" is not a token of tokenizer.json`,
        severity: "error",
      });
    }
    const rawCfg = cfg[`${name}_token_id`];
    const cfgId = Array.isArray(rawCfg) ? rawCfg[0] : (rawCfg ?? undefined);
    if (tcId !== undefined && cfgId !== undefined && tcId !== cfgId) {
      problems.push({
        file: files.config,
        field: `${name}_token_id`,
        message: `is ${cfgId}, but tokenizer_config.json's ${name}_token "${fromTc}" is id ${tcId}: the model and its tokenizer disagree`,
        severity: "error",
      });
    }
    const id = tcId ?? cfgId ?? encoder.tokenToId(fallback);
    if (id === undefined) {
      problems.push({
        file: files.config,
        field: `${name}_token_id`,
        message: `no ${name} token: set ${name}_token_id in config.json or ${name}_token in tokenizer_config.json`,
        severity: "error",
      });
    }
    return id;
  };
  const bosId = resolve("bos", "<s>");
  const eosId = resolve("eos", "</s>");
  if (bosId !== undefined && eosId !== undefined && bosId === eosId) {
    problems.push({
      file: files.config,
      field: "eos_token_id",
      message: `bos and eos are the same token (id ${bosId}); the model could never learn to stop (the decapoda-research tokenizer bug). Fix the model's config.json / tokenizer_config.json`,
      severity: "error",
    });
  }
  for (const [name, id] of [
    ["bos", bosId],
    ["eos", eosId],
  ] as const) {
    if (id !== undefined && id >= cfg.vocab_size) {
      problems.push({
        file: files.config,
        field: "vocab_size",
        message: `${name} id ${id} is outside the model's vocabulary (vocab_size ${cfg.vocab_size})`,
        severity: "error",
      });
    }
  }
  const rawStops = input.generationConfig?.eos_token_id ?? undefined;
  const genStops = rawStops === undefined ? undefined : [rawStops].flat();
  for (const id of genStops ?? []) {
    if (id >= cfg.vocab_size) {
      problems.push({
        file: files.generationConfig ?? "generation_config.json",
        field: "eos_token_id",
        message: `id ${id} is outside the model's vocabulary (vocab_size ${cfg.vocab_size})`,
        severity: "error",
      });
    }
  }
  if (encoder.size > cfg.vocab_size) {
    problems.push({
      file: files.tokenizer,
      message: `the tokenizer has ${encoder.size} ids but the model's vocab_size is ${cfg.vocab_size}: wrong tokenizer for this model`,
      severity: "error",
    });
  }
  if (problems.length > 0) throw new TokenizerError(problems);

  const padText = tokenText(tc.pad_token);
  let padId = padText !== undefined ? encoder.tokenToId(padText) : undefined;
  padId ??= cfg.pad_token_id ?? undefined;
  // alpaca-lora: pad with unk (id 0), "we want this to be different from the eos token".
  padId ??= encoder.tokenToId(tokenText(tc.unk_token) ?? "<unk>") ?? 0;
  if (padId === eosId) {
    warnings.push({
      file: files.tokenizerConfig,
      field: "pad_token",
      message:
        "pad equals eos; harmless here (the core never trains on padding) but a Hugging Face collator would mask every EOS",
      severity: "warning",
    });
  }
  const addBos = tc.add_bos_token ?? true;
  const specialStrings = input.addedTokens.filter((t) => t.special !== false).map((t) => t.content);
  const bos = bosId as number;
  const eos = eosId as number;
  // Training must end a response with a token generation stops on: EOS when it is one of them.
  const stopIds = genStops ?? [eos];
  const endId = stopIds.includes(eos) ? eos : (stopIds[0] as number);
  return {
    encoder,
    bosId: bos,
    eosId: eos,
    endId,
    stopIds,
    stopSource: genStops ? "eos_token_id of generation_config.json" : "the tokenizer's eos",
    padId,
    addBos,
    vocabSize: cfg.vocab_size,
    warnings,
    specialStrings,
    encode: addBos ? (text) => [bos, ...encoder.encode(text)] : (text) => encoder.encode(text),
  };
}
