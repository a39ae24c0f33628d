// Named tables: iproute2's files parsed as ip reads them, numbers allocated so a kept name keeps its number.
import { describe, expect, it } from "vitest";
import { allocate, entriesText, fileText, parseEntries } from "../../reconcilers/rt-table/tables-file.js";

describe("rt_tables entries", () => {
  it("comments, blank lines and rt_tables.d files not ending in .conf are skipped (ip skips them)", () => {
    const out = [
      "/etc/iproute2/rt_tables:# reserved values",
      "/etc/iproute2/rt_tables:255\tlocal",
      "/etc/iproute2/rt_tables:",
      "/etc/iproute2/rt_tables.d/README:300 notread",
      "/etc/iproute2/rt_tables.d/vpn.conf:0x64 vpn # hex as ip accepts it",
    ].join("\n");
    expect(parseEntries(out)).toEqual([
      { file: "/etc/iproute2/rt_tables", number: 255, name: "local" },
      { file: "/etc/iproute2/rt_tables.d/vpn.conf", number: 100, name: "vpn" },
    ]);
  });

  it("a kept name keeps its number, a new one takes the lowest free one nobody else uses", () => {
    const own = [{ file: "f", number: 21201, name: "games" }];
    expect(allocate(["voice", "games"], own, new Set([21200]))).toEqual(
      new Map([
        ["games", 21201],
        ["voice", 21202],
      ]),
    );
    // The number of a name the config dropped is not reused in the same apply.
    expect(allocate(["voice"], own, new Set())).toEqual(new Map([["voice", 21200]]));
    expect(allocate(["voice"], [{ file: "f", number: 21200, name: "old" }], new Set())).toEqual(new Map([["voice", 21201]]));
  });

  it("the file bolt writes reads back as the same entries", () => {
    const spec = entriesText([
      { name: "voice", number: 21202 },
      { name: "games", number: 21201 },
    ]);
    expect(spec).toBe("21201 games, 21202 voice");
    const text = fileText("ns1", spec);
    const back = parseEntries(
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => `/etc/iproute2/rt_tables.d/bolt-ns1.conf:${l}`)
        .join("\n"),
    );
    expect(entriesText(back)).toBe(spec);
  });
});
