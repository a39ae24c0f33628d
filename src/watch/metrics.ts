import { createServer } from "node:http";
import type { Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The daemon's Prometheus metrics (a private registry, so tests can run several) and the
 * HTTP endpoint serving them with /healthz.
 */
export class WatchMetrics {
  readonly registry = new Registry();
  readonly passes = new Counter({
    name: "bolt_passes_total",
    help: "Reconcile passes by outcome (applied, noop, invalid_config, failed, backoff).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly changesApplied = new Counter({
    name: "bolt_changes_applied_total",
    help: "Resource changes applied (create, update, replace, delete).",
    registers: [this.registry],
  });
  readonly driftRepairs = new Counter({
    name: "bolt_drift_repairs_total",
    help: "Passes that changed the kernel while the configuration had not changed: drift repaired.",
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: "bolt_failures_total",
    help: "Failed passes by reason (config: the files do not validate; apply: reading or changing the kernel failed).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "bolt_pass_duration_seconds",
    help: "Duration of a reconcile pass (read, plan, apply, verify).",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: "bolt_last_success_timestamp_seconds",
    help: "Unix time of the last pass that left the kernel converged.",
    registers: [this.registry],
  });
  readonly resources = new Gauge({
    name: "bolt_resources",
    help: "Desired resources by kind at the last successful pass.",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  readonly fighting = new Gauge({
    name: "bolt_fight_backoff",
    help: "1 while bolt has stopped repairing a drift that another writer keeps re-creating (see /healthz).",
    registers: [this.registry],
  });
  readonly fightsDetected = new Counter({
    name: "bolt_fights_detected_total",
    help: "Times a repaired drift came back often enough to back off.",
    registers: [this.registry],
  });
  readonly configValid = new Gauge({
    name: "bolt_config_valid",
    help: "1 when the configuration files validate; 0 while the last good configuration is kept.",
    registers: [this.registry],
  });
  /** [monitoring] enable_detailed_metrics: bolt's nft rule counters, read each pass. */
  readonly nftPackets = new Gauge({
    name: "bolt_nft_rule_packets",
    help: "Packets counted by a rule of bolt's nft table (enable_detailed_metrics).",
    labelNames: ["rule"],
    registers: [this.registry],
  });
  readonly nftBytes = new Gauge({
    name: "bolt_nft_rule_bytes",
    help: "Bytes counted by a rule of bolt's nft table (enable_detailed_metrics).",
    labelNames: ["rule"],
    registers: [this.registry],
  });

  private defaults = false;

  /**
   * Process metrics (CPU, memory, event loop lag), started when an endpoint serves them. The
   * event-loop-lag histogram samples every 10 ms by default: 100 wake-ups a second in an
   * otherwise idle daemon (≈ 1 % of a CPU); once a second is plenty for a daemon.
   */
  collectDefaults(): void {
    if (this.defaults) return;
    this.defaults = true;
    collectDefaultMetrics({ register: this.registry, prefix: "bolt_", eventLoopMonitoringPrecision: 1000 });
  }

  setResources(counts: Map<string, number>): void {
    this.resources.reset();
    for (const [kind, n] of counts) this.resources.set({ kind }, n);
  }

  /** nft counters as the reader keeps them: "chain key" → "N packets, M bytes". */
  setCounters(counters: Record<string, string> | undefined): void {
    this.nftPackets.reset();
    this.nftBytes.reset();
    for (const [rule, text] of Object.entries(counters ?? {})) {
      const m = /(\d+) packets, (\d+) bytes/.exec(text);
      if (!m) continue;
      this.nftPackets.set({ rule }, Number(m[1]));
      this.nftBytes.set({ rule }, Number(m[2]));
    }
  }
}

export interface Health {
  healthy: boolean;
  body: unknown;
}

/** "127.0.0.1:9464", "[::1]:9464", ":9464" (all addresses). */
export function parseListen(s: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`listen address "${s}" is not HOST:PORT (e.g. 127.0.0.1:9464)`);
  return { host: m[1] ?? (m[2] || undefined), port };
}

export class MetricsServer {
  private server: Server | undefined;
  address = "";

  constructor(
    private readonly metrics: WatchMetrics,
    private readonly health: () => Health,
  ) {}

  async listen(addr: string): Promise<string> {
    const { host, port } = parseListen(addr);
    this.metrics.collectDefaults();
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET" }).end();
      } else if (path === "/metrics") {
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": this.metrics.registry.contentType }).end(text),
          (e: Error) => res.writeHead(500).end(e.message),
        );
      } else if (path === "/healthz") {
        const h = this.health();
        res.writeHead(h.healthy ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(h.body, null, 2) + "\n");
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("bolt watch: /metrics, /healthz\n");
      }
    });
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(port, host, () => ok());
    });
    const a = server.address();
    this.address = a && typeof a === "object" ? `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}` : addr;
    this.server = server;
    return this.address;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.address = "";
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
