/**
 * Kernel-kept ownership marker for links: the interface alias (IFLA_IFALIAS, up to 255
 * bytes, survives bolt restarts and a lost state dir). Format: `bolt1,k=v,k=v`. Values are
 * validated names/addresses, so they never contain "," "=" or whitespace.
 */
export const ALIAS_MAGIC = "bolt1";
const IFALIAS_MAX = 255;

/** "link:bolt-front" → "interface bolt-front": a resource's kernel key as a user reads it. */
export function keyName(k: string): string {
  return k.replace(/^link:/, "interface ");
}

export function encodeAlias(fields: Record<string, string | undefined>): string {
  const parts = [ALIAS_MAGIC];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === "") continue;
    if (/[,=\s"'\\]/.test(v)) throw new Error(`internal: alias value for ${k} has a reserved character: ${v}`);
    parts.push(`${k}=${v}`);
  }
  const s = parts.join(",");
  if (s.length > IFALIAS_MAX) throw new Error(`internal: ownership alias over ${IFALIAS_MAX} bytes: ${s}`);
  return s;
}

export function decodeAlias(alias: string | undefined): Record<string, string> | undefined {
  if (!alias || !alias.startsWith(ALIAS_MAGIC + ",")) return undefined;
  const out: Record<string, string> = {};
  for (const part of alias.slice(ALIAS_MAGIC.length + 1).split(",")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
