// A plan that adds endpoints warns when this target's endpoints alone would fill the kernel's
// neighbour table (one for all namespaces; net.ipv4.neigh.default.gc_thresh3), and reads the
// limit only at that scale.
import { describe, expect, it } from "vitest";
import { neighbourTableWarning } from "../../../reconcilers/endpoint/neighbours.js";
import type { LiveReader } from "../../../src/core/live-reader.js";
import { encodeAlias } from "../../../src/core/ownership.js";
import type { Change } from "../../../src/core/resource.js";

const at = { file: "b.toml", line: 7, col: 1 };
const create = (name: string, type = "veth"): Change =>
  ({
    action: "create",
    kind: "endpoint",
    name,
    id: `endpoint:${name}`,
    changed: [],
    after: { kind: "endpoint", name, id: `endpoint:${name}`, spec: { type }, source: at },
  }) as unknown as Change;
const remove = (name: string): Change => ({ action: "delete", kind: "endpoint", name, id: `endpoint:${name}`, changed: [] }) as unknown as Change;

/** A reader whose target holds `live` endpoints' host sides, with the host's gc_thresh3. */
function reader(live: number, limit: string) {
  const ran: string[][] = [];
  const links = Array.from({ length: live }, (_, i) => ({ ifname: `bv-l${i}`, ifalias: encodeAlias({ ep: `l${i}` }) }));
  const io = {
    ipJson: async () => links,
    exec: async (argv: string[]) => {
      ran.push(argv);
      return { code: 0, stdout: `${limit}\n`, stderr: "" };
    },
  } as unknown as LiveReader;
  return { io, ran };
}
const many = (n: number, from = 0) => Array.from({ length: n }, (_, i) => create(`e${from + i}`));

describe("endpoints and the kernel's neighbour table", () => {
  it("past the limit: a warning at the first new endpoint, with the host-wide sysctls to raise", async () => {
    const { io, ran } = reader(0, "1024");
    const [d, ...rest] = await neighbourTableWarning(many(600), io);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ severity: "warning", source: at });
    expect(d!.message).toMatch(/^600 endpoints need about 1200 entries .*gc_thresh3 is 1024/);
    expect(d!.hint).toMatch(/gc_thresh3=2400/);
    expect(ran).toEqual([["sysctl", "-n", "net.ipv4.neigh.default.gc_thresh3"]]);
  });

  it("the endpoints already there count, those deleted do not; a raised limit says nothing", async () => {
    expect(await neighbourTableWarning([...many(100), remove("l0")], reader(450, "1024").io)).toHaveLength(1);
    expect(await neighbourTableWarning([...many(100), ...Array.from({ length: 50 }, (_, i) => remove(`l${i}`))], reader(450, "1024").io)).toEqual([]);
    expect(await neighbourTableWarning(many(600), reader(0, "8192").io)).toEqual([]);
  });

  it("below half the kernel's default, or without new endpoints, nothing is read", async () => {
    for (const [changes, live] of [
      [many(100), 300],
      [[remove("l1")], 900],
      [[create("vm", "none")], 900],
    ] as const) {
      const { io, ran } = reader(live, "16");
      expect(await neighbourTableWarning([...changes], io)).toEqual([]);
      expect(ran).toEqual([]);
    }
  });
});
