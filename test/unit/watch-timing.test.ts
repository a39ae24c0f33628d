// The daemon's pure timing logic: debounce of event bursts, fight detection with exponential
// backoff, durations and listen addresses as the CLI and config give them.
import { describe, expect, it } from "vitest";
import { Debouncer } from "../../src/watch/debounce.js";
import type { Clock } from "../../src/watch/debounce.js";
import { FightDetector, driftSignature } from "../../src/watch/fight.js";
import { parseDuration } from "../../src/core/duration.js";
import { parseListen } from "../../src/watch/metrics.js";

/** A clock the test advances by hand. */
class FakeClock implements Clock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 1;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
    this.t = end;
  }
}

describe("Debouncer", () => {
  it("collapses a burst into one call, waitMs after the last event", () => {
    const clock = new FakeClock();
    let calls = 0;
    const d = new Debouncer(() => calls++, 300, 5000, clock);
    for (let i = 0; i < 10; i++) {
      d.trigger();
      clock.advance(100);
    }
    expect(calls).toBe(0);
    clock.advance(199);
    expect(calls).toBe(0);
    clock.advance(1);
    expect(calls).toBe(1);
    clock.advance(10_000);
    expect(calls).toBe(1);
  });

  it("fires by maxWaitMs even if events never stop", () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const d = new Debouncer(() => at.push(clock.now()), 300, 1000, clock);
    for (let i = 0; i < 30; i++) {
      d.trigger();
      clock.advance(100);
    }
    expect(at[0]).toBe(1000);
    expect(at.length).toBe(3);
  });

  it("a trigger with a shorter wait (a mesh store change) fires sooner; never later than the configured wait", () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const d = new Debouncer(() => at.push(clock.now()), 300, 5000, clock);
    d.trigger(50);
    clock.advance(60);
    expect(at).toEqual([50]);
    d.trigger(1000);
    clock.advance(400);
    expect(at).toEqual([50, 360]);
  });

  it("flush runs now; cancel drops the pending call", () => {
    const clock = new FakeClock();
    let calls = 0;
    const d = new Debouncer(() => calls++, 300, 5000, clock);
    d.trigger();
    d.flush();
    expect(calls).toBe(1);
    expect(d.pending).toBe(false);
    d.trigger();
    d.cancel();
    clock.advance(1000);
    expect(calls).toBe(1);
  });
});

describe("FightDetector", () => {
  const policy = { limit: 3, windowMs: 60_000, baseMs: 10_000, maxMs: 40_000 };

  it("repairs freely below the limit, then backs off exponentially up to the cap", () => {
    const f = new FightDetector(policy);
    const d = "create network:web";
    expect(f.repaired(d, 0)).toBeUndefined();
    expect(f.repaired(d, 1000)).toBeUndefined();
    const first = f.repaired(d, 2000)!;
    expect(first).toMatchObject({ drift: d, level: 1, until: 12_000 });
    expect(f.blocked(d, 5000)).toBe(12_000);
    expect(f.blocked(d, 12_000)).toBeUndefined();
    expect(f.repaired(d, 12_000)!.until).toBe(12_000 + 20_000);
    expect(f.repaired(d, 32_000)!.until).toBe(32_000 + 40_000);
    expect(f.repaired(d, 72_000)!.until).toBe(72_000 + 40_000); // capped at maxMs
    expect(f.fights(72_000)).toHaveLength(1);
  });

  it("a different drift is not blocked; a repair that holds for a window ends the fight", () => {
    const f = new FightDetector(policy);
    for (const t of [0, 1, 2]) f.repaired("delete endpoint:a", t);
    expect(f.blocked("delete endpoint:a", 100)).toBeDefined();
    expect(f.blocked("create network:b", 100)).toBeUndefined();
    // Backoff ends at 10 002; quiet for a window after that → forgotten.
    expect(f.fights(10_002 + 60_000)).toEqual([]);
    expect(f.repaired("delete endpoint:a", 10_002 + 60_001)).toBeUndefined();
  });

  it("repairs spread wider than the window never count as a fight", () => {
    const f = new FightDetector(policy);
    for (let i = 0; i < 10; i++) expect(f.repaired("x", i * 30_001)).toBeUndefined();
  });

  it("the drift signature ignores order", () => {
    expect(
      driftSignature([
        { action: "create", id: "b" },
        { action: "delete", id: "a" },
      ]),
    ).toBe(
      driftSignature([
        { action: "delete", id: "a" },
        { action: "create", id: "b" },
      ]),
    );
  });
});

describe("durations and listen addresses", () => {
  it.each([
    ["300ms", 300],
    ["60s", 60_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["45", 45_000],
  ])("%s → %i ms", (s, ms) => expect(parseDuration(s)).toBe(ms));

  it("rejects what is not a duration, naming the option", () => {
    expect(() => parseDuration("soon", "--resync")).toThrow(/--resync: "soon" is not a duration/);
    expect(() => parseDuration("-1s")).toThrow();
  });

  it("parses HOST:PORT, [v6]:PORT and :PORT", () => {
    expect(parseListen("127.0.0.1:9464")).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(parseListen("[::1]:80")).toEqual({ host: "::1", port: 80 });
    expect(parseListen(":9464")).toEqual({ host: undefined, port: 9464 });
    expect(() => parseListen("9464")).toThrow(/HOST:PORT/);
    expect(() => parseListen("a:99999")).toThrow();
  });
});
