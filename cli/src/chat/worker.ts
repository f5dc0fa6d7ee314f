/**
 * The inference thread of the chat page: onnxruntime-node's run is synchronous native work, so
 * it stays off the server's event loop. One request at a time; a cancel stops it between tokens.
 */
import { parentPort, workerData } from "node:worker_threads";
import { OnnxDecoder } from "./decoder.ts";
import type { FromWorker, ToWorker, WorkerSetup } from "./protocol.ts";

const port = parentPort;
if (!port) throw new Error("chat/worker.ts runs as a worker thread");
const setup = workerData as WorkerSetup;
const send = (m: FromWorker) => port.postMessage(m);

const decoders = new Map<string, OnnxDecoder>();
const cancelled = new Set<number>();
let queue: Promise<void> = Promise.resolve();

async function init() {
  for (const [variant, file] of Object.entries(setup.models))
    decoders.set(variant, await OnnxDecoder.load(file, setup.threads));
  send({ type: "ready", variants: [...decoders.keys()] });
}

port.on("message", (m: ToWorker) => {
  if (m.type === "cancel") {
    cancelled.add(m.id);
    return;
  }
  if (m.type === "close") {
    void queue.then(async () => {
      for (const d of decoders.values()) await d.release();
      process.exit(0); // in a worker: ends this thread only
    });
    return;
  }
  queue = queue.then(async () => {
    try {
      const d = decoders.get(m.variant);
      if (!d) throw new Error(`no model for variant "${m.variant}"`);
      const gen = d.generate(m.prompt, m.sampling, new Set(m.stopTokens), () =>
        cancelled.has(m.id),
      );
      let count = 0;
      for (;;) {
        const r = await gen.next();
        if (r.done) {
          send({ type: "done", id: m.id, stop: r.value, tokens: count });
          break;
        }
        count++;
        send({ type: "token", id: m.id, token: r.value });
      }
    } catch (e) {
      send({ type: "error", id: m.id, message: e instanceof Error ? e.message : String(e) });
    } finally {
      cancelled.delete(m.id);
    }
  });
});

init().catch((e) => send({ type: "error", message: e instanceof Error ? e.message : String(e) }));
