// The journal's copy in the run dir (tmpfs): written with the store's journal before each wave,
// cleared with it, and read only by a store that has never recorded anything for the target (a
// lost and recreated state dir). A copy beside a store with a history is stale and never undone.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRunJournal } from "../../src/state/run-copy.js";
import { StateStore } from "../../src/state/store.js";

const T = "bolt-t-runjournal";
let dir: string;
const saved = process.env.BOLT_RUN_DIR;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "bolt-run-journal-"));
  process.env.BOLT_RUN_DIR = join(dir, "run");
});
afterAll(() => {
  if (saved === undefined) delete process.env.BOLT_RUN_DIR;
  else process.env.BOLT_RUN_DIR = saved;
  rmSync(dir, { recursive: true, force: true });
});

describe("the journal's run-dir copy", () => {
  it("follows the store's journal: written before each wave (first start time kept), cleared with it", () => {
    const store = new StateStore(join(dir, "s1"));
    store.writeJournal(T, "wave 1");
    const first = store.journal(T)!;
    store.writeJournal(T, "wave 2");
    expect(readRunJournal(T)).toEqual({ pid: process.pid, startedAt: first.startedAt, payload: "wave 2" });
    store.clearJournal(T);
    expect(readRunJournal(T)).toBeUndefined();
    expect(store.journal(T)).toBeUndefined();
    store.close();
  });

  it("a lost state dir: the new store has the interrupted apply's journal from the copy", () => {
    const lost = join(dir, "s2");
    const store = new StateStore(lost);
    store.writeJournal(T, "started ops");
    store.close();
    rmSync(lost, { recursive: true, force: true });
    const fresh = new StateStore(lost);
    expect(fresh.journal(T)).toMatchObject({ target: T, pid: process.pid, payload: "started ops" });
    // Recovered and cleared: gone from both.
    fresh.clearJournal(T);
    expect(fresh.journal(T)).toBeUndefined();
    fresh.close();
  });

  it("a copy beside a store that has a history (its clear failed) is stale: never returned", () => {
    const store = new StateStore(join(dir, "s3"));
    store.writeJournal(T, "old apply");
    store.close();
    const other = new StateStore(join(dir, "s4"));
    other.addHistory(T, "apply", "1 to add", "applied");
    expect(other.journal(T)).toBeUndefined();
    other.close();
    // Another target's store knows nothing of it either way.
    expect(new StateStore(join(dir, "s5")).journal("bolt-t-other")).toBeUndefined();
  });
});
