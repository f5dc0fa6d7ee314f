/** Characters that stay as they are inside `codeHtml`; Markdown, GitHub's autolinks and mentions need others. */
const PLAIN = /[A-Za-z0-9/ -]/;

/**
 * Every character other than letters, digits, "/", "-" and space as a numeric character
 * reference; control characters as their visible pictures (U+2400…), except "\n" when
 * `keepNewlines` (inside <pre>, where a line break is text).
 */
function inert(s: string, keepNewlines: boolean): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (keepNewlines && cp === 0x0a) {
      out += "\n";
      continue;
    }
    let shown = cp;
    if (cp < 0x20) shown = 0x2400 + cp;
    else if (cp === 0x7f) shown = 0x2421;
    else if (cp >= 0x80 && cp <= 0x9f) shown = 0xfffd;
    out += shown === cp && PLAIN.test(ch) ? ch : `&#${shown};`;
  }
  return out;
}

/**
 * User-controlled text (a dataset path from a pull request) shown as code in a comment, inert:
 * `<code>` with every character other than letters, digits, "/", "-" and space written as a
 * numeric character reference. GitHub parses Markdown *inside* inline HTML, so escaping only
 * `<&>` would still let "![x](url)", "[x](url)", "*", "|" (a table cell) and "@user" act;
 * written as references they are text (":" and "." too, so no "https://" or "www." autolink).
 * Control characters are shown as their visible pictures (U+2400…), so a newline cannot
 * break the line or the table row.
 */
export function codeHtml(s: string): string {
  return `<code>${inert(s, false)}</code>`;
}

/**
 * Multi-line user-controlled text (a model's answer, a dataset's instruction) as a block, inert:
 * a `<pre>` starting its own line (an HTML block that ends only at "</pre>", which the escaped
 * text cannot contain), the text escaped as in `codeHtml` but with its line breaks kept.
 * An empty text shows as an empty block.
 */
export function preHtml(s: string): string {
  return `<pre>${inert(s, true)}</pre>`;
}
