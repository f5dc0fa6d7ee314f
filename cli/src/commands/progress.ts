import type { CoreEvent, StepEvent } from "../train/events.ts";
import { fmtDuration, fmtInt, fmtNum } from "./output.ts";

/** "step 12/63  epoch 0.57  loss 1.0412  lr 2.9e-3  1,234 tok/s  0:41 elapsed  ETA 1:52" */
export function progressLine(e: StepEvent): string {
  return [
    `step ${e.step}/${e.total_steps}`,
    `epoch ${e.epoch.toFixed(2)}`,
    `loss ${fmtNum(e.loss)}`,
    `lr ${e.lr.toExponential(1)}`,
    `${fmtInt(e.tokens_per_s)} tok/s`,
    `${fmtDuration(e.elapsed_s)} elapsed`,
    `ETA ${fmtDuration(e.eta_s)}`,
  ].join("  ");
}

/**
 * Shows training progress: on a terminal one line rewritten in place, elsewhere (CI logs) about
 * twenty lines over the run. Evaluations and checkpoints get lines of their own.
 */
export class ProgressView {
  private lastLen = 0;
  private every = 1;
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly tty = Boolean(stream.isTTY),
  ) {}

  private clear() {
    if (this.tty && this.lastLen > 0) {
      this.stream.write(`\r${" ".repeat(this.lastLen)}\r`);
      this.lastLen = 0;
    }
  }
  line(text: string) {
    this.clear();
    this.stream.write(`${text}\n`);
  }
  onEvent(e: CoreEvent) {
    switch (e.event) {
      case "start":
        this.every = Math.max(1, Math.ceil(e.total_steps / 20));
        this.line(
          `${e.resumed_from_step > 0 ? `resuming from step ${e.resumed_from_step}: ` : ""}${fmtInt(e.train_examples)} train / ${fmtInt(e.val_examples)} validation examples, ${e.total_steps} steps, ${fmtInt(e.trainable_params)} trainable of ${fmtInt(e.model.n_params)} parameters, ${e.backend} backend, ${e.threads} threads`,
        );
        break;
      case "step": {
        const text = progressLine(e);
        if (this.tty) {
          this.stream.write(`\r${text.padEnd(this.lastLen)}`);
          this.lastLen = text.length;
        } else if (e.step % this.every === 0 || e.step === e.total_steps || e.step === 1)
          this.line(text);
        break;
      }
      case "eval":
        this.line(`  eval at step ${e.step}: validation loss ${fmtNum(e.val_loss)}`);
        break;
      case "checkpoint":
        this.line(`  checkpoint ${e.path} (train loss ${fmtNum(e.train_loss)})`);
        break;
      case "overflow":
        this.line(`  fp16 overflow at step ${e.step}: loss scale now ${e.loss_scale}`);
        break;
      case "error":
        this.line(
          `trainer error (${e.kind}): ${e.message}${e.file ? ` [${e.file}]` : ""}${e.tensor ? ` tensor ${e.tensor}` : ""}${e.field ? ` field ${e.field}` : ""}`,
        );
        break;
      case "done":
        this.clear();
        break;
    }
  }
}
