// `loraforge job --spec FILE`, as a command of the cli's table.

import type { Out } from "../commands/output.ts";
import { cliPipeline } from "./cliPipeline.ts";
import { runJob } from "./index.ts";

export function jobCommand(args: string[], out: Out): Promise<number> {
  const log = (line: string) => out.error(line);
  return runJob(args, { pipeline: cliPipeline(log), log });
}
