import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeRevision, revisionState } from "../../src/core/revisions.js";
import { REVISIONS_KEPT, StateStore } from "../../src/state/store.js";

const T = "bolt-t-retention";
let dir: string;
let store: StateStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bolt-retention-"));
  store = new StateStore(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function record(blob: string, status = "applied", previous?: number): number {
  return store.addRevision({ target: T, command: "apply", summary: "s", hash: blob, desired: `[${JSON.stringify(blob)}]`, intent: "{}", status, previous });
}

/** One read-only query of the store's file (what its API does not show). */
function query<T>(sql: string, ...args: unknown[]): T[] {
  const db = new Database(join(dir, "bolt.db"), { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

const blobs = () => query<{ hash: string }>("SELECT hash FROM revision_blobs ORDER BY hash").map((r) => r.hash);

describe("revision retention", () => {
  it("keeps the last REVISIONS_KEPT revisions of a target and deletes the blobs only the dropped ones used", () => {
    const ids = Array.from({ length: REVISIONS_KEPT + 5 }, (_, i) => record(`b${i}`));
    const kept = store.revisions(T).map((r) => r.id);
    expect(kept).toEqual(ids.slice(5));
    expect(blobs()).not.toContain("b0");
    expect(blobs()).toContain("b5");
    expect(blobs()).toHaveLength(REVISIONS_KEPT);
  });

  it("keeps a blob a newer revision shares (a state recorded again)", () => {
    record("same");
    for (let i = 0; i < REVISIONS_KEPT - 1; i++) record(`b${i}`);
    const again = record("same");
    expect(store.revisions(T)[0]!.blob).not.toBe("same");
    expect(revisionState(store, T, again).desired).toEqual(["same"]);
  });

  it("never drops a pending revision, the one it restores, or the last applied one, however old", () => {
    const base = record("base");
    const pending = record("pending", "pending", base);
    for (let i = 0; i < REVISIONS_KEPT + 3; i++) record(`f${i}`, "failed");
    const left = store.revisions(T).map((r) => r.id);
    expect(left).toContain(base);
    expect(left).toContain(pending);
    expect(left).toHaveLength(REVISIONS_KEPT + 2);
    expect(revisionState(store, T, base).desired).toEqual(["base"]);
  });

  it("only counts the target's own revisions", () => {
    store.addRevision({ target: "bolt-t-other", command: "apply", summary: "s", hash: "other", desired: "[]", intent: "{}", status: "applied" });
    for (let i = 0; i < REVISIONS_KEPT + 1; i++) record(`b${i}`);
    expect(store.revisions("bolt-t-other")).toHaveLength(1);
    expect(blobs()).toContain("other");
  });

  it("says a pruned revision was pruned when asked for it", () => {
    for (let i = 0; i < REVISIONS_KEPT + 2; i++) record(`b${i}`);
    expect(() => revisionState(store, T, 1)).toThrow(
      `no revision 1 for netns ${T}: older revisions than 3 were pruned, bolt keeps the last ${REVISIONS_KEPT} (see \`bolt history\`)`,
    );
    expect(() => revisionState(store, T, 9999)).toThrow(`no revision 9999 for netns ${T} (see \`bolt history\`)`);
  });
});

describe("chunked revisions in the store", () => {
  const state = (n: number) => ({
    desired: Array.from({ length: n }, (_, i) => ({ id: `endpoint:e${i}`, kind: "endpoint", name: `e${i}`, spec: {}, keys: [], deps: [] })),
    intent: { files: ["/a.toml"], kinds: { endpoint: Array.from({ length: n }, (_, i) => ({ name: `e${i}` })) } },
  });
  const chunkCount = () => query<{ n: number }>("SELECT count(*) AS n FROM revision_chunks")[0]!.n;
  const recordState = (n: number) =>
    store.addRevision({ target: T, command: "apply", summary: "s", status: "applied", ...encodeRevision(state(n).desired as never, state(n).intent) });

  it("stores a revision one endpoint larger as a few new runs, and reads every one back whole", () => {
    const a = recordState(1000);
    const first = chunkCount();
    const b = recordState(1001);
    expect(chunkCount() - first).toBeLessThanOrEqual(4);
    expect(revisionState(store, T, a)).toEqual(state(1000));
    expect(revisionState(store, T, b)).toEqual(state(1001));
  });

  it("deletes the runs only pruned revisions used, never one a kept revision names", () => {
    const only = state(1000);
    only.desired.splice(500, 0, { id: "endpoint:only-a", kind: "endpoint", name: "only-a", spec: {}, keys: [], deps: [] });
    store.addRevision({ target: T, command: "apply", summary: "s", status: "applied", ...encodeRevision(only.desired as never, only.intent) });
    const bodies = (needle: string) => query<{ n: number }>("SELECT count(*) AS n FROM revision_chunks WHERE instr(body, ?) > 0", needle)[0]!.n;
    expect(bodies("only-a")).toBe(1);
    for (let i = 1; i <= REVISIONS_KEPT; i++) recordState(1000 + i);
    expect(store.revisions(T)).toHaveLength(REVISIONS_KEPT);
    expect(bodies("only-a")).toBe(0);
    for (const r of store.revisions(T)) expect(revisionState(store, T, r.id)).toEqual(state(1000 + r.id - 1));
  });
});
