import { availableParallelism } from "node:os";
import { defineCommand, flag, parseCommand } from "../args/flags.ts";
import { requireAdapterDir, requireFile, requireModelDir } from "../args/paths.ts";
import { startChat } from "../chat/start.ts";
import { findCore } from "../train/core.ts";
import { type Out, UsageError } from "./output.ts";
import { templateChoice } from "./validate.ts";

export const chatCli = defineCommand({
  name: "chat",
  summary: {
    usage: "chat <model-dir>",
    text: "a local web page to try the base and the tuned model side by side",
  },
  usage: "loraforge chat <model-dir> [--adapter DIR | --onnx FILE] [options]",
  description: `Serves a local web page like alpaca-lora's generate.py UI: an instruction and an optional input,
the generation settings (temperature, top p, top k, repetition penalty, max new tokens, seed;
temperature 0 is greedy), a switch between the base model and the tuned one, and the response
streamed token by token. Inference runs on ONNX Runtime (CPU) in a worker thread, on the model
exported as by \`loraforge export onnx\` (the tuned one with --adapter merged, or the exported
model.onnx given with --onnx). Generation stops at EOS or BOS.`,
  flags: {
    adapter: flag.string("DIR", "PEFT adapter of the tuned model", "dir"),
    onnx: flag.string(
      "FILE",
      "an export of <model-dir> with the tuned weights (model.onnx, its config.json beside it)",
      "file",
    ),
    template: flag.string(
      "NAME|FILE",
      "alpaca (default), alpaca_short, or a template JSON file",
      "file",
    ),
    port: flag.int("port (default 7860; 0 = any free port)"),
    host: flag.string("ADDR", "address to listen on (default 127.0.0.1)"),
    threads: flag.int("ONNX Runtime threads (default: up to 4)", 1),
  },
  positionals: "dir",
  epilogue: `Example:
  loraforge chat .cache/models/stories260K --adapter .cache/runs/demo/adapter --template alpaca_short`,
});

export async function chatCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(chatCli, args);
  if (positionals.length !== 1) throw new UsageError("chat takes one model directory", "chat");
  if (values.adapter && values.onnx)
    throw new UsageError("give --adapter or --onnx, not both", "chat");
  const port = values.port ?? 7860;
  if (port > 65535) throw new UsageError(`--port must be 0..65535, got ${port}`, "chat");
  if (values.threads !== undefined && values.threads > 1024)
    throw new UsageError(`--threads must be 1..1024, got ${values.threads}`, "chat");
  const threads = values.threads ?? Math.min(4, availableParallelism());
  await requireModelDir(positionals[0] as string);
  if (values.adapter) await requireAdapterDir(values.adapter);
  if (values.onnx) await requireFile(values.onnx, "--onnx model");
  const chat = await startChat({
    modelDir: positionals[0] as string,
    ...(values.adapter ? { adapterDir: values.adapter } : {}),
    ...(values.onnx ? { onnxFile: values.onnx } : {}),
    host: values.host ?? "127.0.0.1",
    port,
    template: templateChoice(values.template),
    threads,
    corePath: values.adapter ? findCore() : "",
    onLog: (line) => out.info(line),
  });
  out.info(`chat page: ${chat.url}   (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await chat.close();
  return 0;
}
