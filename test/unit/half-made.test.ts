// An ip batch that stopped after a `link add` and before the line that gives the link bolt's
// alias leaves a link that reads as foreign. When every undo line fails too, the rollback must
// not say "the kernel is as it was" (the link is left behind) and must keep the journal; a plan
// made before the next apply describes the state (a warning naming the leftover, the create it
// plans) instead of refusing the leftover as a foreign object; the next apply's recovery removes
// it and the network converges.
import { describe, expect, it } from "vitest";
import { ApplyError } from "../../src/core/apply.js";
import { journalCreates } from "../../src/core/recover.js";
import {
  ROLLBACK_EVENT,
  applyIntent,
  converge,
  intentOf,
  memoryJournal,
  newWorld,
  planChanges,
  planOn,
  recoverFrom,
  writeConfigs,
} from "./helpers/pipeline.js";
import type { Desired, World } from "./helpers/pipeline.js";
import type { Plan } from "../../src/core/plan.js";

const T = "bolt-t-half";
const CONFIG = `
[networks.front]
subnet = "10.81.0.0/24"
`;
const want: Desired = { intent: intentOf(writeConfigs({ "bolt-network.toml": CONFIG }), { netnsPrefix: `${T}-` }) };
const messages = (p: Plan, severity: "error" | "warning") => p.diagnostics.filter((d) => d.severity === severity).map((d) => d.message);

/** The first apply of CONFIG, its alias line failing and every undo line failing too. */
async function halfApplied(): Promise<{ w: World; error: unknown; journal: string[] }> {
  const w = newWorld(T);
  const plan = await planOn(w, want);
  const k = w.kernel;
  k.setFault({ when: (op) => op.args.includes("alias") });
  k.failRollback("RTNETLINK answers: Operation not permitted");
  // The journal as the store keeps it: the last payload written, gone when cleared.
  const kept: string[] = [];
  const journal = { writeJournal: (_t: unknown, p: string) => void kept.splice(0, 1, p), clearJournal: () => void kept.splice(0) };
  const error = await applyIntent(plan, want.intent, k, { journal, log: (e) => e === ROLLBACK_EVENT && k.markRollback() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  k.failRollback(undefined);
  return { w, error, journal: kept };
}

describe("a link left without bolt's mark by a half-applied batch whose undo failed", () => {
  it("the rollback reports it left behind and keeps the journal (it does not say the kernel is as it was)", async () => {
    const { w, error, journal } = await halfApplied();
    expect(w.kernel.link(T, "bolt-front")).toBeDefined();
    expect(w.kernel.link(T, "bolt-front")!.alias ?? "").toBe("");
    expect(error).toBeInstanceOf(ApplyError);
    expect((error as Error).message).toMatch(/ROLLBACK INCOMPLETE: interface bolt-front was left behind without bolt's mark/);
    expect((error as Error).message).not.toMatch(/the kernel is as it was/);
    expect(journal).toHaveLength(1);
    expect(journalCreates(journal[0])).toContain("link:bolt-front");
  });

  it("a plan before the next apply describes it: a warning at the network, the create planned, no error", async () => {
    const { w, journal } = await halfApplied();
    // Without the journal's word the leftover is a foreign link, refused as before.
    expect(messages(await planOn(w, want), "error").join("\n")).toMatch(/interface bolt-front already exists/);
    const plan = await planOn(w, { ...want, halfMade: new Set(journalCreates(journal[0])) });
    expect(messages(plan, "error")).toEqual([]);
    expect(messages(plan, "warning").join("\n")).toMatch(
      /network "front": interface bolt-front was left by the interrupted apply, without bolt's mark: the next `bolt apply` \(or `bolt rollback`\) removes it first/,
    );
    expect(planChanges(plan)).toContain("create network:front");
  });

  it("the next apply's recovery removes it, the apply converges and a second plan is empty", async () => {
    const { w, journal } = await halfApplied();
    expect((await recoverFrom(journal[0]!, w.kernel, T)).problems).toEqual([]);
    expect(w.kernel.link(T, "bolt-front")).toBeUndefined();
    await converge(w, want);
    expect(w.kernel.link(T, "bolt-front")!.alias).toBe("bolt1,net=front");
    expect(planChanges(await planOn(w, want))).toEqual([]);
  });

  it("an unreadable or older journal names nothing", () => {
    expect(journalCreates(undefined)).toEqual([]);
    expect(journalCreates("{not json")).toEqual([]);
    expect(journalCreates(JSON.stringify({ version: 1, before: [], started: [], originals: [] }))).toEqual([]);
  });
});
