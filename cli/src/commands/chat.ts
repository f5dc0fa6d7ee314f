import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { z } from "zod";
import { startChat } from "../chat/start.ts";
import { findCore } from "../train/core.ts";
import { type Out, UsageError } from "./output.ts";
import { templateChoice } from "./validate.ts";

const Port = z.coerce.number().int().min(0).max(65535);
const Threads = z.coerce.number().int().min(1).max(1024);

export async function chatCommand(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      adapter: { type: "string" },
      onnx: { type: "string" },
      port: { type: "string", default: "7860" },
      host: { type: "string", default: "127.0.0.1" },
      template: { type: "string" },
      threads: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("chat takes one model directory", "chat");
  if (values.adapter && values.onnx)
    throw new UsageError("give --adapter or --onnx, not both", "chat");
  const port = Port.safeParse(values.port);
  if (!port.success) throw new UsageError(`--port must be 0..65535 (got "${values.port}")`, "chat");
  const threads = Threads.safeParse(values.threads ?? Math.min(4, availableParallelism()));
  if (!threads.success)
    throw new UsageError(`--threads must be a positive integer (got "${values.threads}")`, "chat");
  const chat = await startChat({
    modelDir: positionals[0] as string,
    ...(values.adapter ? { adapterDir: values.adapter } : {}),
    ...(values.onnx ? { onnxFile: values.onnx } : {}),
    host: values.host,
    port: port.data,
    template: templateChoice(values.template),
    threads: threads.data,
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
