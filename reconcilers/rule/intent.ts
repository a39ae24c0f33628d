import type { SourcePos } from "../../src/core/diagnostics.js";
import { formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import { formatCidr6, formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import { pointer } from "../../src/config/positions.js";
import { ifnameProblem } from "../../src/config/names.js";
import { portRange } from "../../src/core/ports.js";

/**
 * `[[routing.policies]]`: policy-based routing as the seed describes it — matching packets get
 * an nft mark, an `ip rule fwmark … lookup T` sends them to table T, whose default route goes
 * via the policy's gateway or device. Three kinds share it: nft (the mark), rule (the rule),
 * route (table T's route).
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
  mark: number;
  table: number;
  priority: number;
  protocol: "tcp" | "udp" | "icmp" | "all";
  sport?: [number, number];
  dport?: [number, number];
  saddr?: string;
  daddr?: string;
  via?: string;
  dev?: string;
  source: SourcePos;
}

export const POLICY_MARK = { base: 0x0c000000, mask: 0x0f000fff, table: 20200, priority: 21000 };
const CLASS: Record<string, number> = { critical: 0, high: 1000, normal: 2000, low: 3000 };
/** Policies fit their class's thousand priorities (and the mark's 12 bits). */
const MAX_POLICIES = 999;

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
        const protocol = (raw.protocol ?? "all") as PolicyIntent["protocol"];
        const ports = (key: string): [number, number] | undefined => {
          if (raw[key] === undefined) return undefined;
          const r = portRange(String(raw[key]));
          if (!r) ctx.err(`${what}: ${key} "${String(raw[key])}" is not a port 1-65535 or a range N-M`, pos(key));
          else if (protocol !== "tcp" && protocol !== "udp") ctx.err(`${what}: ${key} needs protocol tcp or udp`, pos(key));
          return r;
        };
        const table = typeof raw.table === "number" ? raw.table : POLICY_MARK.table + index;
        if (table === 20100 || (table >= 253 && table <= 255))
          return ctx.err(`${what}: table ${table} is ${table === 20100 ? "the exit node's" : "a kernel table"}`, pos("table"));
        out.push({
          name,
          index,
          family: family ?? 4,
          mark: POLICY_MARK.base + index + 1,
          table,
          priority: POLICY_MARK.priority + (CLASS[String(raw.priority ?? "normal")] ?? 2000) + index,
          protocol,
          sport: ports("source_ports"),
          dport: ports("dest_ports"),
          saddr,
          daddr,
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
