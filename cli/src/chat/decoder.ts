/**
 * Generation on an exported model (docs/CONTRACTS.md §7) in onnxruntime-node: one prefill run,
 * then one run per token with the KV cache. The only module of the chat that imports
 * onnxruntime-node.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import ort from "onnxruntime-node";
import { type LlamaConfig, parseLlamaConfig } from "../export/hfModel.ts";
import { chooseToken, type Sampling, seededRandom } from "./sampling.ts";

export type StopReason = "stop_token" | "max_new_tokens" | "cancelled";

export class OnnxDecoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly config: LlamaConfig,
  ) {}

  /** Loads model.onnx; its config.json (written by the export) gives the cache shapes. */
  static async load(file: string, threads = 1): Promise<OnnxDecoder> {
    const configPath = join(dirname(file), "config.json");
    const config = parseLlamaConfig(JSON.parse(await readFile(configPath, "utf8")), configPath);
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    return new OnnxDecoder(session, config);
  }

  /** Yields each chosen token; returns why it stopped. `cancelled()` is asked before each step. */
  async *generate(
    prompt: number[],
    s: Sampling,
    stopTokens: ReadonlySet<number>,
    cancelled: () => boolean = () => false,
  ): AsyncGenerator<number, StopReason> {
    const c = this.config;
    const random = seededRandom(s.seed);
    const seen = new Set(prompt);
    const tokens = [...prompt];
    let feed = [...prompt];
    let past: Record<string, ort.Tensor> = {};
    for (let i = 0; i < c.layers; i++)
      for (const k of ["key", "value"])
        past[`past_key_values.${i}.${k}`] = new ort.Tensor("float32", new Float32Array(0), [
          1,
          c.kvHeads,
          0,
          c.headDim,
        ]);
    for (let n = 0; n < s.maxNewTokens; n++) {
      if (cancelled()) return "cancelled";
      if (tokens.length >= c.maxPositions) return "max_new_tokens";
      const start = tokens.length - feed.length;
      const int64 = (v: number[]) =>
        new ort.Tensor("int64", BigInt64Array.from(v.map(BigInt)), [1, v.length]);
      const out = await this.session.run({
        input_ids: int64(feed),
        position_ids: int64(feed.map((_, i) => start + i)),
        attention_mask: int64(tokens.map(() => 1)),
        ...past,
      });
      const logits = (out.logits as ort.Tensor).data as Float32Array;
      const next = chooseToken(logits.subarray((feed.length - 1) * c.vocab), seen, s, random);
      past = {};
      for (let i = 0; i < c.layers; i++)
        for (const k of ["key", "value"])
          past[`past_key_values.${i}.${k}`] = out[`present.${i}.${k}`] as ort.Tensor;
      if (stopTokens.has(next)) return "stop_token";
      yield next;
      seen.add(next);
      tokens.push(next);
      feed = [next];
    }
    return "max_new_tokens";
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
