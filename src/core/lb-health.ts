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
  /** every probed backend's verdict and when it last changed (for `bolt show`) */
  backends?: Record<string, { up: boolean; since: string }>;
}

export const healthFile = (t: Ns) => join(RUN_DIR(), "lb-health", `${t ?? "host"}.json`);

/** The daemon's record for a target, or undefined (no daemon has probed anything here since boot). */
export function readLbHealth(t: Ns): HealthFile | undefined {
  try {
    const f = JSON.parse(readFileSync(healthFile(t), "utf8")) as HealthFile;
    return { ...f, down: Array.isArray(f.down) ? f.down.filter((x) => typeof x === "string").sort() : [] };
  } catch {
    return undefined;
  }
}

/** The backends recorded down for a target (none when the daemon never ran: all healthy). */
export function readLbDown(t: Ns): string[] {
  return readLbHealth(t)?.down ?? [];
}

/** One backend's health as `bolt show` prints it: "up since T", "down since T", or not checked. */
export function backendHealthText(f: HealthFile | undefined, id: string): string {
  const b = f?.backends?.[id];
  if (b) return `backend ${id} ${b.up ? "up" : "down"} since ${b.since}`;
  if (f?.down.includes(id)) return `backend ${id} down`;
  return `backend ${id} not checked (in the map; health checks run in bolt watch)`;
}
