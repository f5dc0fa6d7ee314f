import { TRAINER_EXIT_CODES } from "@loraforge/crds";
import { z } from "zod";

/** The core's JSON Lines events (docs/CONTRACTS.md §2). Extra fields are kept, not refused. */
const base = { time: z.string() };
const num = z.number();
const nullableNum = z.number().nullable();

export const StartEventSchema = z
  .object({
    event: z.literal("start"),
    ...base,
    version: z.string(),
    backend: z.string(),
    threads: num,
    model: z
      .object({
        n_layers: num,
        dim: num,
        n_heads: num,
        n_kv_heads: num,
        vocab_size: num,
        n_params: num,
      })
      .loose(),
    trainable_params: num,
    train_examples: num,
    val_examples: num,
    total_steps: num,
    resumed_from_step: num,
  })
  .loose();
export const StepEventSchema = z
  .object({
    event: z.literal("step"),
    ...base,
    step: num,
    total_steps: num,
    epoch: num,
    loss: num,
    lr: num,
    grad_norm: num,
    tokens: num,
    tokens_per_s: num,
    elapsed_s: num,
    eta_s: num,
  })
  .loose();
export const EvalEventSchema = z
  .object({ event: z.literal("eval"), ...base, step: num, val_loss: num, val_tokens: num })
  .loose();
export const CheckpointEventSchema = z
  .object({
    event: z.literal("checkpoint"),
    ...base,
    step: num,
    path: z.string(),
    train_loss: nullableNum,
    val_loss: nullableNum,
  })
  .loose();
export const OverflowEventSchema = z
  .object({ event: z.literal("overflow"), ...base, step: num, loss_scale: num })
  .loose();
export const DoneEventSchema = z
  .object({
    event: z.literal("done"),
    ...base,
    step: num,
    adapter_dir: z.string(),
    train_loss: nullableNum,
    val_loss: nullableNum,
    elapsed_s: num,
  })
  .loose();
export const ErrorEventSchema = z
  .object({
    event: z.literal("error"),
    ...base,
    code: num,
    kind: z.string(),
    message: z.string(),
    file: z.string().optional(),
    tensor: z.string().optional(),
    field: z.string().optional(),
    layer: num.optional(),
  })
  .loose();

export const CoreEventSchema = z.discriminatedUnion("event", [
  StartEventSchema,
  StepEventSchema,
  EvalEventSchema,
  CheckpointEventSchema,
  OverflowEventSchema,
  DoneEventSchema,
  ErrorEventSchema,
]);

export type CoreEvent = z.infer<typeof CoreEventSchema>;
export type StartEvent = z.infer<typeof StartEventSchema>;
export type StepEvent = z.infer<typeof StepEventSchema>;
export type EvalEvent = z.infer<typeof EvalEventSchema>;
export type CheckpointEvent = z.infer<typeof CheckpointEventSchema>;
export type DoneEvent = z.infer<typeof DoneEventSchema>;
export type ErrorEvent = z.infer<typeof ErrorEventSchema>;

/**
 * The same events as status reporting (`loraforge job`) reads them: of each event only the
 * fields status is built from are required, so a training pipeline hands over the core's
 * events as they are (parsed once, by `parseEventLine`) or scripts just these fields. Like
 * the full schemas, extra fields (a newer core's) are kept; lines that are no event at all
 * (an unknown event) are reported by `runCore` and never stop a run.
 */
export const ReportedEventSchema = z.discriminatedUnion("event", [
  StartEventSchema.pick({ event: true, time: true, total_steps: true }).extend({
    resumed_from_step: num.default(0),
  }),
  StepEventSchema.pick({
    event: true,
    time: true,
    step: true,
    total_steps: true,
    epoch: true,
    loss: true,
    lr: true,
    tokens_per_s: true,
    eta_s: true,
  }),
  EvalEventSchema.pick({ event: true, time: true, step: true, val_loss: true }),
  CheckpointEventSchema.pick({ event: true, time: true, step: true, path: true }).extend({
    train_loss: nullableNum.optional(),
    val_loss: nullableNum.optional(),
  }),
  OverflowEventSchema,
  DoneEventSchema.pick({ event: true, time: true, step: true, adapter_dir: true }),
  ErrorEventSchema.pick({ event: true, time: true, code: true, kind: true, message: true }),
]);
export type ReportedEvent = z.infer<typeof ReportedEventSchema>;

/** Exit codes of the core (contract §2): the one table in @loraforge/crds, plus success. */
export const EXIT = { ok: 0, ...TRAINER_EXIT_CODES } as const;

export function parseEventLine(
  line: string,
): { ok: true; event: CoreEvent } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (e) {
    return { ok: false, message: `not JSON: ${(e as Error).message}` };
  }
  const r = CoreEventSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, message: `${i?.path.join(".") || "event"}: ${i?.message ?? "invalid"}` };
  }
  return { ok: true, event: r.data };
}
