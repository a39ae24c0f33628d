// Verify after an apply re-reads what the apply touched: attaching one endpoint among many reads
// that endpoint's host-side link (`ip -d link show dev X`), never the whole link table, and still
// notices when the kernel did not take the change.
import { describe, expect, it } from "vitest";
import { applyIntent, converge, intentOf, newWorld, planOn, writeConfigs } from "./helpers/pipeline.js";
import type { Desired } from "./helpers/pipeline.js";

const T = "bolt-t-vscope";
const P = `${T}-`;
const endpoint = (name: string, net: string, ip: string, netns?: string) =>
  `\n[[endpoints]]\nname = "${name}"\nnetwork = "${net}"\nip = "${ip}"\n${netns ? `netns = "${netns}"\n` : ""}`;
const NETS = `
[networks.front]
subnet = "10.83.0.0/24"

[networks.back]
subnet = "10.83.1.0/24"
${endpoint("web", "front", "10.83.0.10")}${endpoint("db", "back", "10.83.1.10")}`;
const want = (text: string): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text }), { netnsPrefix: P }) });

async function world(text = NETS) {
  const w = newWorld(T);
  await converge(w, want(text));
  return w;
}

/** The link reads of the target after the first write of the apply (verify's). */
function verifyLinkReads(w: ReturnType<typeof newWorld>, from: number): string[] {
  return w.kernel.calls
    .slice(from)
    .filter((c) => c.argv.includes(T) && c.argv.includes("-j") && (c.argv.includes("link") || /link show/.test(c.stdin ?? "")))
    .map((c) => `${c.argv.slice(c.argv.indexOf(T) + 1).join(" ")}${c.stdin ? ` <<< ${c.stdin.trim()}` : ""}`);
}

describe("verify reads only the objects the apply touched", () => {
  it("an attach: the new endpoint's link only, by name; the next plan is empty", async () => {
    const w = await world();
    const text = NETS + endpoint("api", "front", "10.83.0.11");
    const plan = await planOn(w, want(text));
    expect(plan.changes.map((c) => c.id)).toContain("endpoint:api");
    const from = w.kernel.calls.length;
    await applyIntent(plan, want(text).intent, w.kernel, { originals: w.store.originals });
    expect(verifyLinkReads(w, from)).toEqual(["-j -d -force -batch - <<< link show dev bv-api"]);
    expect((await planOn(w, want(text))).changes).toEqual([]);
  });

  it("a detach: the gone endpoint's link is asked for and is not there; the next plan is empty", async () => {
    const w = await world();
    const text = NETS.replace(endpoint("db", "back", "10.83.1.10"), "");
    const plan = await planOn(w, want(text));
    expect(plan.changes.map((c) => `${c.action} ${c.id}`)).toContain("delete endpoint:db");
    const from = w.kernel.calls.length;
    await applyIntent(plan, want(text).intent, w.kernel, { originals: w.store.originals });
    expect(verifyLinkReads(w, from)).toEqual(["-j -d -force -batch - <<< link show dev bv-db"]);
    expect((await planOn(w, want(text))).changes).toEqual([]);
  });

  it("a detach whose namespace stayed: verify looks into that namespace and fails", async () => {
    const w = await world();
    const text = NETS.replace(endpoint("db", "back", "10.83.1.10"), "");
    const plan = await planOn(w, want(text));
    w.kernel.setFault({ when: (op) => op.args.join(" ") === `netns del ${P}db`, effect: "ignore" });
    await expect(applyIntent(plan, want(text).intent, w.kernel, { originals: w.store.originals })).rejects.toThrow(/did not converge.*endpoint "db"/s);
  });

  it("still fails, and rolls back, when the kernel did not take the change", async () => {
    const w = await world();
    const text = NETS + endpoint("api", "front", "10.83.0.11");
    const plan = await planOn(w, want(text));
    // The port is created but never marked, plugged or brought up: verify must see it on the one link it reads.
    w.kernel.setFault({ when: (op) => op.args.join(" ").startsWith("link set dev bv-api alias "), effect: "ignore" });
    await expect(applyIntent(plan, want(text).intent, w.kernel, { originals: w.store.originals })).rejects.toThrow(/did not converge.*endpoint "api"/s);
    expect(w.kernel.calls.some((c) => /link show dev bv-api/.test(c.stdin ?? ""))).toBe(true);
  });

  it("an endpoint sharing its namespace with another: the detach of one does not call the namespace left behind", async () => {
    const text = NETS + endpoint("web2", "back", "10.83.1.20", `${P}web`);
    const w = await world(text);
    const plan = await planOn(w, want(NETS));
    expect(plan.changes.map((c) => `${c.action} ${c.id}`)).toContain("delete endpoint:web2");
    await applyIntent(plan, want(NETS).intent, w.kernel, { originals: w.store.originals });
    expect((await planOn(w, want(NETS))).changes).toEqual([]);
  });
});
