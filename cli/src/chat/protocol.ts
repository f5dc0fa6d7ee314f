/** Messages between the chat server and its inference worker. */
import type { StopReason } from "./decoder.ts";
import type { Sampling } from "./sampling.ts";

export interface WorkerSetup {
  /** variant name ("base", "tuned") → model.onnx */
  models: Record<string, string>;
  threads: number;
}

export type ToWorker =
  | {
      type: "generate";
      id: number;
      variant: string;
      prompt: number[];
      sampling: Sampling;
      stopTokens: number[];
    }
  | { type: "cancel"; id: number }
  | { type: "close" };

export type FromWorker =
  | { type: "ready"; variants: string[] }
  | { type: "token"; id: number; token: number }
  | { type: "done"; id: number; stop: StopReason; tokens: number }
  | { type: "error"; id?: number; message: string };
