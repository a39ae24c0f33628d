// Key rotation of a store-backed mesh host (MULTIHOST.md §2.4, last bullet): bolt applies a new
// private key only when the host's own identity shows the matching public key. A pinned
// identity that still shows the old key keeps the live device's private key (warned, re-plan
// empty); a device without the pinned key (none yet) gets the key file's; once the identity
// pins the new key (`bolt mesh approve`), or follows the request (key_policy "node"), it is applied.
import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import type { MeshSnapshot, NodeRecord } from "../../reconcilers/wireguard/store.js";
import { kinds, storeNode, writeMeshHostConf } from "./helpers/builders.js";
import { publicKeyOf } from "./helpers/fake-kernel.js";
import { converge, newWorld, planChanges, planOn, wgKeyPair, writeKeyFile } from "./helpers/pipeline.js";
import type { World } from "./helpers/pipeline.js";

const T = "bolt-t-rotate";
const OLD = wgKeyPair();
const NEW = wgKeyPair();
const PEER = wgKeyPair();
const KEY = writeKeyFile("self.key", OLD.priv);
const CONF = writeMeshHostConf(KEY);
const rotate = (priv: string) => writeFileSync(KEY, `${priv}\n`, { mode: 0o600 });

const record = (name: string, ip: string, o: Partial<NodeRecord>): NodeRecord => storeNode(name, { mesh_ip4: ip, ...o });
/** The store as this host reads it after publishing its request (the key file's key). */
const snap = (me: Partial<NodeRecord>, requested: string): MeshSnapshot => ({
  revision: "9",
  meta: { v: 1, mesh_id: "m1", cidr4: "100.64.0.0/10", listen_port: 41641, keepalive: 25, created_at: "" },
  nodes: [record("me", "100.64.0.10", me), record("peer", "100.64.0.11", { public_key: PEER.pub })],
  requests: {
    me: { v: 1, public_key: requested, hostname: "me", tags: [], routes: [], exit_node: false, at: "" },
    peer: { v: 1, public_key: PEER.pub, hostname: "peer", endpoint: "198.18.0.11:41641", tags: [], routes: [], exit_node: false, at: "" },
  },
  ipam: {},
});
const want = (s: MeshSnapshot) => ({ intent: loadIntent([CONF], "", { external: { wireguard: { snapshot: s, self: "me" } } }).intent });
const liveKey = (w: World) => publicKeyOf(w.kernel.link(T, "gw0")!.wg!.privateKey);
const warnings = (p: { diagnostics: { severity: string; message: string }[] }) => p.diagnostics.filter((d) => d.severity === "warning").map((d) => d.message);

describe("key rotation of a store-backed host", () => {
  it("pinned identity with the old key: the live private key is kept, said with the command to run, and the re-plan is empty", async () => {
    rotate(OLD.priv);
    const w = newWorld(T);
    await converge(w, want(snap({ public_key: OLD.pub }, OLD.pub)));
    expect(liveKey(w)).toBe(OLD.pub);
    rotate(NEW.priv);
    const held = want(snap({ public_key: OLD.pub }, NEW.pub));
    expect(kinds(held.intent).wireguard[0]!.keyHold).toMatchObject({ publicKey: OLD.pub, node: "me" });
    const plan = await planOn(w, held);
    expect(planChanges(plan)).toEqual([]);
    const warned = warnings(plan).find((m) => m.includes("keeps its current private key"));
    expect(warned).toContain(KEY);
    expect(warned).toContain(NEW.pub);
    expect(warned).toContain("`bolt mesh approve me`");
    // Other changes still apply; the private key stays.
    await converge(w, held);
    expect(liveKey(w)).toBe(OLD.pub);
    // Approved (the identity pins the new key): the next pass applies it, one change.
    const approved = want(snap({ public_key: NEW.pub }, NEW.pub));
    expect(kinds(approved.intent).wireguard[0]!.keyHold).toBeUndefined();
    const next = await planOn(w, approved);
    expect(planChanges(next)).toEqual(["update wireguard:gw0"]);
    expect(next.changes[0]!.changed).toEqual(["public_key"]);
    await converge(w, approved);
    expect(liveKey(w)).toBe(NEW.pub);
    expect(planChanges(await planOn(w, approved))).toEqual([]);
  });

  it("a device without the pinned key (a first start) gets the key file's, with a warning that peers wait for approval", async () => {
    rotate(NEW.priv);
    const w = newWorld(T);
    const held = want(snap({ public_key: OLD.pub }, NEW.pub));
    const plan = await planOn(w, held);
    expect(planChanges(plan)).toContain("create wireguard:gw0");
    expect(warnings(plan).some((m) => m.includes(`pins ${OLD.pub}: its peers reach it only once \`bolt mesh approve me\``))).toBe(true);
    await converge(w, held);
    expect(liveKey(w)).toBe(NEW.pub);
    expect(planChanges(await planOn(w, held))).toEqual([]);
  });

  it('key_policy "node": the identity follows the request, so the new key is applied in the same pass', async () => {
    rotate(OLD.priv);
    const w = newWorld(T);
    await converge(w, want(snap({ key_policy: "node" }, OLD.pub)));
    rotate(NEW.priv);
    const follows = want(snap({ key_policy: "node" }, NEW.pub));
    expect(kinds(follows.intent).wireguard[0]!.keyHold).toBeUndefined();
    await converge(w, follows);
    expect(liveKey(w)).toBe(NEW.pub);
  });

  it("a pending or revoked node holds nothing (it has no peers to lose)", () => {
    rotate(NEW.priv);
    for (const state of ["pending", "revoked"] as const)
      expect(kinds(want(snap({ state, public_key: OLD.pub }, NEW.pub)).intent).wireguard[0]!.keyHold).toBeUndefined();
  });
});
