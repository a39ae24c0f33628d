import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { IpLink, LiveReader } from "../../src/core/live-reader.js";
import { decodeAlias } from "../../src/core/ownership.js";
import type { Change } from "../../src/core/resource.js";

/** The kernel's default net.ipv4.neigh.default.gc_thresh3: below half of it in endpoints, nothing is read. */
const KERNEL_DEFAULT = 1024;

/**
 * Each endpoint on a bridge costs the kernel's neighbour (ARP) table two entries at least: its
 * address in the target's table, its gateway in the endpoint's. That table is one for every
 * namespace on the host, and past net.ipv4.neigh.default.gc_thresh3 (1024 by default, a host
 * setting) the kernel drops the packets that need a new entry ("neighbor table overflow"). A plan
 * that makes endpoints says so when this target's alone would fill it; bolt leaves the host's
 * own settings alone. Read only at that scale, and only in plans that add endpoints.
 */
export async function neighbourTableWarning(changes: Change[], io: LiveReader): Promise<Diagnostic[]> {
  const creates = changes.filter((c) => c.action === "create" && c.after && c.after.spec.type !== "none");
  if (!creates.length) return [];
  const links = await io.ipJson<IpLink[]>(["-d", "link", "show"]);
  const live = new Set(links.map((l) => decodeAlias(l.ifalias)?.ep).filter((e): e is string => !!e));
  const gone = changes.filter((c) => c.action === "delete" && live.has(c.name)).length;
  const endpoints = live.size + creates.filter((c) => !live.has(c.name)).length - gone;
  if (endpoints * 2 <= KERNEL_DEFAULT) return [];
  const r = await io.exec(["sysctl", "-n", "net.ipv4.neigh.default.gc_thresh3"], null);
  const limit = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isInteger(limit) || endpoints * 2 <= limit) return [];
  return [
    {
      severity: "warning",
      message: `${endpoints} endpoints need about ${endpoints * 2} entries in the kernel's neighbour (ARP) table, which every namespace on this host shares; its limit net.ipv4.neigh.default.gc_thresh3 is ${limit}, and past it the kernel drops packets ("neighbor table overflow")`,
      source: creates[0]!.after!.source,
      hint: `raise it on the host (bolt leaves host-wide settings alone), e.g. sysctl -w net.ipv4.neigh.default.gc_thresh2=${endpoints * 2} net.ipv4.neigh.default.gc_thresh3=${endpoints * 4} (and net.ipv6.neigh.default.* for IPv6)`,
    },
  ];
}
