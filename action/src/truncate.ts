// Fitting a comment under GitHub's 65,536-character limit without breaking its markdown:
// optional parts go first, then long parts are cut at a line boundary with their code fence
// or <details> closed, and only as a last resort the tail is cut.

/** GitHub refuses issue comments longer than this. */
export const GITHUB_COMMENT_LIMIT = 65_536;
/** What the action aims for: a margin for the platform counting differently than JS. */
export const COMMENT_BUDGET = 65_000;

export interface Section {
  text: string;
  /** Left out first when the whole is too long (e.g. the loss chart). */
  optional?: boolean;
  /** Returns a well-formed version of at most `max` characters (e.g. a log cut short). */
  shrink?: (max: number) => string;
}

export const TRUNCATION_NOTE =
  "\n\n> ✂️ This comment was cut to fit GitHub's size limit; the job summary and the run's status have everything.";

/** The longest prefix of `text` of at most `max` characters that ends at a line boundary. */
export function cutAtLine(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  const slice = text.slice(0, max);
  const nl = slice.lastIndexOf("\n");
  let cut = nl > 0 ? slice.slice(0, nl) : slice;
  // Never split a UTF-16 surrogate pair.
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut;
}

/** A fenced block whose content is cut to fit `max` characters in all. */
export function shrinkFenced(content: string, max: number): string {
  // A fence longer than any run of backticks inside, so the content cannot close it.
  const longest = Math.max(0, ...(content.match(/`+/g) ?? []).map((r) => r.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  const open = `${fence}text\n`;
  const close = `\n${fence}`;
  const note = "\n… (cut)";
  if (open.length + content.length + close.length <= max) return `${open}${content}${close}`;
  const room = max - open.length - close.length - note.length;
  if (room <= 0) return "";
  return `${open}${cutAtLine(content, room)}${note}${close}`;
}

/** Counts fences so a hard cut can close one left open. */
function openFence(text: string): string | undefined {
  let open: string | undefined;
  for (const line of text.split("\n")) {
    const m = /^(`{3,}|~{3,})/.exec(line.trimStart());
    if (!m?.[1]) continue;
    if (open === undefined) open = m[1];
    else if (m[1].startsWith(open[0] ?? "`") && m[1].length >= open.length) open = undefined;
  }
  return open;
}

export function fitSections(
  sections: readonly Section[],
  limit = COMMENT_BUDGET,
): { text: string; truncated: boolean } {
  const join = (parts: readonly Section[]) =>
    parts
      .map((s) => s.text)
      .filter((t) => t !== "")
      .join("\n\n");
  let parts = [...sections];
  let text = join(parts);
  if (text.length <= limit) return { text, truncated: false };

  parts = parts.filter((s) => !s.optional);
  text = join(parts);
  const budget = limit - TRUNCATION_NOTE.length;
  if (text.length > budget) {
    // Shrink the shrinkable parts, largest first, each to what is left for it.
    const order = parts
      .map((s, i) => ({ s, i }))
      .filter(({ s }) => s.shrink)
      .sort((a, b) => b.s.text.length - a.s.text.length);
    for (const { s, i } of order) {
      const over = join(parts).length - budget;
      if (over <= 0) break;
      const target = Math.max(0, s.text.length - over);
      const shrunk = s.shrink?.(target) ?? "";
      parts[i] = { text: shrunk.length <= target ? shrunk : "" };
    }
    text = join(parts);
  }
  if (text.length > budget) {
    let cut = cutAtLine(text, budget - 8);
    const fence = openFence(cut);
    if (fence) cut += `\n${fence}`;
    text = cut;
  }
  return { text: `${text}${TRUNCATION_NOTE}`, truncated: true };
}
