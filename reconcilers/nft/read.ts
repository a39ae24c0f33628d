import { parseIp6 } from "../../src/core/ipv6.js";
import { hash8 } from "./script.js";

/** The parts of `nft -j list table inet bolt` bolt reads. */
interface NftJsonItem {
  chain?: { name: string; type?: string; hook?: string; prio?: number; policy?: string };
  set?: { name: string; type?: string | string[]; flags?: string[]; comment?: string; elem?: unknown[] };
  rule?: { chain: string; comment?: string; handle: number; expr: Record<string, unknown>[] };
}

/** A live rule: its key and hash from bolt's comment (`unmanaged` without one), and the kernel's handle. */
export interface LiveRule {
  key: string;
  hash: string;
  handle: number;
  managed: boolean;
}

export interface LiveChain {
  name: string;
  /** as tableSpec's `chain NAME` field */
  header: string;
  rules: LiveRule[];
}

export interface LiveSet {
  name: string;
  /** no `bolt:` comment: not bolt's (a whole-table replace removes it) */
  foreign: boolean;
  dynamic: boolean;
  /** what bolt recorded: the set comment's hash, or the hash an element carries after an element delta */
  hash: string;
  /** the declaration as compile.ts writes a static set's (`type …;flags …`) */
  decl: string;
  /** elements in compile.ts's text form (quoted ifnames, addresses, prefixes, ranges), in the kernel's order */
  elements: string[];
  /** elements that carry a `bolt:<hash>` element comment (one after an element delta) */
  carriers: string[];
}

/** What a delta script is computed against: the kernel's table, chain by chain and set by set. */
export interface LiveShape {
  sets: LiveSet[];
  chains: LiveChain[];
}

export interface LiveTable {
  spec: Record<string, string>;
  /** rule field → "packets bytes" (for `bolt show`) */
  counters: Record<string, string>;
}

const SET_COMMENT = /^bolt:(d:)?([0-9a-f]{8})$/;
/** The comment an element carries when an element delta changed its set (see delta.ts). */
export const CARRIER_COMMENT = /^bolt:([0-9a-f]{8})$/;

/** Parses bolt's own table into the spec that tableSpec() produces for the desired one. */
export function parseTable(json: { nftables: NftJsonItem[] }): LiveTable {
  return parseLive(json).table;
}

/** parseTable, and the shape a delta is computed against (rule handles, elements). */
export function parseLive(json: { nftables: NftJsonItem[] }): { table: LiveTable; shape: LiveShape } {
  const spec: Record<string, string> = {};
  const counters: Record<string, string> = {};
  const order = new Map<string, string[]>();
  const shape: LiveShape = { sets: [], chains: [] };
  const chains = new Map<string, LiveChain>();
  for (const item of json.nftables) {
    if (item.chain) {
      const c = item.chain;
      const header = c.hook ? `${c.type} ${c.hook} ${c.prio} ${c.policy ?? "accept"}` : "regular";
      spec[`chain ${c.name}`] = header;
      order.set(c.name, order.get(c.name) ?? []);
      const lc: LiveChain = { name: c.name, header, rules: chains.get(c.name)?.rules ?? [] };
      chains.set(c.name, lc);
    } else if (item.set) {
      const s = item.set;
      const m = SET_COMMENT.exec(s.comment ?? "");
      const live = liveSet(s, m);
      shape.sets.push(live);
      spec[`set ${s.name}`] = !m
        ? "foreign"
        : m[1]
          ? `dynamic ${m[2]}`
          : // Compared by what the kernel lists, not by the comment: an element delta cannot
            // rewrite a set's comment, and a set brought back to its old elements then reads
            // exactly as it did (a restore leaves the table as it was, comments included).
            `${live.elements.length} elements ${staticSetHash(live)}`;
    } else if (item.rule) {
      const r = item.rule;
      const m = /^bolt:(.+)\|([0-9a-f]{8})$/.exec(r.comment ?? "");
      // A rule without bolt's comment in bolt's table was added by hand: drift to remove.
      const key = m ? m[1]! : `unmanaged#${r.handle}`;
      spec[`${r.chain} ${key}`] = m ? m[2]! : "unmanaged";
      const keys = order.get(r.chain) ?? [];
      keys.push(key);
      order.set(r.chain, keys);
      const lc = chains.get(r.chain) ?? { name: r.chain, header: "", rules: [] };
      chains.set(r.chain, lc);
      lc.rules.push({ key, hash: m ? m[2]! : "unmanaged", handle: r.handle, managed: !!m });
      const counter = r.expr.find((e) => "counter" in e)?.counter as { packets: number; bytes: number } | undefined;
      if (counter) counters[`${r.chain} ${key}`] = `${counter.packets} packets, ${counter.bytes} bytes`;
    }
  }
  for (const [chain, keys] of order) spec[`${chain} order`] = hash8(keys.join("\n"));
  shape.chains = [...chains.values()];
  return { table: { spec, counters }, shape };
}

/**
 * A set as the kernel lists it. nft cannot change a set's comment in place (a NEWSET for an
 * existing set keeps its userdata), so after an element delta the up-to-date hash rides on one
 * element's comment instead; without such an element the set comment's hash is the one.
 */
function liveSet(s: NonNullable<NftJsonItem["set"]>, m: RegExpExecArray | null): LiveSet {
  const type = Array.isArray(s.type) ? s.type.join(" . ") : (s.type ?? "");
  const decl = [`type ${type}`, ...(s.flags?.length ? [`flags ${s.flags.join(",")}`] : [])].join(";");
  const elements: string[] = [];
  const carriers: string[] = [];
  let carried: string | undefined;
  for (const raw of s.elem ?? []) {
    const wrapped = typeof raw === "object" && raw !== null && "elem" in raw ? (raw as { elem: { val: unknown; comment?: string } }).elem : undefined;
    const text = elemText(wrapped ? wrapped.val : raw, s.type);
    elements.push(text);
    const c = wrapped?.comment ? CARRIER_COMMENT.exec(wrapped.comment) : null;
    if (c) {
      carriers.push(text);
      carried = c[1];
    }
  }
  // Two carriers (a hand edit): no recorded hash holds, the set shows as changed.
  const hash = carriers.length > 1 ? "00000000" : (carried ?? m?.[2] ?? "");
  return { name: s.name, foreign: !m, dynamic: !!m?.[1], hash, decl, elements, carriers };
}

/** An element written back the way compile.ts writes it (quoted ifnames; addresses, prefixes, ranges). */
function elemText(e: unknown, type: string | string[] | undefined): string {
  if (typeof e === "string") return type === "ifname" ? `"${e}"` : e;
  const o = e as { prefix?: { addr: string; len: number }; range?: [string, string]; concat?: string[] };
  if (o.concat && Array.isArray(type)) return o.concat.map((x, i) => (type[i] === "ifname" ? `"${x}"` : x)).join(" . ");
  if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
  if (o.range) return `${o.range[0]}-${o.range[1]}`;
  return JSON.stringify(e);
}

/**
 * The hash tableScript put in a static set's comment, recomputed from what the kernel lists:
 * an element replaced by hand (same count) must show as drift. Elements in compile.ts's order
 * (addresses, prefixes, ranges in address order; names in text order).
 */
export function staticSetHash(s: Pick<LiveSet, "decl" | "elements">): string {
  const elems = s.elements.map((e): [string, bigint] => [e, e.startsWith('"') ? 0n : ipOrder(e.split(/[/-]/)[0]!)]);
  elems.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return hash8(s.decl + "|" + elems.map((e) => e[0]).join(","));
}

/** Address order of an IPv4 or IPv6 element (a set holds one family). */
function ipOrder(ip: string): bigint {
  if (ip.includes(":")) return parseIp6(ip) ?? 0n;
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return 0n;
  return BigInt(ip.split(".").reduce((n, o) => n * 256 + Number(o), 0));
}
