import { z } from "zod";

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** "90" (seconds), "45s", "90m", "5h", "1h30m" → seconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^(\d+[hms])+$/.test(t)) return undefined;
  let seconds = 0;
  for (const m of t.matchAll(/(\d+)([hms])/g)) {
    seconds += Number(m[1]) * (UNIT_SECONDS[m[2] ?? "s"] ?? 1);
  }
  return seconds;
}

export const DurationSchema = z.string().transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `"${text}" is not a duration (use seconds, or e.g. 45s, 90m, 5h, 1h30m)`,
    });
    return z.NEVER;
  }
  return seconds;
});

/** 3725 → "1h 2m 5s" */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const parts: string[] = [];
  if (h > 0) parts.push(`${h}h`);
  if (m > 0) parts.push(`${m}m`);
  if (sec > 0 || parts.length === 0) parts.push(`${sec}s`);
  return parts.join(" ");
}
