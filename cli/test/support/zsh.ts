// Asks a real zsh what it completes: an interactive zsh in a pseudo-terminal (zsh/zpty) runs
// compinit, sources the completion script, and gets each line typed followed by Tab; a compadd
// wrapper reports every candidate the completion offers. One zsh for all the lines.

import { spawnSync } from "node:child_process";

/** The driver, run as `zsh -f -c DRIVER zsh SCRIPT LINE...`; prints "LINE:<line>", then candidates. */
const DRIVER = String.raw`
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z 'PROMPT=""; RPROMPT=""; autoload -Uz compinit; compinit -u -D'
zpty -w z "source ${"$"}{1:A}"
zpty -w z 'compadd() { local -a found; builtin compadd -O found "$@"; print -rn -- ${"$"}{found[@]/#/$'"'"'\nCANDIDATE:'"'"'}; builtin compadd "$@" }'
zpty -w z 'comppostfuncs=(_done); _done() { comppostfuncs=(_done); print -n "\nCOMPLETION""-DONE\n" }'
zpty -w z 'print SETUP""-DONE'
zpty -r z out '*SETUP-DONE*'
for line in "${"$"}{@[2,-1]}"; do
  zpty -n -w z "${"$"}line"$'\t'
  zpty -r z out '*COMPLETION-DONE*'
  print -r -- "LINE:${"$"}line"
  print -r -- "${"$"}{out//$'\r'/}" | grep -a '^CANDIDATE:' | sed 's/^CANDIDATE://'
  zpty -n -w z $'\x15'
done
zpty -d z
`;

/** What zsh offers after each of `lines` (a command line typed up to the cursor), trimmed and sorted. */
export function zshCompletions(script: string, lines: readonly string[]): Map<string, string[]> {
  const r = spawnSync("zsh", ["-f", "-c", DRIVER, "zsh", script, ...lines], {
    encoding: "utf8",
    timeout: 30_000,
  });
  if (r.error) throw new Error(`zsh: ${r.error.message} (install the zsh package)`);
  if (r.status !== 0) throw new Error(`zsh exited with ${r.status}: ${r.stderr}`);
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const l of r.stdout.split("\n")) {
    if (l.startsWith("LINE:")) {
      current = [];
      out.set(l.slice("LINE:".length), current);
    } else if (current && l.trim() !== "") current.push(l.trim());
  }
  for (const [line, found] of out) out.set(line, [...new Set(found)].sort());
  return out;
}
