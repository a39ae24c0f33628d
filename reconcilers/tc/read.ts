import { TC } from "./intent.js";

/** The subset of `tc -j qdisc show` bolt reads. */
export interface TcQdisc {
  kind: string;
  handle: string;
  dev?: string;
  root?: boolean;
  parent?: string;
  options?: Record<string, unknown>;
  bytes?: number;
  drops?: number;
  overlimits?: number;
}

export interface TcFilter {
  pref: number;
  kind: string;
  options?: { actions?: { kind: string; mirred_action?: string; direction?: string; to_dev?: string }[] };
}

/** One HTB class of `tc -s class show dev D` (text only: iproute2 6.1 prints HTB classes without JSON). */
export interface HtbClass {
  minor: number;
  parent?: string;
  leaf?: string;
  prio: number;
  rate: string;
  ceil: string;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
}

const CLASS_RE = /^class htb ([0-9a-f]+):([0-9a-f]+) (?:root|parent (\S+))(?: leaf (\S+))?(?: prio (\d+))? rate (\S+) ceil (\S+)/;
const SENT_RE = /^\s*Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/;

/** bolt's classes (major b017) from class text; other majors are not bolt's. */
export function parseHtbClasses(text: string): HtbClass[] {
  const out: HtbClass[] = [];
  let cur: HtbClass | undefined;
  for (const line of text.split("\n")) {
    const m = CLASS_RE.exec(line);
    if (m) {
      cur = undefined;
      if (m[1] !== TC.major) continue;
      cur = {
        minor: Number.parseInt(m[2]!, 16),
        parent: m[3],
        leaf: m[4],
        prio: Number(m[5] ?? 0),
        rate: m[6]!,
        ceil: m[7]!,
        bytes: 0,
        packets: 0,
        drops: 0,
        overlimits: 0,
      };
      out.push(cur);
      continue;
    }
    const s = cur && SENT_RE.exec(line);
    if (s && cur) [cur.bytes, cur.packets, cur.drops, cur.overlimits] = [Number(s[1]), Number(s[2]), Number(s[3]), Number(s[4])];
  }
  return out;
}

/**
 * The answer of a `tc -s -j -batch -` whose lines are `qdisc show dev D`, `class show dev D` and
 * `filter show dev D ingress`: each JSON line answers one qdisc/filter line; class text (no JSON)
 * belongs to the JSON line before it. Returns, per JSON line, its value and the text after it.
 */
export function splitBatchAnswer(stdout: string): { json: unknown; text: string }[] {
  const out: { json: unknown; text: string }[] = [];
  for (const line of stdout.split("\n")) {
    if (line.startsWith("[") || line.startsWith("{")) out.push({ json: JSON.parse(line) as unknown, text: "" });
    else if (out.length) out[out.length - 1]!.text += `${line}\n`;
  }
  return out;
}

/** Whether a root qdisc is the kernel's default (nobody configured it): noqueue, pfifo_fast, mq with handle 0:. */
export function isDefaultRoot(q: TcQdisc): boolean {
  return q.handle === "0:" || q.kind === "noqueue";
}

/** bolt's ifb redirect on a device's ingress: its pref, u32, one mirred redirect to `ifb`. */
export function redirectTarget(filters: TcFilter[]): string | undefined {
  for (const f of filters) {
    if (f.pref !== TC.redirectPref || f.kind !== "u32") continue;
    const a = f.options?.actions?.find((x) => x.kind === "mirred" && x.mirred_action === "redirect");
    if (a?.to_dev) return a.to_dev;
  }
  return undefined;
}

/**
 * Splits the class text of `class show dev D classid b017:1` + `class show dev D` for N devices
 * (in that order) into each device's classes: every device's part starts with its root class
 * (the marker) and its full dump holds the root once more, so device k's classes run from its
 * marker to the next root line after its own second one. Undefined when the roots do not add up
 * (a tree without its root class): the caller reads such devices one by one.
 */
export function splitClassDumps(text: string, devices: number): HtbClass[][] | undefined {
  const all = parseHtbClasses(text);
  if (all.filter((c) => c.minor === TC.root).length !== devices * 2) return undefined;
  const out: HtbClass[][] = [];
  let cur: HtbClass[] = [];
  let roots = 0;
  for (const c of all) {
    if (c.minor === TC.root) {
      roots++;
      // An odd root is a device's marker: the previous device is complete.
      if (roots % 2 === 1) {
        if (roots > 1) out.push(cur);
        cur = [];
        continue;
      }
    }
    cur.push(c);
  }
  if (devices) out.push(cur);
  return out;
}
