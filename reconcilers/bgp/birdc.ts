/**
 * Parsers of `birdc show protocols all` and `birdc show status` (BIRD 2.0, text only: BIRD has
 * no JSON output). Recorded output lives in fixtures/bird/. bolt's config sets
 * `timeformat protocol iso long`, so "Since" is a full date and time.
 */

export interface BirdChannel {
  family: string;
  state: string;
  imported: number;
  exported: number;
  preferred: number;
}

export interface BirdProtocol {
  name: string;
  proto: string;
  table: string;
  state: string;
  /** "2026-12-02 16:09:03" (or a bare time with BIRD's default timeformat) */
  since: string;
  info: string;
  /** BGP only */
  bgpState?: string;
  neighborAddress?: string;
  neighborAs?: number;
  localAs?: number;
  channels: BirdChannel[];
}

// Name, protocol, table, state, since (date+time, or time), info
const HEAD = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|\S+)\s*(.*?)\s*$/;

export function parseProtocolsAll(out: string): BirdProtocol[] {
  const protos: BirdProtocol[] = [];
  let cur: BirdProtocol | undefined;
  let chan: BirdChannel | undefined;
  for (const line of out.split("\n")) {
    if (!line.trim() || line.startsWith("BIRD ") || line.startsWith("Name ")) continue;
    if (!/^\s/.test(line)) {
      const m = HEAD.exec(line);
      if (!m) continue;
      cur = { name: m[1]!, proto: m[2]!, table: m[3]!, state: m[4]!, since: m[5]!, info: m[6]!, channels: [] };
      chan = undefined;
      protos.push(cur);
      continue;
    }
    if (!cur) continue;
    const t = line.trim();
    const ch = /^Channel (\S+)$/.exec(t);
    if (ch) {
      chan = { family: ch[1]!, state: "", imported: 0, exported: 0, preferred: 0 };
      cur.channels.push(chan);
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9 ]*?):\s+(.*)$/.exec(t);
    if (!kv) continue;
    const [, k, v] = kv as unknown as [string, string, string];
    if (chan) {
      if (k === "State") chan.state = v;
      else if (k === "Routes") {
        const r = /(\d+) imported, (?:(\d+) filtered, )?(\d+) exported, (\d+) preferred/.exec(v);
        if (r) {
          chan.imported = Number(r[1]);
          chan.exported = Number(r[3]);
          chan.preferred = Number(r[4]);
        }
      }
      continue;
    }
    if (k === "BGP state") cur.bgpState = v;
    else if (k === "Neighbor address") cur.neighborAddress = v;
    else if (k === "Neighbor AS") cur.neighborAs = Number(v);
    else if (k === "Local AS") cur.localAs = Number(v);
  }
  return protos;
}

/** "Current server time is 2026-12-02 16:09:07.907" → that time (BIRD's clock, for uptimes). */
export function parseServerTime(statusOut: string): string | undefined {
  return /^Current server time is (.+)$/m.exec(statusOut)?.[1]?.trim();
}

/** Seconds between two BIRD timestamps ("YYYY-MM-DD HH:MM:SS[.fff]", both in BIRD's local time). */
export function secondsBetween(since: string, now: string): number | undefined {
  const p = (s: string) => Date.parse(s.replace(" ", "T") + "Z");
  const a = p(since);
  const b = p(now);
  return Number.isFinite(a) && Number.isFinite(b) ? Math.max(0, Math.round((b - a) / 1000)) : undefined;
}

export function formatUptime(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${sec}s`;
  return `${sec}s`;
}

/** One line per BGP session for `bolt show`: state, uptime, prefixes in and out. */
export function sessionLine(p: BirdProtocol, now: string | undefined): string {
  const up = now ? secondsBetween(p.since, now) : undefined;
  const imported = p.channels.reduce((s, c) => s + c.imported, 0);
  const exported = p.channels.reduce((s, c) => s + c.exported, 0);
  const state = p.bgpState ?? p.info ?? p.state;
  return `${p.neighborAddress ?? p.name} AS${p.neighborAs ?? "?"}: ${state}${up !== undefined ? ` for ${formatUptime(up)}` : ""}, ${imported} prefix(es) received, ${exported} announced`;
}
