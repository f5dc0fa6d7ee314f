/**
 * The loraforge command: parse the command line, run one command, turn errors into messages
 * and exit codes (0 ok, 1 bug, 2 usage, 3 invalid input, 130 interrupted, or the trainer's code).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { bashCompletion, zshCompletion } from "./args/completion.ts";
import { parseCommand } from "./args/flags.ts";
import { didYouMean } from "./args/suggest.ts";
import { chatCommand } from "./commands/chat.ts";
import { evalCommand } from "./commands/eval.ts";
import { exportCommand } from "./commands/export.ts";
import { COMMAND_HELP, DECLARATIONS, MAIN_HELP } from "./commands/help.ts";
import { importCommand } from "./commands/importCmd.ts";
import { jobCli } from "./commands/job.ts";
import { consoleOut, type Out, printProblems } from "./commands/output.ts";
import { prepareCommand } from "./commands/prepare.ts";
import { trainCommand } from "./commands/train.ts";
import { validateCommand } from "./commands/validate.ts";
import { DatasetError } from "./dataset/problems.ts";
import { classifyError, UsageError } from "./errors.ts";
import { jobCommand } from "./inpod/command.ts";
import { CLI_ROOT } from "./paths.ts";
import { findCore } from "./train/core.ts";

const COMMANDS: Record<string, (args: string[], out: Out) => Promise<number>> = {
  validate: validateCommand,
  prepare: prepareCommand,
  train: trainCommand,
  eval: evalCommand,
  import: importCommand,
  job: jobEntry,
  export: exportCommand,
  chat: chatCommand,
};

export async function main(argv: string[], out: Out = consoleOut): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h") {
    out.info(MAIN_HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-V" || command === "version") {
    out.info(versionText());
    return 0;
  }
  if (command === "help") {
    const topic = rest[0];
    if (topic && !COMMAND_HELP[topic]) {
      out.error(
        `loraforge help: no command "${topic}"${didYouMean(topic, Object.keys(COMMAND_HELP))}\n`,
      );
      out.info(MAIN_HELP);
      return 2;
    }
    out.info(topic ? (COMMAND_HELP[topic] as string) : MAIN_HELP);
    return 0;
  }
  if (command === "completion") return completionCommand(rest, out);
  const run = COMMANDS[command];
  if (!run) {
    out.error(
      `loraforge: unknown ${command.startsWith("-") ? "option" : "command"} "${command}"${didYouMean(command, [...Object.keys(COMMANDS), "completion", "help", "--help", "--version"])}`,
    );
    out.error("(loraforge --help lists the commands)");
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

function completionCommand(args: string[], out: Out): number {
  const shell = args[0];
  if (args.length !== 1 || (shell !== "bash" && shell !== "zsh")) {
    out.error(
      `loraforge completion: give the shell, bash or zsh${shell ? ` (got "${shell}"${didYouMean(shell, ["bash", "zsh"])})` : ""}`,
    );
    out.error("  bash: source <(loraforge completion bash)");
    out.error("  zsh:  source <(loraforge completion zsh)");
    return 2;
  }
  out.info(shell === "bash" ? bashCompletion(DECLARATIONS) : zshCompletion(DECLARATIONS));
  return 0;
}

/** "loraforge 0.1.0" and the core's own --version line, or where it was looked for. */
export function versionText(env: NodeJS.ProcessEnv = process.env): string {
  const pkg = z
    .object({ version: z.string() })
    .parse(JSON.parse(readFileSync(join(CLI_ROOT, "package.json"), "utf8")));
  let core: string;
  try {
    const path = findCore(env);
    const r = spawnSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 });
    core =
      r.status === 0
        ? `${r.stdout.trim()} (${path})`
        : `${path}: --version failed (${r.error?.message ?? `exit ${r.status}`})`;
  } catch (e) {
    core = `loraforge-core: ${e instanceof Error ? e.message : String(e)}`;
  }
  return `loraforge ${pkg.version} (cli)\n${core}`;
}

/** `loraforge job` checks its flags against its declaration, then the entrypoint reads them. */
function jobEntry(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parseCommand(jobCli, args);
  if (positionals.length > 0 || !values.spec)
    throw new UsageError("job takes --spec FILE and nothing else", "job");
  return jobCommand(args, out);
}

// classifyError (errors.ts) is re-exported for the package's users and the tests.
export { classifyError };

function reportError(e: unknown, command: string, out: Out): number {
  const c = classifyError(e);
  if (c.problems) {
    printProblems(out, c.problems);
    if (e instanceof DatasetError) out.error("nothing was written: fix the dataset and run again");
  } else out.error(c.code === 2 ? `loraforge ${command}: ${c.message}` : c.message);
  if (c.code === 2) out.error(`(loraforge help ${command} for usage)`);
  return c.code;
}
