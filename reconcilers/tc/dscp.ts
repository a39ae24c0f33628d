/** DSCP code points by name (RFC 2474 class selectors, RFC 2597 AF, RFC 3246 EF). */
export const DSCP_NAMES: Record<string, number> = { be: 0, ef: 46, va: 44 };
for (let c = 0; c <= 7; c++) DSCP_NAMES[`cs${c}`] = c * 8;
for (let c = 1; c <= 4; c++) for (let d = 1; d <= 3; d++) DSCP_NAMES[`af${c}${d}`] = c * 8 + d * 2;

export function parseDscp(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isInteger(raw) && raw >= 0 && raw <= 63 ? raw : undefined;
  const s = String(raw).toLowerCase();
  if (/^\d{1,2}$/.test(s)) return parseDscp(Number(s));
  return DSCP_NAMES[s];
}
