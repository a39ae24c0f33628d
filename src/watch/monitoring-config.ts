import { loadFile } from "../config/load.js";

export interface MonitoringConfig {
  listen?: string;
  detailed: boolean;
}

/**
 * `[monitoring]` of the Boltfiles (the schema has validated it already; the last file that
 * sets a key wins). Read only when the config changes, not every pass.
 */
export function monitoringConfig(files: string[]): MonitoringConfig {
  const out: MonitoringConfig = { detailed: false };
  for (const f of files) {
    if (!/\.toml$/i.test(f)) continue;
    const lf = loadFile(f);
    const m = lf.kind === "boltfile" ? (lf.data.monitoring as { listen?: unknown; enable_detailed_metrics?: unknown } | undefined) : undefined;
    if (!m) continue;
    if (typeof m.listen === "string") out.listen = m.listen;
    if (typeof m.enable_detailed_metrics === "boolean") out.detailed = m.enable_detailed_metrics;
  }
  return out;
}
