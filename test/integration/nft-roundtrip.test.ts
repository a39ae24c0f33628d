// Recorder and guard for fixtures/nft/: applies fixtures/nft/roundtrip.toml (every feature of
// bolt's table) in a throwaway namespace and checks that the kernel's `nft -j list table inet
// bolt` is still what fixtures/nft/roundtrip.nft.json holds (handles and counters aside), so
// the unit round trip (test/unit/nft-roundtrip.test.ts) parses real nft output, not a guess.
// Re-record with BOLT_RECORD=1 after an intended change of the compiled table.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, SKIP_REASON, must, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { Topology, applyConverged, destroyClean } from "./nft-topology.js";

const DIR = join(REPO, "fixtures", "nft");
const CONFIG = join(DIR, "roundtrip.toml");
const RECORDED = join(DIR, "roundtrip.nft.json");

/** What may differ between two listings of the same table: handles, counters, nft's version. */
function scrub(v: Json): Json {
  if (Array.isArray(v)) return v.map(scrub);
  if (v && typeof v === "object") {
    const out: Json = {};
    for (const k of Object.keys(v)) {
      if (k === "handle" || k === "metainfo") continue;
      out[k] = k === "counter" && v[k] && typeof v[k] === "object" ? { packets: 0, bytes: 0 } : scrub(v[k]);
    }
    return out;
  }
  return v;
}

describe.skipIf(!!SKIP_REASON)("nft: fixtures/nft/roundtrip.nft.json is what the kernel lists", () => {
  const topo = new Topology();
  const sb = topo.sb;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
  });
  afterAll(() => topo.cleanup());

  it("apply the fixture config, list bolt's table, compare with the recording", async () => {
    await applyConverged(sb, [CONFIG]);
    const live = JSON.parse(await must(["ip", "netns", "exec", topo.host, "nft", "-j", "list", "table", "inet", "bolt"]));
    if (process.env.BOLT_RECORD === "1") {
      // Counters zeroed so the recording does not depend on stray traffic during the apply.
      const rec = { nftables: (live.nftables as Json[]).map((i) => (i.metainfo ? i : scrub(i))) };
      writeFileSync(RECORDED, JSON.stringify(rec, null, 1) + "\n");
    }
    const recorded = JSON.parse(readFileSync(RECORDED, "utf8"));
    expect(scrub(live.nftables.filter((i: Json) => !i.metainfo))).toEqual(scrub(recorded.nftables.filter((i: Json) => !i.metainfo)));
    await destroyClean(sb);
  });
});
