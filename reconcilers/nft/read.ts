import { parseIp6 } from "../../src/core/ipv6.js";
import { hash8 } from "./script.js";

/** The parts of `nft -j list table inet bolt` bolt reads. */
interface NftJsonItem {
  chain?: { name: string; type?: string; hook?: string; prio?: number; policy?: string };
  set?: { name: string; type?: string | string[]; flags?: string[]; comment?: string; elem?: unknown[] };
  rule?: { chain: string; comment?: string; handle: number; expr: Record<string, unknown>[] };
}

export interface LiveTable {
  spec: Record<string, string>;
  /** rule field → "packets bytes" (for `bolt show`) */
  counters: Record<string, string>;
}

/** Parses bolt's own table into the spec that tableSpec() produces for the desired one. */
export function parseTable(json: { nftables: NftJsonItem[] }): LiveTable {
  const spec: Record<string, string> = {};
  const counters: Record<string, string> = {};
  const order = new Map<string, string[]>();
  for (const item of json.nftables) {
    if (item.chain) {
      const c = item.chain;
      spec[`chain ${c.name}`] = c.hook ? `${c.type} ${c.hook} ${c.prio} ${c.policy ?? "accept"}` : "regular";
      order.set(c.name, order.get(c.name) ?? []);
    } else if (item.set) {
      const s = item.set;
      const m = /^bolt:(d:)?([0-9a-f]{8})$/.exec(s.comment ?? "");
      spec[`set ${s.name}`] = !m
        ? "foreign"
        : m[1]
          ? `dynamic ${m[2]}`
          : `${(s.elem ?? []).length} elements ${m[2]}${staticSetHash(s) === m[2] ? "" : " (elements changed)"}`;
    } else if (item.rule) {
      const r = item.rule;
      const m = /^bolt:(.+)\|([0-9a-f]{8})$/.exec(r.comment ?? "");
      // A rule without bolt's comment in bolt's table was added by hand: drift to remove.
      const key = m ? m[1]! : `unmanaged#${r.handle}`;
      spec[`${r.chain} ${key}`] = m ? m[2]! : "unmanaged";
      const keys = order.get(r.chain) ?? [];
      keys.push(key);
      order.set(r.chain, keys);
      const counter = r.expr.find((e) => "counter" in e)?.counter as { packets: number; bytes: number } | undefined;
      if (counter) counters[`${r.chain} ${key}`] = `${counter.packets} packets, ${counter.bytes} bytes`;
    }
  }
  for (const [chain, keys] of order) spec[`${chain} order`] = hash8(keys.join("\n"));
  return { spec, counters };
}

/**
 * The hash tableScript put in a static set's comment, recomputed from what the kernel lists:
 * an element replaced by hand (same count) must show as drift. Elements are written back the
 * way compile.ts writes them (quoted ifnames; addresses, prefixes, ranges in address order).
 */
function staticSetHash(s: NonNullable<NftJsonItem["set"]>): string {
  const type = Array.isArray(s.type) ? s.type.join(" . ") : s.type;
  const decl = [`type ${type}`, ...(s.flags?.length ? [`flags ${s.flags.join(",")}`] : [])];
  const elems = (s.elem ?? []).map((e): [string, bigint] => {
    if (typeof e === "string") return s.type === "ifname" ? [`"${e}"`, 0n] : [e, ipOrder(e)];
    const o = e as { prefix?: { addr: string; len: number }; range?: [string, string]; concat?: string[] };
    if (o.concat && Array.isArray(s.type)) return [o.concat.map((x, i) => ((s.type as string[])[i] === "ifname" ? `"${x}"` : x)).join(" . "), 0n];
    if (o.prefix) return [`${o.prefix.addr}/${o.prefix.len}`, ipOrder(o.prefix.addr)];
    if (o.range) return [`${o.range[0]}-${o.range[1]}`, ipOrder(o.range[0])];
    return [JSON.stringify(e), 0n];
  });
  elems.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return hash8(decl.join(";") + "|" + elems.map((e) => e[0]).join(","));
}

/** Address order of an IPv4 or IPv6 element (a set holds one family). */
function ipOrder(ip: string): bigint {
  if (ip.includes(":")) return parseIp6(ip) ?? 0n;
  return BigInt(ip.split(".").reduce((n, o) => n * 256 + Number(o), 0));
}
