/**
 * Fight detection. Level-triggered repair has a failure mode: another writer (a second
 * manager, a script, NetworkManager) undoes bolt's change, bolt repairs it, and both loop
 * forever. When the same drift is repaired `limit` times within `windowMs`, bolt stops
 * repairing that drift for an exponentially growing time (base, 2×base, … up to maxMs) and
 * reports it. After a backoff, one repair is tried; undone again within the window, the next
 * backoff is longer. A repair that holds for a whole window after the backoff ends the fight.
 */
export interface FightPolicy {
  limit: number;
  windowMs: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_FIGHT_POLICY: FightPolicy = { limit: 3, windowMs: 120_000, baseMs: 15_000, maxMs: 600_000 };

export interface Fight {
  /** the repaired changes, e.g. "create network:web" */
  drift: string;
  repairs: number;
  level: number;
  /** epoch ms until which this drift is left alone */
  until: number;
}

interface Entry {
  repairs: number[];
  level: number;
  until: number;
}

export class FightDetector {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly policy: FightPolicy = DEFAULT_FIGHT_POLICY) {}

  /** Epoch ms until which repairing this drift is suspended, or undefined to go ahead. */
  blocked(drift: string, now: number): number | undefined {
    const e = this.entries.get(drift);
    return e && now < e.until ? e.until : undefined;
  }

  /** A drift was repaired now; returns the fight when this repair starts (or extends) a backoff. */
  repaired(drift: string, now: number): Fight | undefined {
    this.prune(now);
    const e = this.entries.get(drift) ?? { repairs: [], level: 0, until: 0 };
    e.repairs.push(now);
    this.entries.set(drift, e);
    // Once a fight is known, one more undo within the window is enough to back off again.
    if (e.repairs.length < (e.level > 0 ? Math.min(2, this.policy.limit) : this.policy.limit)) return undefined;
    e.level++;
    e.until = now + Math.min(this.policy.maxMs, this.policy.baseMs * 2 ** (e.level - 1));
    return { drift, repairs: e.repairs.length, level: e.level, until: e.until };
  }

  /** Backoffs in force (or whose count still grows): for /healthz and the metrics. */
  fights(now: number): Fight[] {
    this.prune(now);
    return [...this.entries].filter(([, e]) => e.level > 0).map(([drift, e]) => ({ drift, repairs: e.repairs.length, level: e.level, until: e.until }));
  }

  private prune(now: number): void {
    for (const [k, e] of this.entries) {
      e.repairs = e.repairs.filter((t) => now - t < this.policy.windowMs);
      // Quiet for a whole window after the backoff ended: the fight is over.
      if (!e.repairs.length && now >= e.until + this.policy.windowMs) this.entries.delete(k);
    }
  }
}

/** One drift's identity: the changes a repair makes, order-independent. */
export function driftSignature(changes: { action: string; id: string }[]): string {
  return changes
    .map((c) => `${c.action} ${c.id}`)
    .sort()
    .join(", ");
}
