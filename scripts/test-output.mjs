// Helpers for scripts/test.mjs's compact (CI) output, kept apart so tests can import them.

/**
 * The part of a suite's output worth printing in compact mode: each failing test's TAP block
 * ("not ok" up to the next test line at the same depth), or the last 150 lines when the run
 * failed without one (a build or start-up error).
 */
export function failures(output) {
  const lines = output.split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok \d+ /.exec(lines[i]);
    if (!m) continue;
    const depth = m[1].length;
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s{0,${depth}}(?:not )?ok \\d+ `).test(lines[j])) j++;
    blocks.push(lines.slice(i, j).join("\n"));
    i = j - 1;
  }
  return blocks.length > 0 ? blocks.join("\n") : lines.slice(-150).join("\n");
}
