/**
 * The events of `loraforge-core generate` and `loraforge-core score` (docs/CONTRACTS.md §2), the
 * generation counterpart of train/events.ts (whose `error` event they share). Extra fields are
 * kept, not refused.
 */
import { z } from "zod";
import { ErrorEventSchema } from "../train/events.ts";

const base = { time: z.string() };
const num = z.number();
const variant = z.string();

export const GenStartEventSchema = z
  .object({
    event: z.literal("start"),
    ...base,
    verb: z.enum(["generate", "score"]),
    variants: z.array(variant),
    n: num,
    version: z.string().optional(),
  })
  .loose();
export const TokenEventSchema = z
  .object({ event: z.literal("token"), ...base, variant, id: z.string(), index: num, token: num })
  .loose();
export const SequenceEventSchema = z
  .object({
    event: z.literal("sequence"),
    ...base,
    variant,
    id: z.string(),
    prompt_tokens: num,
    tokens: z.array(num),
    stop: z.enum(["stop_token", "max_new_tokens"]),
    stop_token: num.nullable(),
  })
  .loose();
export const ScoreEventSchema = z
  .object({
    event: z.literal("score"),
    ...base,
    variant,
    id: z.string(),
    target_tokens: num,
    loss_sum: num,
    mean_loss: num,
    perplexity: num,
  })
  .loose();
export const GenDoneEventSchema = z
  .object({
    event: z.literal("done"),
    ...base,
    verb: z.enum(["generate", "score"]),
    elapsed_s: num,
    tokens_per_s: num.nullable().optional(),
  })
  .loose();

export const GenEventSchema = z.discriminatedUnion("event", [
  GenStartEventSchema,
  TokenEventSchema,
  SequenceEventSchema,
  ScoreEventSchema,
  GenDoneEventSchema,
  ErrorEventSchema,
]);

export type GenEvent = z.infer<typeof GenEventSchema>;
export type SequenceEvent = z.infer<typeof SequenceEventSchema>;
export type ScoreEvent = z.infer<typeof ScoreEventSchema>;

export function parseGenEventLine(
  line: string,
): { ok: true; event: GenEvent } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (e) {
    return { ok: false, message: `not JSON: ${(e as Error).message}` };
  }
  const r = GenEventSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, message: `${i?.path.join(".") || "event"}: ${i?.message ?? "invalid"}` };
  }
  return { ok: true, event: r.data };
}
