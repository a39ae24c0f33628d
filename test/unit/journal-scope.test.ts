// The journal an apply writes before each wave holds "before" only for what the apply can touch
// (the changed objects and those depending on one), and a digest of every other object of their
// kinds: attaching one endpoint among many networks journals no network, route or rule, and the
// other endpoints as digests. Recovery from such a journal reads those kinds alone — and still
// notices one of their objects gone or changed.
import { describe, expect, it } from "vitest";
import type { JournalPayload } from "../../src/core/apply.js";
import { FakeKernelKilled } from "./helpers/fake-kernel.js";
import { applyIntent, converge, intentOf, memoryJournal, newWorld, planOn, recoverFrom, writeConfigs } from "./helpers/pipeline.js";
import type { Desired } from "./helpers/pipeline.js";

const T = "bolt-t-jscope";
const P = `${T}-`;
const NETS = `
[networks.front]
subnet = "10.82.0.0/24"

[networks.back]
subnet = "10.82.1.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.82.0.10"
`;
const ADD = `${NETS}
[[endpoints]]
name = "api"
network = "back"
ip = "10.82.1.10"
`;
const want = (text: string): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text }), { netnsPrefix: P }) });

async function world() {
  const w = newWorld(T);
  await converge(w, want(NETS));
  return w;
}

describe("the journal's before holds the kinds the apply can touch", () => {
  it("one endpoint added: the endpoints (and what depends on them) are journaled, the networks are not", async () => {
    const w = await world();
    const plan = await planOn(w, want(ADD));
    expect(plan.changes.map((c) => c.id)).toContain("endpoint:api");
    const journal = memoryJournal();
    await applyIntent(plan, want(ADD).intent, w.kernel, { journal, originals: w.store.originals });
    const payload = JSON.parse(journal.payloads[0]!) as JournalPayload;
    expect(payload.kinds).toContain("endpoint");
    expect(payload.kinds).not.toContain("network");
    // nothing that is there is changed (a new endpoint): no spec journaled; the other endpoint by digest
    expect(payload.before).toEqual([]);
    expect(Object.keys(payload.present!)).toContain("endpoint:web");
    expect(Object.keys(payload.present!).every((id) => payload.kinds!.includes(id.split(":")[0]!))).toBe(true);
    expect(plan.before.some((b) => b.kind === "network")).toBe(true);
  });

  it("killed mid-apply: recovery from the scoped journal undoes it, and notices an endpoint of before gone or changed", async () => {
    const meddling: Record<string, { argv: string[]; says: RegExp } | undefined> = {
      none: undefined,
      gone: { argv: ["ip", "-n", T, "link", "del", "bv-web"], says: /endpoint:web (is gone|differs)/ },
      changed: { argv: ["ip", "-n", T, "link", "set", "dev", "bv-web", "mtu", "1400"], says: /endpoint:web differs/ },
    };
    for (const meddle of Object.values(meddling)) {
      const w = await world();
      const snapshot = w.kernel.snapshot();
      const plan = await planOn(w, want(ADD));
      const journal = memoryJournal();
      w.kernel.setFault({ when: (op) => op.ns === `${P}api`, effect: "kill" });
      const error = await applyIntent(plan, want(ADD).intent, w.kernel, { journal, originals: w.store.originals }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(FakeKernelKilled);
      w.kernel.setFault(undefined);
      if (meddle) expect((await w.kernel.run(meddle.argv)).code).toBe(0);
      const { problems } = await recoverFrom(journal.payloads[journal.payloads.length - 1]!, w.kernel, T);
      if (meddle) expect(problems.join("; ")).toMatch(meddle.says);
      else {
        expect(problems).toEqual([]);
        expect(w.kernel.snapshot()).toEqual(snapshot);
      }
    }
  });

  it("a journal without kinds (an older bolt's) is compared against every kind", async () => {
    const w = await world();
    const plan = await planOn(w, want(ADD));
    const journal = memoryJournal();
    w.kernel.setFault({ when: (op) => op.ns === `${P}api`, effect: "kill" });
    await applyIntent(plan, want(ADD).intent, w.kernel, { journal, originals: w.store.originals }).catch(() => undefined);
    w.kernel.setFault(undefined);
    const payload = JSON.parse(journal.payloads[journal.payloads.length - 1]!) as JournalPayload;
    // As an older bolt wrote it: every object read, no kinds.
    const old = JSON.stringify({ ...payload, kinds: undefined, before: plan.before });
    expect((await recoverFrom(old, w.kernel, T)).problems).toEqual([]);
    // The full before of an older journal with a network gone: the comparison covers networks too.
    const w2 = await world();
    expect((await w2.kernel.run(["ip", "-n", T, "link", "del", "bolt-back"])).code).toBe(0);
    const full = JSON.stringify({ ...payload, kinds: undefined, before: plan.before, started: [] });
    expect((await recoverFrom(full, w2.kernel, T)).problems.join("; ")).toMatch(/network:back/);
  });
});
