import { formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import type { Cidr6 } from "../../src/core/ipv6.js";

/**
 * The mesh's IPv6 side (Tailscale gives every node an address in fd7a:115c:a1e0::/48 next to
 * its 100.64.0.0/10 one). A node's IPv6 mesh address is derived from its IPv4 mesh address:
 * the prefix with the 32 bits of the IPv4 address as its last 32 bits (100.64.0.1 in the
 * default prefix is fd7a:115c:a1e0::6440:1). Every host computes the same address for a node
 * from what it already knows (a static peer's `address`, a store node's lease), so neither
 * the mesh file nor the etcd store needs another key; a node may still give its own
 * (`address6`), which its peers must then list too.
 */
export const MESH_CIDR6 = "fd7a:115c:a1e0::/48";

/** A prefix the mesh can use: no host bits and room for the 32-bit IPv4 part (/96 or shorter). */
export function meshCidr6Problem(text: string): string | undefined {
  const c = parseCidr6(text);
  if (!c || !text.includes("/")) return "is not an IPv6 prefix like fd7a:115c:a1e0::/48";
  if (c.hostBits) return "has host bits set past its prefix length";
  if (c.prefix > 96) return "is longer than /96: the last 32 bits of a node's IPv6 address are its IPv4 mesh address";
  return undefined;
}

/** The IPv6 mesh address derived from an IPv4 one inside `cidr6` (text, checked by meshCidr6Problem). */
export function deriveAddress6(cidr6: string, address4: number): bigint {
  const c = parseCidr6(cidr6)!;
  return c.network | BigInt(address4 >>> 0);
}

/** A node's IPv6 mesh address: its own (`address6`) or the derived one; undefined when the mesh has no IPv6. */
export function nodeAddress6(mesh: { cidr6?: string }, node: { address: number; address6?: string }): bigint | undefined {
  if (!mesh.cidr6) return undefined;
  if (node.address6 !== undefined) return parseIp6(node.address6);
  return deriveAddress6(mesh.cidr6, node.address);
}

/** nodeAddress6 as text ("fd7a:115c:a1e0::6440:1"). */
export function nodeAddress6Text(mesh: { cidr6?: string }, node: { address: number; address6?: string }): string | undefined {
  const a = nodeAddress6(mesh, node);
  return a === undefined ? undefined : formatIp6(a);
}

/** `fd7a:115c:a1e0::6440:1/128` — what `ip` prints for the address on the interface and the allowed IP. */
export function host128(ip: bigint): string {
  return `${formatIp6(ip)}/128`;
}

/**
 * autogroup:internet for IPv6: global unicast (2000::/3), which holds neither the mesh's ULA
 * prefix (fc00::/7), link-local (fe80::/10) nor multicast (ff00::/8).
 */
export const INTERNET6: Cidr6[] = [parseCidr6("2000::/3")!].map((c) => ({ network: c.network, prefix: c.prefix }));

/** An explicit IPv6 mesh address ("fd7a:…::5" or with "/128"); undefined if it is not one. */
export function parseAddress6(text: string): bigint | undefined {
  const c = parseCidr6(text);
  if (!c || (text.includes("/") && c.prefix !== 128)) return undefined;
  return c.addr;
}
