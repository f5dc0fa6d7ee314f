/**
 * The loraforge command: parse the command line, run one command, turn errors into messages
 * and exit codes (0 ok, 1 bug, 2 usage, 3 invalid input, 130 interrupted, or the trainer's code).
 */
import { InvalidLoraFineTuneError } from "@loraforge/crds";
import { COMMAND_HELP, MAIN_HELP } from "./commands/help.ts";
import { importCommand } from "./commands/importCmd.ts";
import { consoleOut, type Out, printProblems, UsageError } from "./commands/output.ts";
import { prepareCommand } from "./commands/prepare.ts";
import { trainCommand } from "./commands/train.ts";
import { validateCommand } from "./commands/validate.ts";
import { DatasetError } from "./dataset/problems.ts";
import { jobCommand } from "./job/command.ts";
import { Llama2cError } from "./llama2c/checkpoint.ts";
import { SentencePieceError } from "./llama2c/sentencepiece.ts";
import { TemplateError } from "./prompt/templates.ts";
import { ShardError } from "./shards/lfs.ts";
import { TokenizerError } from "./tokenizer/tokenizer.ts";
import { LocalRunError } from "./train/resolve.ts";
import { RunSetupError } from "./train/run.ts";
import { RunConfigError } from "./train/runConfig.ts";

const COMMANDS: Record<string, (args: string[], out: Out) => Promise<number>> = {
  validate: validateCommand,
  prepare: prepareCommand,
  train: trainCommand,
  import: importCommand,
  job: jobCommand,
};

export async function main(argv: string[], out: Out = consoleOut): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h") {
    out.info(MAIN_HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "help") {
    const topic = rest[0];
    out.info(topic && COMMAND_HELP[topic] ? (COMMAND_HELP[topic] as string) : MAIN_HELP);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    out.error(`unknown command "${command}"\n`);
    out.info(MAIN_HELP);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    out.info(COMMAND_HELP[command] as string);
    return 0;
  }
  try {
    return await run(rest, out);
  } catch (e) {
    return reportError(e, command, out);
  }
}

function reportError(e: unknown, command: string, out: Out): number {
  if (
    e instanceof UsageError ||
    (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))
  ) {
    out.error(`loraforge ${command}: ${e.message}`);
    out.error(`(loraforge help ${command} for usage)`);
    return 2;
  }
  if (e instanceof DatasetError) {
    printProblems(out, e.problems);
    out.error("nothing was written: fix the dataset and run again");
    return 3;
  }
  if (e instanceof TokenizerError || e instanceof TemplateError) {
    printProblems(out, e.problems);
    return 3;
  }
  if (
    e instanceof InvalidLoraFineTuneError ||
    e instanceof LocalRunError ||
    e instanceof RunConfigError ||
    e instanceof RunSetupError ||
    e instanceof Llama2cError ||
    e instanceof SentencePieceError ||
    e instanceof ShardError
  ) {
    out.error(e.message);
    return 3;
  }
  if (e instanceof Error && "code" in e && typeof e.code === "string" && "path" in e) {
    out.error(`${e.message}`); // file system: ENOENT, EACCES, ... with the path
    return 3;
  }
  out.error(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return 1;
}
