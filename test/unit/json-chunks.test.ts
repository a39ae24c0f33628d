import { describe, expect, it } from "vitest";
import { CHUNK_MIN, chunkJson, unchunkJson } from "../../src/base/json-chunks.js";
import { parseBig, stringifyBig } from "../../src/core/json-bigint.js";

const resources = (n: number, extra: string[] = []) =>
  [...Array.from({ length: n }, (_, i) => `n${i}`), ...extra].map((name) => ({
    id: `endpoint:${name}`,
    kind: "endpoint",
    name,
    spec: { ip: `10.0.0.${name.length}` },
  }));
const str = (v: unknown) => JSON.stringify(v);

function roundTrip(v: unknown, s = str, parse: (t: string) => unknown = JSON.parse) {
  const c = chunkJson(v, s);
  return unchunkJson(c.manifest, parse, (h) => c.chunks.get(h));
}

describe("content-defined chunks of a revision's JSON", () => {
  it("gives back the same value: arrays at the top and inside objects, bigints, order kept", () => {
    const desired = resources(1000);
    expect(roundTrip(desired)).toEqual(desired);
    const intent = { files: ["/etc/bolt/a.toml"], kinds: { endpoint: resources(300), network: { nets: resources(70), v6: 2n ** 100n }, sysctl: [1, 2] } };
    expect(roundTrip(intent, stringifyBig, parseBig)).toEqual(intent);
  });

  it("keeps short arrays inline and long ones as runs of about 32 elements", () => {
    const short = chunkJson(resources(CHUNK_MIN - 1), str);
    expect(short.chunks.size).toBe(0);
    expect(JSON.parse(short.manifest)).toHaveLength(CHUNK_MIN - 1);
    const long = chunkJson(resources(3200), str);
    expect(long.chunks.size).toBeGreaterThan(50);
    expect(long.chunks.size).toBeLessThan(200);
    expect(JSON.parse(long.manifest)).toEqual({ $chunks: [...long.chunks.keys()] });
  });

  it("one element more changes only the run it lands in (a cut there may split it in two)", () => {
    const before = chunkJson(resources(1000), str);
    for (const name of ["x0", "x1", "n500b", "zz"]) {
      const after = chunkJson(resources(1000, [name]), str);
      const fresh = [...after.chunks.keys()].filter((h) => !before.chunks.has(h));
      expect(fresh.length).toBeGreaterThanOrEqual(1);
      expect(fresh.length).toBeLessThanOrEqual(2);
    }
  });

  it("reads a revision stored before chunking (the whole JSON) as it is", () => {
    const old = resources(100);
    expect(unchunkJson(JSON.stringify(old), JSON.parse, () => undefined)).toEqual(old);
  });

  it("says which run is missing", () => {
    const c = chunkJson(resources(100), str);
    const [first] = c.chunks.keys();
    expect(() => unchunkJson(c.manifest, JSON.parse, () => undefined)).toThrow(`revision chunk ${first} is missing from the state store`);
  });
});
