import type { SourcePos } from "../../src/core/diagnostics.js";
import { formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import { formatCidr6, formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import { pointer } from "../../src/config/positions.js";
import { ifnameProblem } from "../../src/config/names.js";
import { tableNameProblem } from "../rule/intent.js";

/** `[[routing.routes]]`: static routes, validated (kernel spellings: ip prints what it was given canonically). */
export interface StaticRoute {
  family: 4 | 6;
  /** canonical destination: "default", "::/0" or a prefix as ip prints it */
  dst: string;
  table: string;
  via?: string;
  dev?: string;
  nexthops?: { via: string; dev?: string; weight: number }[];
  metric?: number;
  type?: "blackhole" | "unreachable" | "prohibit";
  mtu?: number;
  src?: string;
  source: SourcePos;
  /** where each field was written, for conflict messages */
  at: Record<string, SourcePos>;
}

export const STATIC_ROUTES = fragmentKey<StaticRoute[]>("route", () => []);

type Obj = Record<string, unknown>;

function addr(s: string, family: 4 | 6): string | undefined {
  if (family === 4) {
    const v = parseIp4(s);
    return v === undefined ? undefined : formatIp4(v);
  }
  const v = parseIp6(s);
  return v === undefined || s.includes("/") ? undefined : formatIp6(v);
}

export const routeIntent: IntentHooks = {
  build(files, ctx: IntentContext): StaticRoute[] {
    const out: StaticRoute[] = [];
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      const routing = (f.data.routing ?? {}) as Obj;
      ((routing.routes ?? []) as Obj[]).forEach((raw, i) => {
        const pos = (...k: (string | number)[]) => f.positions.value(pointer(["routing", "routes", i, ...k]));
        const source = f.positions.key(pointer(["routing", "routes", i]));
        const d = String(raw.destination);
        let family: 4 | 6;
        let dst: string;
        if (d === "default") [family, dst] = [4, "default"];
        else if (d.includes(":")) {
          const c = parseCidr6(d);
          if (!c || !d.includes("/")) return ctx.err(`route "${d}": not an IPv6 prefix`, pos("destination"));
          if (c.hostBits) return ctx.err(`route "${d}": host bits set`, pos("destination"), `did you mean "${formatCidr6(c)}"?`);
          [family, dst] = [6, c.prefix === 0 ? "::/0" : formatCidr6(c)];
        } else {
          const c = parseCidr4(d);
          if (!c) return ctx.err(`route "${d}": not an IPv4 prefix (like 10.80.0.0/24) or "default"`, pos("destination"));
          if (c.hostBits) return ctx.err(`route "${d}": host bits set`, pos("destination"), `did you mean "${formatCidr4(c)}"?`);
          [family, dst] = [4, c.prefix === 0 ? "default" : formatCidr4(c)];
        }
        const what = `route ${dst}`;
        const r: StaticRoute = { family, dst, table: raw.table === undefined || raw.table === "main" ? "main" : String(raw.table), source, at: {} };
        if (typeof raw.table === "string" && raw.table !== "main") {
          const p = tableNameProblem(raw.table);
          if (p) return ctx.err(`${what}: ${p}`, pos("table"));
        }
        if (raw.table !== undefined) r.at.table = pos("table");
        const ipOf = (v: unknown, at: SourcePos, label: string): string | undefined => {
          const a = addr(String(v), family);
          if (a === undefined) ctx.err(`${what}: ${label} "${String(v)}" is not an IPv${family} address (the destination is IPv${family})`, at);
          return a;
        };
        if (raw.gateway !== undefined) {
          r.via = ipOf(raw.gateway, pos("gateway"), "gateway");
          r.at.via = pos("gateway");
          if (r.via === undefined) return;
        }
        if (typeof raw.device === "string") {
          const p = ifnameProblem(raw.device);
          if (p) return ctx.err(`${what}: ${p}`, pos("device"));
          r.dev = raw.device;
        }
        if (Array.isArray(raw.nexthops)) {
          if (r.via || r.dev) return ctx.err(`${what}: give nexthops or gateway/device, not both`, pos("nexthops"));
          const hops: NonNullable<StaticRoute["nexthops"]> = [];
          for (const [j, h] of (raw.nexthops as Obj[]).entries()) {
            const via = ipOf(h.gateway, pos("nexthops", j, "gateway"), `nexthop ${j + 1} gateway`);
            if (via === undefined) return;
            hops.push({ via, ...(typeof h.device === "string" ? { dev: h.device } : {}), weight: typeof h.weight === "number" ? h.weight : 1 });
          }
          r.nexthops = hops;
          r.at.via = pos("nexthops");
        }
        if (raw.type !== undefined && raw.type !== "unicast") {
          r.type = raw.type as StaticRoute["type"];
          if (r.via || r.dev || r.nexthops) return ctx.err(`${what}: a ${r.type} route has no next hop (no gateway, device or nexthops)`, pos("type"));
        } else if (!r.via && !r.dev && !r.nexthops) return ctx.err(`${what}: needs a gateway, a device or nexthops (or type = "blackhole")`, source);
        if (typeof raw.metric === "number") r.metric = raw.metric;
        if (typeof raw.mtu === "number") r.mtu = raw.mtu;
        if (raw.src !== undefined) {
          r.src = ipOf(raw.src, pos("src"), "src");
          if (r.src === undefined) return;
        }
        out.push(r);
      });
    }
    // One route per destination, table and metric: the kernel keys routes so (a second one is "File exists").
    const seen = new Map<string, StaticRoute>();
    for (const r of out) {
      const k = `${r.table} ${r.dst} ${r.metric ?? ""}`;
      const prev = seen.get(k);
      if (prev) ctx.err(`route ${r.dst} (table ${r.table}) is defined twice (${prev.source.file}:${prev.source.line})`, r.source);
      seen.set(k, r);
    }
    return out;
  },
  describe: (f) => `${((f as StaticRoute[] | undefined) ?? []).length} static route(s)`,
};
