import { contains, parseCidr4, parseIp4 } from "./ipv4.js";
import { contains6, parseCidr6, parseIp6 } from "./ipv6.js";
import type { Resource } from "./resource.js";

/** What stats needs of a WireGuard interface's `wg show IF dump` (the wireguard kind's WgDump has these fields). */
export interface PeerDump {
  peers: { publicKey: string; endpoint: string; latestHandshake: number; rx: number; tx: number }[];
}

/**
 * `bolt stats`: live traffic of what bolt owns, from the kernel's own counters — per network
 * (its bridge), per endpoint (its host-side veth or tap, seen from the endpoint: what the host
 * side transmits the endpoint receives), per WireGuard peer (latest handshake, transfer), per
 * nft rule (bolt's counters), and conntrack entries per network (by the original source
 * address). Pure: the reads are done by src/cli/cmd-stats.ts; rates come from two samples.
 */
export interface Traffic {
  rx_bytes: number;
  rx_packets: number;
  tx_bytes: number;
  tx_packets: number;
  rx_dropped: number;
  tx_dropped: number;
  errors: number;
}

export interface Rates {
  rx_bytes_per_s: number;
  tx_bytes_per_s: number;
  rx_packets_per_s: number;
  tx_packets_per_s: number;
}

export interface NetworkStats extends Traffic {
  name: string;
  bridge: string;
  conntrack: number;
  rates?: Rates;
}

export interface EndpointStats extends Traffic {
  name: string;
  network: string;
  host_if: string;
  ip: string;
  rates?: Rates;
}

export interface PeerStats {
  interface: string;
  public_key: string;
  endpoint: string;
  /** seconds since the latest handshake; null: never */
  handshake_age_s: number | null;
  rx_bytes: number;
  tx_bytes: number;
  /** a ping over the tunnel to the peer's first allowed address (`--rtt`) */
  rtt_ms?: number | null;
  rates?: { rx_bytes_per_s: number; tx_bytes_per_s: number };
}

export interface RuleStats {
  chain: string;
  key: string;
  packets: number;
  bytes: number;
}

export interface Stats {
  format_version: "1.0";
  target: { netns: string | null };
  /** Unix time of the sample, milliseconds */
  time_ms: number;
  networks: NetworkStats[];
  endpoints: EndpointStats[];
  peers: PeerStats[];
  rules: RuleStats[];
  conntrack_total: number;
}

/** What `ip -s -j link show` gives per link. */
export interface LinkStats {
  ifname: string;
  stats64?: {
    rx: { bytes: number; packets: number; errors: number; dropped: number };
    tx: { bytes: number; packets: number; errors: number; dropped: number };
  };
}

export interface StatsInput {
  target: string | null;
  timeMs: number;
  owned: Resource[];
  links: LinkStats[];
  /** interface → its dump */
  dumps: Map<string, PeerDump>;
  /** "chain key" → "N packets, M bytes", as the nft reconciler reads them */
  ruleCounters: Record<string, string>;
  /** /proc/net/nf_conntrack of the target, or undefined when it cannot be read */
  conntrack?: string;
  /** public key → RTT in ms (null: no answer) */
  rtt?: Map<string, number | null>;
}

const ZERO = { bytes: 0, packets: 0, errors: 0, dropped: 0 };

function traffic(l: LinkStats | undefined, swap: boolean): Traffic {
  const rx = l?.stats64?.rx ?? ZERO;
  const tx = l?.stats64?.tx ?? ZERO;
  // A veth's host side sends what the endpoint receives: seen from the endpoint, rx and tx swap.
  const [r, t] = swap ? [tx, rx] : [rx, tx];
  return {
    rx_bytes: r.bytes,
    rx_packets: r.packets,
    tx_bytes: t.bytes,
    tx_packets: t.packets,
    rx_dropped: r.dropped,
    tx_dropped: t.dropped,
    errors: r.errors + t.errors,
  };
}

/** A network's prefixes, from its bridge's addresses ("172.20.0.1/16, fd20::1/64"). */
function prefixesOf(address: string): { v4: ReturnType<typeof parseCidr4>[]; v6: ReturnType<typeof parseCidr6>[] } {
  const parts = address.split(", ").filter(Boolean);
  return {
    v4: parts.filter((a) => !a.includes(":")).map((a) => parseCidr4(a)),
    v6: parts.filter((a) => a.includes(":")).map((a) => parseCidr6(a)),
  };
}

/** The original-direction source of each conntrack entry (the first `src=` of a line). */
export function conntrackSources(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /\bsrc=(\S+)/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

export function buildStats(i: StatsInput): Stats {
  const links = new Map(i.links.map((l) => [l.ifname, l]));
  const byKind = (k: string) => i.owned.filter((r) => r.kind === k).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const sources = i.conntrack === undefined ? [] : conntrackSources(i.conntrack);
  const src4 = sources.map((s) => parseIp4(s)).filter((x): x is number => x !== undefined);
  const src6 = sources.map((s) => (s.includes(":") ? parseIp6(s) : undefined)).filter((x): x is bigint => x !== undefined);
  const networks = byKind("network").map((r): NetworkStats => {
    const p = prefixesOf(r.spec.address ?? "");
    const conntrack = src4.filter((ip) => p.v4.some((c) => c && contains(c, ip))).length + src6.filter((ip) => p.v6.some((c) => c && contains6(c, ip))).length;
    return { name: r.name, bridge: r.spec.bridge!, ...traffic(links.get(r.spec.bridge!), false), conntrack };
  });
  const endpoints = byKind("endpoint")
    .filter((r) => r.spec.host_if)
    .map(
      (r): EndpointStats => ({
        name: r.name,
        network: r.spec.network ?? "",
        host_if: r.spec.host_if!,
        ip: [r.spec.ip, r.spec.ip6].filter(Boolean).join(", "),
        ...traffic(links.get(r.spec.host_if!), true),
      }),
    );
  const now = Math.floor(i.timeMs / 1000);
  const peers: PeerStats[] = [];
  for (const [ifname, d] of [...i.dumps].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
    for (const p of d.peers)
      peers.push({
        interface: ifname,
        public_key: p.publicKey,
        endpoint: p.endpoint,
        handshake_age_s: p.latestHandshake > 0 ? Math.max(0, now - p.latestHandshake) : null,
        rx_bytes: p.rx,
        tx_bytes: p.tx,
        ...(i.rtt ? { rtt_ms: i.rtt.get(p.publicKey) ?? null } : {}),
      });
  const rules = Object.entries(i.ruleCounters)
    .map(([k, v]): RuleStats => {
      const [chain, ...key] = k.split(" ");
      const m = /^(\d+) packets, (\d+) bytes$/.exec(v);
      return { chain: chain!, key: key.join(" "), packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
    })
    .sort((a, b) => (a.chain === b.chain ? 0 : a.chain < b.chain ? -1 : 1));
  return { format_version: "1.0", target: { netns: i.target }, time_ms: i.timeMs, networks, endpoints, peers, rules, conntrack_total: sources.length };
}

/** Per-second rates between two samples of the same target (a counter that went down — a recreated link — counts from zero). */
export function withRates(prev: Stats, cur: Stats): Stats {
  const dt = (cur.time_ms - prev.time_ms) / 1000;
  if (dt <= 0) return cur;
  const rate = (a: number, b: number | undefined) => Math.max(0, (a - (b !== undefined && b <= a ? b : 0)) / dt);
  const rates = (c: Traffic, p: Traffic | undefined): Rates => ({
    rx_bytes_per_s: rate(c.rx_bytes, p?.rx_bytes),
    tx_bytes_per_s: rate(c.tx_bytes, p?.tx_bytes),
    rx_packets_per_s: rate(c.rx_packets, p?.rx_packets),
    tx_packets_per_s: rate(c.tx_packets, p?.tx_packets),
  });
  const pn = new Map(prev.networks.map((n) => [n.name, n]));
  const pe = new Map(prev.endpoints.map((e) => [e.name, e]));
  const pp = new Map(prev.peers.map((p) => [`${p.interface} ${p.public_key}`, p]));
  return {
    ...cur,
    networks: cur.networks.map((n) => ({ ...n, rates: rates(n, pn.get(n.name)) })),
    endpoints: cur.endpoints.map((e) => ({ ...e, rates: rates(e, pe.get(e.name)) })),
    peers: cur.peers.map((p) => {
      const q = pp.get(`${p.interface} ${p.public_key}`);
      return { ...p, rates: { rx_bytes_per_s: rate(p.rx_bytes, q?.rx_bytes), tx_bytes_per_s: rate(p.tx_bytes, q?.tx_bytes) } };
    }),
  };
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(w[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n") + "\n";
}

/** The text form: one table per kind that has rows; rates (per second) when two samples were taken. */
export function renderStats(s: Stats): string {
  const rate = (r: Rates | undefined, dir: "rx" | "tx") => (r ? `${bytes(Math.round(r[`${dir}_bytes_per_s`]))}/s` : "-");
  const parts: string[] = [];
  if (s.networks.length)
    parts.push(
      table(
        ["NETWORK", "BRIDGE", "RX", "TX", "RX/s", "TX/s", "DROPS", "CONNTRACK"],
        s.networks.map((n) => [
          n.name,
          n.bridge,
          bytes(n.rx_bytes),
          bytes(n.tx_bytes),
          rate(n.rates, "rx"),
          rate(n.rates, "tx"),
          String(n.rx_dropped + n.tx_dropped),
          String(n.conntrack),
        ]),
      ),
    );
  if (s.endpoints.length)
    parts.push(
      table(
        ["ENDPOINT", "NETWORK", "ADDRESS", "RX", "TX", "RX/s", "TX/s", "DROPS"],
        s.endpoints.map((e) => [
          e.name,
          e.network,
          e.ip,
          bytes(e.rx_bytes),
          bytes(e.tx_bytes),
          rate(e.rates, "rx"),
          rate(e.rates, "tx"),
          String(e.rx_dropped + e.tx_dropped),
        ]),
      ),
    );
  if (s.peers.length)
    parts.push(
      table(
        ["INTERFACE", "PEER", "ENDPOINT", "HANDSHAKE", "RX", "TX", ...(s.peers.some((p) => p.rtt_ms !== undefined) ? ["RTT"] : [])],
        s.peers.map((p) => [
          p.interface,
          `${p.public_key.slice(0, 8)}…`,
          p.endpoint || "-",
          p.handshake_age_s === null ? "never" : `${p.handshake_age_s}s ago`,
          bytes(p.rx_bytes),
          bytes(p.tx_bytes),
          ...(p.rtt_ms !== undefined ? [p.rtt_ms === null ? "no reply" : `${p.rtt_ms.toFixed(2)} ms`] : []),
        ]),
      ),
    );
  const counted = s.rules.filter((r) => r.packets > 0);
  if (s.rules.length)
    parts.push(
      table(
        ["CHAIN", "RULE", "PACKETS", "BYTES"],
        (counted.length ? counted : s.rules).map((r) => [r.chain, r.key, String(r.packets), bytes(r.bytes)]),
      ),
    );
  parts.push(`conntrack entries: ${s.conntrack_total}\n`);
  return parts.join("\n");
}
