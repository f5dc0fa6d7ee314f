// Turns training events into status.progress / checkpoints / adapter / evaluation and
// patches them through the per-run ServiceAccount, at most once per interval (a final
// flush sends the rest). API errors are logged and retried at the next flush: training
// never stops because the API server is briefly unreachable.

import {
  type CheckpointStatus,
  durationText,
  type Progress,
  type TrainerStatus,
} from "@loraforge/crds";
import type { ReportedEvent } from "../train/events.ts";

export interface ReporterOptions {
  /** Sends a merge patch of status. */
  send: (status: TrainerStatus) => Promise<void>;
  /**
   * Reads the checkpoints already in status (a retried pod's earlier attempts reported them).
   * A merge patch replaces the whole list, so the list is sent only once this has answered:
   * a retry that could not read them would otherwise wipe them. Progress goes out meanwhile
   * (a patch without `checkpoints` leaves the list as it is).
   */
  load?: () => Promise<readonly CheckpointStatus[]>;
  intervalMs?: number;
  log?: (line: string) => void;
  now?: () => number;
  /** Checkpoints kept in status (the trainer keeps saveTotalLimit on disk). */
  maxCheckpoints?: number;
}

/**
 * A live figure as `kubectl get lft` shows it (the LOSS column prints the number as stored):
 * five significant digits. The exact values stay in metrics.jsonl and in status.checkpoints.
 */
const shown = (x: number) => Number(x.toPrecision(5));

export class StatusReporter {
  private progress: Progress | undefined;
  private checkpoints: CheckpointStatus[] = [];
  private extra: Omit<TrainerStatus, "progress" | "checkpoints"> = {};
  private dirty = false;
  private loaded = false;
  private loadError: string | undefined;
  private lastSent = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  readonly intervalMs: number;
  /** Patches sent and failed, for tests and the final log line. */
  sent = 0;
  failed = 0;

  constructor(private readonly opts: ReporterOptions) {
    this.intervalMs = opts.intervalMs ?? 10_000;
  }

  private now() {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  onEvent(e: ReportedEvent) {
    const at = e.time;
    switch (e.event) {
      case "start":
        this.progress = {
          ...(this.progress ?? { step: 0 }),
          step: e.resumed_from_step,
          totalSteps: e.total_steps,
          updatedAt: at,
        };
        break;
      case "step": {
        const totalSteps = e.total_steps;
        const percent = totalSteps > 0 ? Math.min(100, Math.floor((100 * e.step) / totalSteps)) : 0;
        this.progress = {
          ...this.progress,
          step: e.step,
          totalSteps,
          epoch: e.epoch,
          percent,
          summary: `${e.step}/${totalSteps} (${percent}%)`,
          ...(Number.isFinite(e.loss) ? { loss: shown(e.loss) } : {}),
          learningRate: shown(e.lr),
          tokensPerSecond: Math.round(Math.max(0, e.tokens_per_s)),
          etaSeconds: Math.max(0, e.eta_s),
          eta: durationText(e.eta_s),
          updatedAt: at,
        };
        break;
      }
      case "eval":
        if (this.progress && Number.isFinite(e.val_loss))
          this.progress = { ...this.progress, valLoss: shown(e.val_loss), updatedAt: at };
        // The core evaluates after the checkpoint of the same step (the last step's always), and
        // a checkpoint event carries the latest loss before it: the eval of its own step is the one.
        if (Number.isFinite(e.val_loss) && this.checkpoints.some((c) => c.step === e.step))
          this.checkpoints = this.checkpoints.map((c) =>
            c.step === e.step ? { ...c, valLoss: e.val_loss } : c,
          );
        break;
      case "overflow":
        if (this.progress)
          this.progress = { ...this.progress, lossScale: e.loss_scale, updatedAt: at };
        break;
      case "checkpoint": {
        const c: CheckpointStatus = { step: e.step, path: e.path, createdAt: at };
        if (typeof e.train_loss === "number") c.trainLoss = e.train_loss;
        if (typeof e.val_loss === "number") c.valLoss = e.val_loss;
        this.checkpoints = this.merged([c]);
        break;
      }
      case "done":
        if (this.progress)
          this.progress = {
            ...this.progress,
            step: e.step,
            percent: 100,
            etaSeconds: 0,
            eta: durationText(0),
            updatedAt: at,
          };
        break;
      case "error":
        break;
    }
    this.dirty = true;
    this.flushSoon();
  }

  /** Adapter, selected checkpoint and evaluation summary, once known. */
  setResult(result: Omit<TrainerStatus, "progress" | "checkpoints">) {
    this.extra = { ...this.extra, ...result };
    this.dirty = true;
    this.flushSoon();
  }

  /**
   * The list with `incoming` merged in by step (incoming wins on the same step: a checkpoint
   * re-made after a resume), in step order, the newest `maxCheckpoints` kept.
   */
  private merged(incoming: readonly CheckpointStatus[]): CheckpointStatus[] {
    const byStep = new Map<number, CheckpointStatus>();
    for (const c of [...this.checkpoints, ...incoming]) byStep.set(c.step, c);
    return [...byStep.values()]
      .sort((a, b) => a.step - b.step)
      .slice(-(this.opts.maxCheckpoints ?? 50));
  }

  /** Merges what an earlier pod of the run reported under this pod's own checkpoints. */
  seedCheckpoints(existing: readonly CheckpointStatus[]) {
    const own = this.checkpoints;
    this.checkpoints = [...existing];
    this.checkpoints = this.merged(own);
  }

  /** Sends now if the interval has passed, else once it has (one timer at a time). */
  private flushSoon() {
    const wait = this.lastSent + this.intervalMs - this.now();
    if (wait <= 0 && !this.inFlight) {
      void this.flush();
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.flush();
      },
      Math.max(wait, 0),
    );
    this.timer.unref();
  }

  /** Sends pending changes now (one request at a time). Never throws. */
  async flush(): Promise<void> {
    if (this.inFlight) {
      await this.inFlight;
      if (!this.dirty) return;
    }
    if (!this.dirty) return;
    this.dirty = false;
    this.lastSent = this.now();
    // What is known now is what this request sends (events keep arriving meanwhile).
    const status: TrainerStatus = { ...this.extra };
    if (this.progress) status.progress = this.progress;
    const ready = this.loaded || !this.opts.load;
    if (ready && this.checkpoints.length > 0) status.checkpoints = this.checkpoints;
    const loading = ready
      ? Promise.resolve(true)
      : this.loadOnce().then((loaded) => {
          if (loaded && this.checkpoints.length > 0) status.checkpoints = this.checkpoints;
          return loaded;
        });
    this.inFlight = loading
      .then((loaded) => {
        return this.opts.send(status).then(() => {
          this.sent++;
          if (!loaded && this.checkpoints.length > 0) {
            this.dirty = true; // the checkpoints are still to send
            throw new Error(this.loadError ?? "the earlier checkpoints are not read yet");
          }
        });
      })
      .catch((error: unknown) => {
        this.failed++;
        this.dirty = true; // resend with the next change or the final flush
        this.opts.log?.(
          `status update failed (training continues): ${error instanceof Error ? error.message : String(error)}`,
        );
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            void this.flush();
          }, this.intervalMs);
          this.timer.unref();
        }
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    await this.inFlight;
  }

  /** True once the earlier attempts' checkpoints are merged in (or there is nothing to read). */
  private async loadOnce(): Promise<boolean> {
    if (this.loaded || !this.opts.load) return true;
    try {
      this.seedCheckpoints(await this.opts.load());
      this.loaded = true;
      this.loadError = undefined;
    } catch (error) {
      this.loadError = `cannot read the checkpoints earlier attempts reported, so this attempt's are held back: ${error instanceof Error ? error.message : String(error)}`;
    }
    return this.loaded;
  }

  /** Final flush with a few retries; stops the timer. */
  async close(retries = 3, retryDelayMs = 2000): Promise<boolean> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = 0; i <= retries; i++) {
      await this.flush();
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      if (!this.dirty) return true;
      await new Promise((r) => setTimeout(r, retryDelayMs));
    }
    return false;
  }
}
