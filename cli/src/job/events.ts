// The native core's JSON Lines events (docs/CONTRACTS.md §2), as the job sees them.

import { z } from "zod";

const base = { time: z.string() };

export const CoreEventSchema = z.discriminatedUnion("event", [
  z
    .object({
      event: z.literal("start"),
      ...base,
      total_steps: z.number(),
      resumed_from_step: z.number().default(0),
    })
    .passthrough(),
  z
    .object({
      event: z.literal("step"),
      ...base,
      step: z.number(),
      total_steps: z.number(),
      epoch: z.number(),
      loss: z.number(),
      lr: z.number(),
      tokens_per_s: z.number(),
      eta_s: z.number(),
    })
    .passthrough(),
  z
    .object({ event: z.literal("eval"), ...base, step: z.number(), val_loss: z.number() })
    .passthrough(),
  z
    .object({
      event: z.literal("checkpoint"),
      ...base,
      step: z.number(),
      path: z.string(),
      train_loss: z.number().nullable().optional(),
      val_loss: z.number().nullable().optional(),
    })
    .passthrough(),
  z
    .object({ event: z.literal("overflow"), ...base, step: z.number(), loss_scale: z.number() })
    .passthrough(),
  z
    .object({ event: z.literal("done"), ...base, step: z.number(), adapter_dir: z.string() })
    .passthrough(),
  z
    .object({
      event: z.literal("error"),
      ...base,
      code: z.number(),
      kind: z.string(),
      message: z.string(),
    })
    .passthrough(),
]);
export type CoreEvent = z.infer<typeof CoreEventSchema>;
