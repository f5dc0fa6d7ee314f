/** Characters that stay as they are inside `codeHtml`; Markdown, GitHub's autolinks and mentions need others. */
const PLAIN = /[A-Za-z0-9/ -]/;

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
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    let shown = cp;
    if (cp < 0x20) shown = 0x2400 + cp;
    else if (cp === 0x7f) shown = 0x2421;
    else if (cp >= 0x80 && cp <= 0x9f) shown = 0xfffd;
    out += shown === cp && PLAIN.test(ch) ? ch : `&#${shown};`;
  }
  return `<code>${out}</code>`;
}
