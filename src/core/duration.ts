import { BoltError } from "./diagnostics.js";

/** "60s", "2m", "1h", "180d", "300ms", or plain seconds. */
export function parseDuration(s: string | number, what = "duration"): number {
  if (typeof s === "number") return s * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(s);
  if (!m) throw new BoltError(`${what}: "${s}" is not a duration (e.g. 300ms, 60s, 5m, 1h, 180d)`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"];
  return Math.round(n * unit);
}
