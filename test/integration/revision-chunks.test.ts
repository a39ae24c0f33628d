// Revisions of a target with many objects are stored as shared runs (src/base/json-chunks.ts):
// 70 networks (past the 64 elements where an array is chunked), one more, then `rollback --to`
// the first revision through the real CLI: the kernel is back to 70 bridges, the store holds the
// runs one more network touched for the second revision, and a plan after each step is empty.
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, ipJson, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";

const N = 70;
const networks = (n: number) =>
  Array.from({ length: n }, (_, i) => `[networks.c${i}]\nsubnet = "10.${120 + Math.floor(i / 200)}.${i % 200}.0/24"\n`).join("\n");

describe.skipIf(!!SKIP_REASON)("revisions stored as shared runs", () => {
  const sb = new Sandbox();
  const chunks = () => {
    const db = new Database(join(sb.stateDir, "bolt.db"), { readonly: true });
    try {
      return (db.prepare("SELECT coalesce(sum(length(body)), 0) AS n FROM revision_chunks").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const bridges = async () => (await ipJson(sb.target, ["link", "show", "type", "bridge"])).map((l: Json) => l.ifname as string).sort();

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
  });
  afterAll(() => sb.cleanup());

  it("one network more stores only the runs it touched; rollback --to 1 reads the chunked revision back whole", async () => {
    // One file, appended to: the objects before keep their source (file, line) and so their runs.
    const f = sb.write("bolt-network.toml", networks(N));
    expect((await sb.bolt(["apply", "-f", f])).code).toBe(0);
    const first = chunks();
    expect(first).toBeGreaterThan(0);
    sb.write("bolt-network.toml", networks(N + 1));
    expect((await sb.bolt(["apply", "-f", f])).code).toBe(0);
    expect(await bridges()).toHaveLength(N + 1);
    // The runs one more network touches (one per kind it adds an object to), not the whole state again.
    const added = chunks() - first;
    expect(added).toBeGreaterThan(0);
    // (At 70 an array is two or three runs; at 1000 networks an attach adds ~140 KB to 4 MB: bench:daemon.)
    expect(added, `${added} bytes of new runs against ${first} for the first revision`).toBeLessThan(first / 2);
    const r = await sb.bolt(["rollback", "--to", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(await bridges()).toEqual(Array.from({ length: N }, (_, i) => `bolt-c${i}`).sort());
    sb.write("bolt-network.toml", networks(N));
    expect((await sb.planExit(f)).code).toBe(0);
    const history = JSON.parse((await sb.bolt(["history", "--json"])).stdout).revisions as Json[];
    expect(history.map((h) => h.command)).toEqual(["apply", "apply", "rollback --to 1"]);
  });
});
