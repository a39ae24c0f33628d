import { createHash } from "node:crypto";

/** IFNAMSIZ is 16 including the NUL: the kernel refuses interface names over 15 bytes. */
export const IFNAME_MAX = 15;
/** Characters that are safe in an interface name and in every tool bolt feeds it to (ip, nft, wg). */
export const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function ifnameProblem(name: string): string | undefined {
  if (name.length > IFNAME_MAX) return `interface name "${name}" is ${name.length} characters; Linux allows at most ${IFNAME_MAX}`;
  if (!IFNAME_RE.test(name)) return `interface name "${name}" may only contain letters, digits, "_", "." and "-", starting with a letter or digit`;
  if (name === "all" || name === "default") return `interface name "${name}" is reserved by the kernel (/proc/sys/net/*/conf/${name})`;
  return undefined;
}

/** A readable interface name from a logical one: prefix+name when it fits, else prefix+head+hash. */
export function deriveIfname(prefix: string, name: string): string {
  const plain = prefix + name;
  if (plain.length <= IFNAME_MAX && IFNAME_RE.test(plain)) return plain;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 5);
  const room = IFNAME_MAX - prefix.length - hash.length - 1;
  const head = name.replace(/[^A-Za-z0-9_.-]/g, "").slice(0, room);
  return `${prefix}${head}-${hash}`;
}
