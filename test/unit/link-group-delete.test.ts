// The batch rewrite behind fast destroys: a run of `link del dev X` lines becomes one link
// group delete; what a failure at any sent line means for the original ops.
import { describe, expect, it } from "vitest";
import { MIN_RUN, groupDeletes } from "../../src/exec/link-group-delete.js";

const dels = (n: number, p = "v") => Array.from({ length: n }, (_, i) => `link del dev ${p}${i}`);

describe("groupDeletes", () => {
  it("leaves short runs and other lines alone", () => {
    const lines = ["link set dev a up", ...dels(MIN_RUN - 1), "address add 10.0.0.1/24 dev b"];
    const g = groupDeletes(lines, 1 << 30);
    expect(g.lines).toEqual(lines);
    expect(g.doneBefore(3)).toBe(2);
    expect(g.regroupAfter(3)).toEqual([]);
  });

  it("turns a run into group sets and one group delete, in place", () => {
    const lines = ["link set dev a down", ...dels(MIN_RUN), "netns del y"];
    const g = groupDeletes(lines, 1234567890);
    expect(g.lines).toEqual([
      "link set dev a down",
      ...dels(MIN_RUN).map((l) => `${l.replace("link del", "link set")} group 1234567890`),
      "link del group 1234567890",
      "netns del y",
    ]);
    // Failing at the first line: nothing done.
    expect(g.doneBefore(1)).toBe(0);
    // Failing at the 3rd group set (sent line 4): none of the run is deleted; two devices must get their group back.
    expect(g.doneBefore(4)).toBe(1);
    expect(g.regroupAfter(4)).toEqual(["v0", "v1"]);
    // Failing at the group delete: still nothing of the run deleted, every device regrouped.
    const del = 2 + MIN_RUN;
    expect(g.lines[del - 1]).toBe("link del group 1234567890");
    expect(g.doneBefore(del)).toBe(1);
    expect(g.regroupAfter(del)).toHaveLength(MIN_RUN);
    // Failing after the run: the whole run took effect.
    expect(g.doneBefore(del + 1)).toBe(1 + MIN_RUN);
    expect(g.regroupAfter(del + 1)).toEqual([]);
  });

  it("two runs split by another line get the same group, each deleted at its own place", () => {
    const lines = [...dels(MIN_RUN, "a"), "netns del x", ...dels(MIN_RUN, "b")];
    const g = groupDeletes(lines, 1 << 30);
    expect(g.lines.filter((l) => l.startsWith("link del group"))).toHaveLength(2);
    expect(g.lines.indexOf("netns del x")).toBe(MIN_RUN + 1);
  });

  it("picks a group bolt alone uses: at least 2^30", () => {
    const g = groupDeletes(dels(MIN_RUN));
    const n = Number(/group (\d+)$/.exec(g.lines[0]!)![1]);
    expect(n).toBeGreaterThanOrEqual(2 ** 30);
    expect(n).toBeLessThan(2 ** 31);
  });
});
