import type { SourcePos } from "../../src/core/diagnostics.js";
import { formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import { formatCidr6, formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import { pointer } from "../../src/config/positions.js";
import { ifnameProblem } from "../../src/config/names.js";
import { portRange } from "../../src/core/ports.js";

/**
 * `[[routing.policies]]`: policy-based routing as the seed describes it — an `ip rule … lookup T`
 * sends matching packets to table T, whose default route goes via the policy's gateway or
 * device. What ip rule matches itself (iif, oif, uidrange) is on the rule; protocol, ports and
 * addresses are matched by nft, which marks the packets for the rule's `fwmark`. Three kinds
 * share it: nft (the mark), rule (the rule), route (table T's route).
 *
 * Marks, tables and priorities are bolt's own and clear of wg-quick's/the exit node's
 * (0x0b000000/0x0f000000, table 20100, rules 20000–20001), Kubernetes (0x4000/0x8000), Cilium
 * (0x0f00 band) and Tailscale (0x40000/0xff0000): mark 0x0c000NNN under mask 0x0f000fff,
 * table 20200+N, rule priority 21000–24999 (a thousand per priority class).
 */
export interface PolicyIntent {
  name: string;
  index: number;
  family: 4 | 6;
  /** bolt's nft mark, only when the policy matches what only nft can (protocol, ports, addresses) */
  mark?: number;
  /** a number, or a name the rt-table kind gives a number in rt_tables.d */
  table: number | string;
  /** where `table` was written */
  tableAt?: SourcePos;
  priority: number;
  protocol: "tcp" | "udp" | "icmp" | "all";
  sport?: [number, number];
  dport?: [number, number];
  saddr?: string;
  daddr?: string;
  /** ip rule selectors: the rule matches them itself */
  iif?: string;
  oif?: string;
  uidrange?: [number, number];
  via?: string;
  dev?: string;
  source: SourcePos;
}

export const POLICY_MARK = { base: 0x0c000000, mask: 0x0f000fff, table: 20200, priority: 21000 };
const CLASS: Record<string, number> = { critical: 0, high: 1000, normal: 2000, low: 3000 };
/** Policies fit their class's thousand priorities (and the mark's 12 bits). */
const MAX_POLICIES = 999;

/** The largest uid a range may name: (uid_t)-1 is "no uid" to the kernel. */
const UID_MAX = 4294967294;

/** Table names the kernel's own tables (and iproute2's) already have. */
const RESERVED_TABLES = new Set(["main", "local", "default", "unspec"]);

/** Why a table name cannot be one bolt allocates a number for, or undefined. */
export function tableNameProblem(name: string): string | undefined {
  if (RESERVED_TABLES.has(name)) return `table "${name}" is one of the kernel's own tables`;
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(name)) return `table "${name}" is not a number or a name (a letter, then up to 31 letters, digits, "_" or "-")`;
  return undefined;
}

/** "1000" or "1000-1999" as an ordered uid range, or a reason it is not one. */
export function uidRange(text: string): [number, number] | string {
  const m = /^(\d{1,10})(?:-(\d{1,10}))?$/.exec(text);
  if (!m) return `uidrange "${text}" is not a uid or a range N-M`;
  const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
  if (a > UID_MAX || b > UID_MAX) return `uidrange "${text}": a uid is at most ${UID_MAX}`;
  if (a > b) return `uidrange "${text}": the range is not ordered (${a} > ${b})`;
  return [a, b];
}

export const POLICIES = fragmentKey<PolicyIntent[]>("rule", () => []);

type Obj = Record<string, unknown>;

export const policyIntent: IntentHooks = {
  build(files, ctx: IntentContext): PolicyIntent[] {
    const out: PolicyIntent[] = [];
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      const routing = (f.data.routing ?? {}) as Obj;
      if (routing.policy_based_routing === false) continue;
      ((routing.policies ?? []) as Obj[]).forEach((raw, i) => {
        const pos = (k: string) => f.positions.value(pointer(["routing", "policies", i, k]));
        const source = f.positions.key(pointer(["routing", "policies", i]));
        const name = String(raw.name);
        const what = `policy "${name}"`;
        const index = out.length;
        if (index >= MAX_POLICIES) return ctx.err(`${what}: at most ${MAX_POLICIES} policies (a thousand rule priorities per class in bolt's band)`, source);
        let family: 4 | 6 | undefined;
        const cidr = (key: string): string | undefined => {
          const v = raw[key];
          if (v === undefined) return undefined;
          const s = String(v);
          const six = s.includes(":");
          const c = six ? parseCidr6(s.includes("/") ? s : `${s}/128`) : parseCidr4(s.includes("/") ? s : `${s}/32`);
          if (!c || c.hostBits) {
            ctx.err(`${what}: ${key} "${s}" is not a CIDR without host bits`, pos(key));
            return undefined;
          }
          if (family && family !== (six ? 6 : 4)) ctx.err(`${what}: ${key} "${s}" is IPv${six ? 6 : 4} but the policy is IPv${family}`, pos(key));
          family = six ? 6 : 4;
          return six ? formatCidr6(c as never) : formatCidr4(c as never);
        };
        const saddr = cidr("source");
        const daddr = cidr("destination");
        let via: string | undefined;
        if (raw.gateway !== undefined) {
          const g = String(raw.gateway);
          const six = g.includes(":");
          const v = six ? parseIp6(g) : parseIp4(g);
          if (v === undefined) return ctx.err(`${what}: gateway "${g}" is not an IP address`, pos("gateway"));
          if (family && family !== (six ? 6 : 4))
            return ctx.err(`${what}: gateway ${g} is IPv${six ? 6 : 4} but the policy matches IPv${family}`, pos("gateway"));
          family = six ? 6 : 4;
          via = six ? formatIp6(v as bigint) : formatIp4(v as number);
        }
        const dev = typeof raw.device === "string" ? raw.device : undefined;
        if (dev) {
          const p = ifnameProblem(dev);
          if (p) return ctx.err(`${what}: ${p}`, pos("device"));
        }
        if (!via && !dev) return ctx.err(`${what}: needs a gateway or a device for the traffic it matches`, source);
        const ifname = (key: "iif" | "oif"): string | undefined => {
          if (typeof raw[key] !== "string") return undefined;
          const p = ifnameProblem(raw[key]);
          if (p) ctx.err(`${what}: ${key}: ${p}`, pos(key));
          return p ? undefined : raw[key];
        };
        const iif = ifname("iif");
        const oif = ifname("oif");
        let uidrange: [number, number] | undefined;
        if (raw.uidrange !== undefined) {
          const u = uidRange(String(raw.uidrange));
          if (typeof u === "string") return ctx.err(`${what}: ${u}`, pos("uidrange"));
          uidrange = u;
        }
        const protocol = (raw.protocol ?? "all") as PolicyIntent["protocol"];
        const ports = (key: string): [number, number] | undefined => {
          if (raw[key] === undefined) return undefined;
          const r = portRange(String(raw[key]));
          if (!r) ctx.err(`${what}: ${key} "${String(raw[key])}" is not a port 1-65535 or a range N-M`, pos(key));
          else if (protocol !== "tcp" && protocol !== "udp") ctx.err(`${what}: ${key} needs protocol tcp or udp`, pos(key));
          return r;
        };
        const table = typeof raw.table === "number" || typeof raw.table === "string" ? raw.table : POLICY_MARK.table + index;
        if (typeof table === "string") {
          const p = tableNameProblem(table);
          if (p) return ctx.err(`${what}: ${p}`, pos("table"));
        } else if (table === 20100 || (table >= 253 && table <= 255))
          return ctx.err(`${what}: table ${table} is ${table === 20100 ? "the exit node's" : "a kernel table"}`, pos("table"));
        const sport = ports("source_ports");
        const dport = ports("dest_ports");
        // iif, oif and uidrange are ip rule selectors; ports and protocol need nft to mark the
        // packets first, and so do addresses: the host's own packets from an unbound socket meet
        // the rules with source 0.0.0.0 (the kernel picks it after the lookup), where nft's
        // route-type output chain sees the real one. A policy with no selector marks its family.
        const needsMark = protocol !== "all" || !!sport || !!dport || !!saddr || !!daddr || (!iif && !oif && !uidrange);
        out.push({
          name,
          index,
          family: family ?? 4,
          ...(needsMark ? { mark: POLICY_MARK.base + index + 1 } : {}),
          table,
          ...(raw.table !== undefined ? { tableAt: pos("table") } : {}),
          priority: POLICY_MARK.priority + (CLASS[String(raw.priority ?? "normal")] ?? 2000) + index,
          protocol,
          sport,
          dport,
          saddr,
          daddr,
          iif,
          oif,
          uidrange,
          via,
          dev,
          source,
        });
      });
    }
    const seen = new Set<string>();
    for (const p of out) {
      if (seen.has(p.name)) ctx.err(`policy "${p.name}" is defined twice`, p.source);
      seen.add(p.name);
    }
    return out;
  },
  describe: (f) => `${((f as PolicyIntent[] | undefined) ?? []).length} routing polic(ies)`,
};
