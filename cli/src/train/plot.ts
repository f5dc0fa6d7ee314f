/**
 * The loss curve as a PNG, drawn pixel by pixel (pngjs only encodes): training loss per step,
 * validation loss at each evaluation, axes with tick labels in a 3x5 bitmap font.
 */
import { PNG } from "pngjs";

export interface Series {
  label: string;
  color: [number, number, number];
  points: { x: number; y: number }[];
  /** Draw markers at the points (sparse series such as validation). */
  markers?: boolean;
}

// 3x5 glyphs, one row per string, '#' = ink.
const GLYPHS: Record<string, string[]> = {
  "0": ["###", "#.#", "#.#", "#.#", "###"],
  "1": [".#.", "##.", ".#.", ".#.", "###"],
  "2": ["###", "..#", "###", "#..", "###"],
  "3": ["###", "..#", "###", "..#", "###"],
  "4": ["#.#", "#.#", "###", "..#", "..#"],
  "5": ["###", "#..", "###", "..#", "###"],
  "6": ["###", "#..", "###", "#.#", "###"],
  "7": ["###", "..#", "..#", "..#", "..#"],
  "8": ["###", "#.#", "###", "#.#", "###"],
  "9": ["###", "#.#", "###", "..#", "###"],
  ".": ["...", "...", "...", "...", ".#."],
  "-": ["...", "...", "###", "...", "..."],
  " ": ["...", "...", "...", "...", "..."],
  a: ["...", "##.", "..#", "###", "###"],
  e: ["...", "###", "###", "#..", "###"],
  i: [".#.", "...", ".#.", ".#.", ".#."],
  l: ["#..", "#..", "#..", "#..", "###"],
  n: ["...", "##.", "#.#", "#.#", "#.#"],
  o: ["...", "###", "#.#", "#.#", "###"],
  p: ["...", "###", "#.#", "###", "#.."],
  r: ["...", "###", "#..", "#..", "#.."],
  s: ["...", "###", "##.", "..#", "###"],
  t: [".#.", "###", ".#.", ".#.", ".##"],
  v: ["...", "#.#", "#.#", "#.#", ".#."],
};

class Canvas {
  readonly png: PNG;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.png.data.fill(255);
  }
  set(x: number, y: number, [r, g, b]: [number, number, number]) {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    this.png.data[i] = r;
    this.png.data[i + 1] = g;
    this.png.data[i + 2] = b;
    this.png.data[i + 3] = 255;
  }
  line(x0: number, y0: number, x1: number, y1: number, c: [number, number, number], thick = 1) {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let k = 0; k <= n; k++) {
      const x = x0 + ((x1 - x0) * k) / n;
      const y = y0 + ((y1 - y0) * k) / n;
      for (let dx = 0; dx < thick; dx++)
        for (let dy = 0; dy < thick; dy++) this.set(x + dx, y + dy, c);
    }
  }
  text(s: string, x: number, y: number, c: [number, number, number], scale = 2) {
    for (const ch of s) {
      const g = GLYPHS[ch] ?? GLYPHS[" "];
      g?.forEach((row, ry) => {
        for (let rx = 0; rx < 3; rx++)
          if (row[rx] === "#")
            for (let sx = 0; sx < scale; sx++)
              for (let sy = 0; sy < scale; sy++)
                this.set(x + rx * scale + sx, y + ry * scale + sy, c);
      });
      x += 4 * scale;
    }
  }
}

function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const fmt = (v: number) =>
  Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)));

export function renderLossCurve(series: Series[], width = 800, height = 480): Buffer {
  const c = new Canvas(width, height);
  const left = 70;
  const right = width - 20;
  const top = 40;
  const bottom = height - 50;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  let yMin = ys.length ? Math.min(...ys) : 0;
  let yMax = ys.length ? Math.max(...ys) : 1;
  const pad = (yMax - yMin || 1) * 0.05;
  yMin -= pad;
  yMax += pad;
  const px = (x: number) => left + ((x - xMin) / (xMax - xMin)) * (right - left);
  const py = (y: number) => bottom - ((y - yMin) / (yMax - yMin)) * (bottom - top);
  const grid: [number, number, number] = [225, 225, 225];
  const ink: [number, number, number] = [40, 40, 40];
  for (const t of niceTicks(yMin, yMax, 6)) {
    c.line(left, py(t), right, py(t), grid);
    c.text(fmt(t), 8, py(t) - 5, ink);
  }
  for (const t of niceTicks(xMin, xMax, 8)) {
    c.line(px(t), top, px(t), bottom, grid);
    const label = fmt(t);
    c.text(label, px(t) - label.length * 4, bottom + 8, ink);
  }
  c.line(left, top, left, bottom, ink);
  c.line(left, bottom, right, bottom, ink);
  c.text("step", (left + right) / 2 - 16, height - 20, ink);
  c.text("loss", 8, 12, ink);
  let legendX = left + 60;
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p.y));
    for (let i = 1; i < pts.length; i++) {
      const a = pts[i - 1] as { x: number; y: number };
      const b = pts[i] as { x: number; y: number };
      c.line(px(a.x), py(a.y), px(b.x), py(b.y), s.color, 2);
    }
    if (s.markers || pts.length === 1)
      for (const p of pts)
        for (let d = -3; d <= 3; d++)
          c.line(px(p.x) - 3, py(p.y) + d, px(p.x) + 3, py(p.y) + d, s.color);
    c.line(legendX, 17, legendX + 20, 17, s.color, 3);
    c.text(s.label, legendX + 26, 12, ink);
    legendX += 26 + s.label.length * 8 + 30;
  }
  return PNG.sync.write(c.png);
}
