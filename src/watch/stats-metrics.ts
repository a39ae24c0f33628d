import { Gauge } from "prom-client";
import type { Registry } from "prom-client";
import type { Stats } from "../core/stats.js";

/**
 * `bolt stats` as Prometheus metrics in the daemon, sampled when scraped (one kernel read per
 * scrape, shared by every metric: a sample younger than a second is reused). Labels are the
 * names from the config — network, endpoint, interface and peer public key, chain and rule key
 * — stable across restarts and re-applies, never an ifindex. Byte and packet counts are the
 * kernel's counters (they restart from zero when a link is recreated: use rate()).
 */
export function registerStatsMetrics(registry: Registry, sample: () => Promise<Stats>): void {
  let cached: { at: number; p: Promise<Stats> } | undefined;
  const current = () => {
    const now = Date.now();
    if (!cached || now - cached.at > 1000) cached = { at: now, p: sample() };
    return cached.p;
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: Stats) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        try {
          fill(this, await current());
        } catch {
          // A failed read leaves the metric empty for this scrape (the pass metrics say why).
        }
      },
    });
  for (const dir of ["rx", "tx"] as const) {
    gauge(`bolt_network_${dir}_bytes`, `Bytes ${dir === "rx" ? "received" : "sent"} by a network's bridge.`, ["network", "bridge"], (g, s) => {
      for (const n of s.networks) g.set({ network: n.name, bridge: n.bridge }, n[`${dir}_bytes`]);
    });
    gauge(
      `bolt_endpoint_${dir}_bytes`,
      `Bytes ${dir === "rx" ? "received" : "sent"} by an endpoint (seen from the endpoint).`,
      ["endpoint", "network"],
      (g, s) => {
        for (const e of s.endpoints) g.set({ endpoint: e.name, network: e.network }, e[`${dir}_bytes`]);
      },
    );
    gauge(`bolt_wireguard_peer_${dir}_bytes`, `Bytes ${dir === "rx" ? "received from" : "sent to"} a WireGuard peer.`, ["interface", "peer"], (g, s) => {
      for (const p of s.peers) g.set({ interface: p.interface, peer: p.public_key }, p[`${dir}_bytes`]);
    });
  }
  gauge("bolt_network_dropped_packets", "Packets a network's bridge dropped (both directions).", ["network"], (g, s) => {
    for (const n of s.networks) g.set({ network: n.name }, n.rx_dropped + n.tx_dropped);
  });
  gauge("bolt_network_conntrack_entries", "Connection-tracking entries whose original source is in the network.", ["network"], (g, s) => {
    for (const n of s.networks) g.set({ network: n.name }, n.conntrack);
  });
  gauge("bolt_wireguard_peer_handshake_age_seconds", "Seconds since a WireGuard peer's latest handshake (absent: never).", ["interface", "peer"], (g, s) => {
    for (const p of s.peers) if (p.handshake_age_s !== null) g.set({ interface: p.interface, peer: p.public_key }, p.handshake_age_s);
  });
}
