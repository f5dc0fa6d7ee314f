/** Maps string offsets to 1-based line numbers (binary search over newline positions). */
export class LineIndex {
  private readonly newlines: number[] = [];
  constructor(text: string) {
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.newlines.push(i);
  }
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.newlines[mid] as number) < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }
}
