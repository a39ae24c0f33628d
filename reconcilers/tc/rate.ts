/**
 * tc(8) rates. The kernel keeps an HTB rate in bytes per second (TCA_HTB_RATE64), so a rate is
 * stored as bytes/s; `tcRate` prints it exactly as `tc class show` does (iproute2's
 * print_rate: SI units, divide by 1000 while the value is a multiple of 1000 or at least a
 * million, truncating), so the desired and the live text compare as strings.
 */
const UNIT: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/** "100mbit" → 12500000 (bytes/s); undefined when it is not tc rate syntax or not a whole byte rate. */
export function parseRate(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([kmgt]?)(bit|bps)$/i.exec(text.trim());
  if (!m) return undefined;
  const scale = UNIT[m[2]!.toLowerCase()]!;
  const bits = Number(m[1]) * scale * (m[3]!.toLowerCase() === "bps" ? 8 : 1);
  const bytes = Math.floor(bits / 8);
  return Number.isFinite(bytes) && bytes >= 1 ? bytes : undefined;
}

export function tcRate(bytesPerSec: number): string {
  const units = ["", "K", "M", "G", "T"];
  let rate = bytesPerSec * 8;
  let i = 0;
  for (; i < units.length - 1; i++) {
    if (rate < 1000) break;
    if (rate % 1000 !== 0 && rate < 1e6) break;
    rate = Math.floor(rate / 1000);
  }
  return `${rate}${units[i]}bit`;
}
