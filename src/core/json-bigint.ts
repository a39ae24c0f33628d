/**
 * JSON for values that hold IPv6 addresses as bigint (the intent): JSON.stringify throws on a
 * bigint, so each is written as `{"$bigint":"<decimal>"}` and read back as a bigint.
 */
export function stringifyBig(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? { $bigint: x.toString() } : x));
}

export function parseBig(text: string): unknown {
  return JSON.parse(text, (_k, x: unknown) => {
    if (x && typeof x === "object" && !Array.isArray(x)) {
      const keys = Object.keys(x);
      const b = (x as { $bigint?: unknown }).$bigint;
      if (keys.length === 1 && typeof b === "string" && /^\d+$/.test(b)) return BigInt(b);
    }
    return x;
  });
}
