// The "Still applying…" line: only on a terminal and not with --json, first after a second,
// rewritten in place, cleared at the end; `--progress json` writes one event per call.
import { describe as group, expect, it, vi } from "vitest";
import type { ApplyProgress } from "../../src/core/apply.js";
import { describe, progressSink } from "../../src/cli/progress.js";

const ev = (o: Partial<ApplyProgress>): ApplyProgress => ({
  phase: "apply",
  wave: 1,
  waves: 4,
  opsDone: 10,
  ops: 40,
  stepsDone: 2,
  steps: 8,
  elapsedMs: 1500,
  ...o,
});

function term(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (s: string) => chunks.push(s) };
}

group("progress", () => {
  it("says where the apply is", () => {
    expect(describe("apply", ev({}), 4200)).toBe("Still applying… wave 1/4, 2/8 resources (10/40 ops), 4s elapsed");
    expect(describe("destroy", undefined, 1000)).toBe("Still destroying… 1s elapsed");
    expect(describe("apply", ev({ phase: "verify" }), 2000)).toBe("Still applying… verifying what 8 resource(s) changed, 2s elapsed");
    expect(describe("apply", ev({ phase: "rollback" }), 2000)).toBe("Still applying… rolling back, 2s elapsed");
  });

  it("nothing on a pipe, with --json, or with never", () => {
    for (const [tty, json, mode] of [
      [false, false, "auto"],
      [true, true, "auto"],
      [true, false, "never"],
    ] as const) {
      const t = term(tty);
      const s = progressSink(mode, "apply", t, { json });
      s?.onProgress(ev({}));
      s?.end();
      expect(t.chunks).toEqual([]);
    }
  });

  it("on a terminal: silent for the first second, then one line rewritten in place, cleared at the end", () => {
    vi.useFakeTimers();
    try {
      let now = 0;
      const t = term(true);
      const s = progressSink("auto", "apply", t, { now: () => now })!;
      now = 400;
      s.onProgress(ev({ wave: 1 }));
      expect(t.chunks).toEqual([]);
      now = 1000;
      vi.advanceTimersByTime(1000);
      expect(t.chunks).toEqual(["\r\x1b[2KStill applying… wave 1/4, 2/8 resources (10/40 ops), 1s elapsed"]);
      now = 2600;
      s.onProgress(ev({ wave: 2, opsDone: 20 }));
      expect(t.chunks.at(-1)).toBe("\r\x1b[2KStill applying… wave 2/4, 2/8 resources (20/40 ops), 2s elapsed");
      s.end();
      expect(t.chunks.at(-1)).toBe("\r\x1b[2K");
      // Nothing after the end.
      vi.advanceTimersByTime(10_000);
      expect(t.chunks.at(-1)).toBe("\r\x1b[2K");
    } finally {
      vi.useRealTimers();
    }
  });

  it("json: one event per wave, also on a pipe", () => {
    const t = term(false);
    const s = progressSink("json", "destroy", t)!;
    s.onProgress(ev({ elapsedMs: 12.7 }));
    s.end();
    expect(t.chunks.map((c) => JSON.parse(c))).toEqual([
      { event: "progress", command: "destroy", phase: "apply", wave: 1, waves: 4, opsDone: 10, ops: 40, stepsDone: 2, steps: 8, elapsedMs: 13 },
    ]);
  });
});
