/**
 * The command table's declarations in the order `loraforge --help` lists them, and the help texts
 * generated from them (what each command does, its flags, an example).
 */
import { type Command, helpText } from "../args/flags.ts";
import { chatCli } from "./chat.ts";
import { evalCli } from "./eval.ts";
import { exportCli } from "./export.ts";
import { importCli } from "./importCmd.ts";
import { jobCli } from "./job.ts";
import { prepareCli } from "./prepare.ts";
import { trainCli } from "./train.ts";
import { validateCli } from "./validate.ts";

export const DECLARATIONS: readonly Command[] = [
  validateCli,
  prepareCli,
  trainCli,
  evalCli,
  importCli,
  exportCli,
  chatCli,
  jobCli,
] as readonly Command[];

const EXTRA: readonly { usage: string; text: string }[] = [
  {
    usage: "completion bash|zsh",
    text: "print the shell completion script (source <(loraforge completion bash))",
  },
  { usage: "help <command>", text: "the help of one command" },
];

const width =
  Math.max(...[...DECLARATIONS.map((c) => c.summary), ...EXTRA].map((s) => s.usage.length)) + 4;

export const MAIN_HELP = `loraforge: LoRA fine-tuning of Llama-family models, on this machine or on Kubernetes.

Usage: loraforge <command> [options]      (loraforge help <command> for details)

Commands:
${[...DECLARATIONS.map((c) => c.summary), ...EXTRA].map((s) => `  ${s.usage.padEnd(width)}${s.text}`).join("\n")}

Options:
  ${"--version, -V".padEnd(width)}the cli's version and the native core's
  ${"--help, -h".padEnd(width)}this text

First run (no cluster, no GPU):   npm run demo
`;

export const COMMAND_HELP: Record<string, string> = Object.fromEntries(
  DECLARATIONS.map((c) => [c.name, helpText(c)]),
);
