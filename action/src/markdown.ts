/** A value inside a markdown table cell: no pipes or newlines that would break the row. */
export function escapeCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}
