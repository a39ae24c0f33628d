import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RUN_DIR } from "../exec/run-dir.js";
import type { Ns } from "../exec/runner.js";

/**
 * Load-balancer health as planning sees it: the daemon's checker (src/watch/health.ts) records
 * which backends are down in a runtime file per target; the nft kind leaves those out of the
 * verdict map. No file (no daemon, or after a reboot: it is on tmpfs): every backend is healthy.
 */
export interface Probe {
  /** "LB/BACKEND-KEY", as the nft intent names it */
  id: string;
  method: "tcp" | "http";
  /** address as nft prints it (IPv6 without brackets) */
  addr: string;
  port: number;
  path: string;
  timeoutMs: number;
  intervalMs: number;
  rise: number;
  fall: number;
}

export interface HealthFile {
  down: string[];
  updated: string;
}

export const healthFile = (t: Ns) => join(RUN_DIR(), "lb-health", `${t ?? "host"}.json`);

/** The backends recorded down for a target (none when the daemon never ran: all healthy). */
export function readLbDown(t: Ns): string[] {
  try {
    const f = JSON.parse(readFileSync(healthFile(t), "utf8")) as HealthFile;
    return Array.isArray(f.down) ? f.down.filter((x) => typeof x === "string").sort() : [];
  } catch {
    return [];
  }
}
