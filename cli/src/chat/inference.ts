/** The server's handle on the inference worker: start it, ask for tokens, cancel, close. */
import { Worker } from "node:worker_threads";
import type { StopReason } from "./decoder.ts";
import type { FromWorker, ToWorker, WorkerSetup } from "./protocol.ts";
import type { Sampling } from "./sampling.ts";

interface Pending {
  onToken: (token: number) => void;
  resolve: (r: { stop: StopReason; tokens: number }) => void;
  reject: (e: Error) => void;
}

export class InferenceWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    readonly variants: string[],
  ) {
    worker.on("message", (m: FromWorker) => {
      if (m.type === "ready" || m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === "token") p.onToken(m.token);
      else {
        this.pending.delete(m.id);
        if (m.type === "done") p.resolve({ stop: m.stop, tokens: m.tokens });
        else p.reject(new Error(m.message));
      }
    });
    worker.on("error", (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }

  static start(setup: WorkerSetup): Promise<InferenceWorker> {
    const worker = new Worker(new URL("./workerEntry.mjs", import.meta.url), { workerData: setup });
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === "ready") {
          worker.off("message", onMessage);
          resolve(new InferenceWorker(worker, m.variants));
        } else if (m.type === "error" && m.id === undefined) {
          void worker.terminate();
          reject(new Error(`the inference worker could not load the models: ${m.message}`));
        }
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
  }

  generate(
    variant: string,
    prompt: number[],
    sampling: Sampling,
    stopTokens: number[],
    onToken: (token: number) => void,
  ): { done: Promise<{ stop: StopReason; tokens: number }>; cancel: () => void } {
    const id = this.nextId++;
    const done = new Promise<{ stop: StopReason; tokens: number }>((resolve, reject) =>
      this.pending.set(id, { onToken, resolve, reject }),
    );
    this.post({ type: "generate", id, variant, prompt, sampling, stopTokens });
    return { done, cancel: () => this.post({ type: "cancel", id }) };
  }

  private post(m: ToWorker) {
    this.worker.postMessage(m);
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.post({ type: "close" });
    // a worker stuck in a native call is terminated after 5 s (the timer must not hold the process)
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.worker.terminate();
  }
}
