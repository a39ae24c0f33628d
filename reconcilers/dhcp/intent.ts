import type { SourcePos } from "../../src/core/diagnostics.js";
import { fragment, fragmentKey } from "../../src/core/intent.js";
import { parseIp4 } from "../../src/core/ipv4.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { pointer } from "../../src/config/positions.js";
import { NETWORKS } from "../network/intent.js";
import type { NetworkIntent } from "../network/intent.js";
import { RESOLVER } from "../resolver/intent.js";

/**
 * `networks.*.dhcp = true` (and volantd's `networking.bridge.dhcp`): bolt's own dnsmasq on the
 * network's bridge, handing out exactly the leases bolt's IPAM recorded. The network's
 * addresses come from the network kind's fragment, the nameservers from `networks.*.dns` (the
 * resolver kind's, already checked); only the DHCP-specific keys are read here.
 */
export interface DhcpIntent {
  network: string;
  bridge: string;
  /** the subnet's network address and prefix length (dnsmasq's static range names the subnet) */
  subnet: NetworkIntent["subnet"];
  gateway: number;
  /** seconds, or "infinite" */
  leaseTime: string;
  /** IPv4 nameservers for DHCP option 6, in the order written */
  dns: string[];
  source: SourcePos;
  fieldSources: Record<string, SourcePos>;
}

export const DHCP = fragmentKey<DhcpIntent[]>("dhcp", () => []);

/** The Volant seed's dnsmasq recipe leases for 12h. */
export const DEFAULT_LEASE = String(12 * 3600);

type Obj = Record<string, unknown>;

export const dhcpIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): DhcpIntent[] {
    const out: DhcpIntent[] = [];
    const networks = new Map(fragment(ctx.intent, NETWORKS).map((n) => [n.name, n]));
    const resolvers = new Map(fragment(ctx.intent, RESOLVER).map((r) => [r.network, r]));
    for (const f of files) {
      const at = (...p: (string | number)[]) => f.positions.value(pointer(p));
      if (f.kind === "boltfile") {
        for (const [name, raw] of Object.entries((f.data.networks ?? {}) as Record<string, Obj>)) {
          const lease = raw.dhcp_lease_time;
          if (raw.dhcp !== true) {
            if (lease !== undefined)
              ctx.err(`network "${name}": dhcp_lease_time is set but dhcp is not`, at("networks", name, "dhcp_lease_time"), "add dhcp = true");
            continue;
          }
          const n = networks.get(name);
          // A network that did not validate has its own error already.
          if (!n) continue;
          const r = resolvers.get(name);
          const d = dhcpFor(n, lease, at("networks", name, "dhcp"), at("networks", name, "dhcp_lease_time"), ctx);
          if (!d) continue;
          d.dns = ipv4Only(r?.dns ?? [], name, r?.fieldSources.dns ?? d.source, ctx);
          if (r?.fieldSources.dns) d.fieldSources.dns = r.fieldSources.dns;
          out.push(d);
        }
      } else if (f.kind === "volantd") {
        const net = (f.data.networking ?? {}) as Obj;
        const dhcp = ((net.bridge ?? {}) as Obj).dhcp as Obj | undefined;
        if (!dhcp || dhcp.enabled !== true) continue;
        const dAt = (k?: string) => at("networking", "bridge", "dhcp", ...(k ? [k] : []));
        if ((net.mode ?? "bridge") !== "bridge") {
          ctx.err(
            `networking.bridge.dhcp: mode "${String(net.mode)}" has no bridge and no taps, so nothing to serve`,
            dAt("enabled"),
            "set mode: bridge, or drop dhcp",
          );
          continue;
        }
        const n = networks.get("volant");
        if (!n) continue;
        const d = dhcpFor(n, dhcp.lease_time, dAt("enabled"), dAt("lease_time"), ctx);
        if (!d) continue;
        const dns: string[] = [];
        ((dhcp.dns ?? []) as unknown[]).forEach((s, i) => {
          const ip = parseIp4(String(s));
          if (ip === undefined)
            ctx.err(`networking.bridge.dhcp.dns "${String(s)}" is not an IPv4 address (DHCP option 6 carries IPv4 nameservers)`, dAt("dns"));
          else dns.push(String(s));
          if (i === 0) d.fieldSources.dns = dAt("dns");
        });
        d.dns = dns;
        out.push(d);
      }
    }
    return out;
  },
  describe: (f) => `${((f as DhcpIntent[] | undefined) ?? []).length} DHCP server(s)`,
};

function dhcpFor(n: NetworkIntent, lease: unknown, source: SourcePos, leaseAt: SourcePos, ctx: IntentContext): DhcpIntent | undefined {
  const leaseTime = lease === undefined ? DEFAULT_LEASE : leaseSeconds(lease);
  if (typeof leaseTime !== "string" || !leaseTime) {
    ctx.err(
      `network "${n.name}": dhcp lease time "${String(lease)}" ${leaseTime === undefined ? "is not a duration" : "is shorter than 2m, dnsmasq's minimum"}`,
      leaseAt,
      'like "12h", "30m", "1d" or "infinite"',
    );
    return undefined;
  }
  if (n.v6)
    ctx.diagnostics.push({
      severity: "warning",
      message: `network "${n.name}": bolt's DHCP serves IPv4 only; its VMs get IPv6 addresses some other way (no DHCPv6 or router advertisements)`,
      source,
    });
  return {
    network: n.name,
    bridge: n.bridge,
    subnet: n.subnet,
    gateway: n.gateway,
    leaseTime,
    dns: [],
    source,
    fieldSources: {
      interface: n.fieldSources.bridge ?? n.source,
      range: n.fieldSources.subnet ?? n.source,
      router: n.fieldSources.gateway ?? n.fieldSources.subnet ?? n.source,
      lease_time: leaseAt,
    },
  };
}

/** dnsmasq's lease times: seconds, or with m/h/d/w, or "infinite"; under two minutes it refuses. "" = too short, undefined = not a duration. */
export function leaseSeconds(v: unknown): string | undefined {
  const s = String(v).trim();
  if (s === "infinite") return s;
  const m = /^(\d+)([smhdw]?)$/.exec(s);
  if (!m) return undefined;
  const secs = Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as "" | "s" | "m" | "h" | "d" | "w"];
  return secs < 120 ? "" : String(secs);
}

/** DHCPv4's option 6 holds IPv4 addresses: IPv6 nameservers stay in resolv.conf only. */
function ipv4Only(dns: string[], network: string, at: SourcePos, ctx: IntentContext): string[] {
  const v6 = dns.filter((d) => parseIp4(d) === undefined);
  if (v6.length)
    ctx.diagnostics.push({
      severity: "warning",
      message: `network "${network}": DHCP option 6 carries IPv4 nameservers only; ${v6.join(", ")} is not handed to DHCP clients`,
      source: at,
    });
  return dns.filter((d) => parseIp4(d) !== undefined);
}
