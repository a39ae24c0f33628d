import { fileStamp } from "../base/file-stamp.js";
import type { LiveReader, Ran } from "./live-reader.js";
import type { LiveSnapshot, Plan } from "./plan.js";
import type { ChangeClock } from "../exec/change-clock.js";
import type { Ns } from "../exec/runner.js";

/** A plan's inputs besides the kernel's answers; equal keys and equal answers make the same plan. */
export interface MemoKey {
  leases: Map<string, string>;
  originals: Map<string, string>;
  halfMade?: Set<string>;
  deep: boolean;
  /** files kinds read directly while planning (Reconciler.planFiles), by their stat */
  files: string[];
}

/**
 * The daemon's memo of its last no-op plan (Felix's model: do nothing when nothing changed).
 * A plan is a pure function of the intent, the store's leases and originals, the files kinds
 * read directly and the answers of the commands it ran. The memo gives back the last plan when
 * the intent is the same object (the daemon's loader keeps it while no file changed), the
 * store's values and the files' stats are equal, no event or write advanced the clock since
 * its reads began, and every command the events do not cover (sysctl, /etc/netns files,
 * iptables-save, wg) prints exactly what it printed then — those run again, the rest do not.
 * Only plans without changes are kept: an apply follows any other, and its writes move the clock.
 */
export class PlanMemo {
  private last: { key: string; intent: number | string; clock: number; reads: Ran[]; plan: Plan; snap: LiveSnapshot; desired: string } | undefined;
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  /** plans given back, and plans made (the stats endpoint and the bench read them) */
  hits = 0;
  misses = 0;

  constructor(
    private readonly clock: ChangeClock,
    readonly target: Ns,
  ) {}

  /** taken before a plan's first read: a plan made from reads that started later than an event is not kept */
  begin(): number | undefined {
    return this.clock.now();
  }

  /** Everything but the intent (which lookup() compares by identity, or by the desired state it makes). */
  key(k: MemoKey): string {
    return JSON.stringify([k.deep, [...k.leases], [...k.originals], [...(k.halfMade ?? [])], k.files.map((f) => [f, fileStamp(f)])]);
  }

  /**
   * The intent's identity: the object (the daemon's loader keeps it while no file changed), or a
   * digest standing for it (a config rebuilt every pass: a mesh on a store).
   */
  intentId(intent: object | string): number | string {
    if (typeof intent === "string") return `#${intent}`;
    let id = this.ids.get(intent);
    if (id === undefined) this.ids.set(intent, (id = this.nextId++));
    return id;
  }

  /**
   * The last plan, if nothing it depended on changed; re-runs (through `reader`, shared with the
   * kinds) the commands no event covers. Another intent (a mesh host's store changed) hits too
   * when `desiredOf` — the desired state it makes against the same live state — equals the last.
   */
  async lookup(
    key: string,
    intent: number | string,
    started: number | undefined,
    reader: LiveReader,
    desiredOf: (snap: LiveSnapshot) => string,
  ): Promise<Plan | undefined> {
    const l = this.last;
    if (!l || started === undefined || l.clock !== started || l.key !== key) return this.miss();
    const again = await Promise.all(
      l.reads.filter((r) => this.clock.classify(r.argv, r.stdin) === "read").map(async (r) => ({ r, now: await reader.once(r.argv, r.stdin) })),
    );
    const same = again.every(({ r, now }) => now.code === r.result.code && sameAnswer(r.argv, r.result.stdout, now.stdout) && now.stderr === r.result.stderr);
    // An event during the re-check: what the memo skipped reading may have changed.
    if (!same || this.clock.now() !== started) return this.miss();
    if (intent !== l.intent) {
      // The same live state and the same desired state: the same (empty) diff.
      if (desiredOf(l.snap) !== l.desired) return this.miss();
      l.intent = intent;
    }
    this.hits++;
    return l.plan;
  }

  /**
   * Keeps a plan without changes whose reads all began after `started` and that no event
   * overtook, with the live state it read and `desired`, a digest of the desired state it made.
   */
  store(key: string, intent: number | string, started: number | undefined, snap: LiveSnapshot, plan: Plan, desired: () => string): void {
    this.last = undefined;
    if (started === undefined || this.clock.now() !== started || plan.changes.length) return;
    const reads = [...snap.reader.ran.values()];
    // A command that is not a read (nft -c, a tool the classifier does not know) makes the plan unrepeatable.
    if (reads.some((r) => this.clock.classify(r.argv, r.stdin) === "write" || r.result.timedOut || r.result.aborted)) return;
    this.last = { key, intent, clock: started, reads, plan, snap, desired: desired() };
  }

  private miss(): undefined {
    this.misses++;
    return undefined;
  }
}

/**
 * Whether a command said the same, but for what changes on every run and no plan reads:
 * iptables-save stamps its dump with the time ("# Generated by … on DATE"); `wg show IF dump`
 * counts traffic (rx, tx: every keepalive moves them) and stamps handshakes. A handshake only
 * ever moves forward, and a no-op plan cannot turn on a newer one (the wg-peer kind keeps a
 * roamed endpoint when the handshake is newer than bolt's setting, already so when that plan
 * was made); a handshake gone back (the peer removed and added again) is a change. Peers may
 * come in any order.
 */
export function sameAnswer(argv: string[], then: string, now: string): boolean {
  if (argv.some((a) => /^ip6?tables(-legacy|-nft)?-save$/.test(a))) {
    const stamps = /^# (Generated by|Completed on) .*$/gm;
    return then.replace(stamps, "") === now.replace(stamps, "");
  }
  const wg = argv.indexOf("wg");
  if (wg < 0 || argv[wg + 1] !== "show" || argv.length !== wg + 4 || argv[wg + 3] !== "dump" || argv[wg + 2] === "all") return then === now;
  // Peers in any order: wireguard-go lists them from a Go map (another order on each call).
  const peers = (t: string) => {
    const [head = "", ...rest] = t.split("\n");
    return [head, ...rest.sort()];
  };
  const a = peers(then);
  const b = peers(now);
  if (a.length !== b.length || a[0] !== b[0]) return false;
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!.split("\t");
    const y = b[i]!.split("\t");
    if (x.length !== 8 || y.length !== 8) {
      if (a[i] !== b[i]) return false;
      continue;
    }
    // public key, preshared key, endpoint, allowed ips, keepalive: equal; the handshake: not older
    if ([0, 1, 2, 3, 7].some((f) => x[f] !== y[f]) || Number(y[4]) < Number(x[4])) return false;
  }
  return true;
}
