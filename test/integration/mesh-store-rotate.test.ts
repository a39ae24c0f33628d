// Key rotation of hosts on an etcd-backed mesh (MULTIHOST.md §2.4 last bullet, §2.11 test 9):
// bolt applies a new private key only when the host's own identity shows the matching public
// key, so a rotation never cuts the host off. Host a is pinned (approved with its key): after
// its key file changes, its passes publish the new key but keep the old one on the device (b
// and c still reach it) until `bolt mesh approve` pins the new key; then a switches, and b and c
// follow at their next pass (old peer removed, new added in one `wg set`). Host c's identity
// follows its request (enrolled with --auto-approve, key_policy "node"): it switches in the
// pass that publishes the new key, and a and b follow at their next pass — the window is one
// pass of each peer.
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, requireBuild } from "./harness.js";
import type { Json } from "./harness.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { HOSTS, MeshLab, hostname, pingUntil } from "./mesh-topology.js";
import type { HostId } from "./mesh-topology.js";

describe.skipIf(!!SKIP_REASON)("key rotation on a mesh store never cuts a host off", () => {
  const etcd = new EtcdCluster();
  const lab = new MeshLab(HOSTS, false);
  const ip: Partial<Record<HostId, string>> = {};
  /** the key file each host's config points at (rotation: a new file) */
  const keyOf: Record<HostId, string> = { a: "", b: "", c: "" };
  const admin = (args: string[]) => bolt(["mesh", ...args, "--control-server", etcd.url, "--mesh", "lab"]);
  const file = (h: HostId) => lab.storeFile(h, etcd.url, { keyFile: keyOf[h] });
  const apply = async (h: HostId) => {
    const r = await lab.bolt(h, ["apply", "-f", file(h)]);
    expect(r.code, `apply ${h}: ${r.stdout}${r.stderr}`).toBe(0);
    return r;
  };
  const replanEmpty = async (h: HostId) => {
    const p = await lab.bolt(h, ["plan", "-f", file(h), "--detailed-exitcode"]);
    expect(p.code, `re-plan of ${h}: ${p.stdout}${p.stderr}`).toBe(0);
    return p;
  };
  const deviceKey = async (h: HostId) => (await lab.wg(h, "public-key")).trim();
  const peerKeys = async (h: HostId) => (await lab.peers(h)).map((l) => l.split(" ")[0]);
  const allPairsPing = async () => {
    for (const from of HOSTS) for (const to of HOSTS.filter((x) => x !== from)) expect(await pingUntil(lab.ns(from), ip[to]!), `${from} → ${to}`).toBe(true);
  };
  /** `bolt keygen` into a new file (0600); the host's config points at it from now on */
  const rotate = async (h: HostId, n: number): Promise<string> => {
    const k = join(lab.sb.dir, "keys", `${h}-${n}.key`);
    const r = await lab.bolt(h, ["keygen", k], { target: false });
    expect(r.code, r.stderr).toBe(0);
    chmodSync(k, 0o600);
    keyOf[h] = k;
    return readFileSync(`${k}.pub`, "utf8").trim();
  };

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
    await lab.build();
    for (const h of HOSTS) keyOf[h] = lab.keyFile(h);
    expect((await admin(["init"])).code).toBe(0);
    // a is approved by the admin (its key pinned); b and c approve themselves (key_policy "node").
    Object.assign(ip, await lab.enrollStore(admin, (h) => (h === "a" ? [] : ["--auto-approve"])));
  }, 90_000);
  afterAll(async () => {
    await lab.cleanup();
    await etcd.stop();
  }, 60_000);

  it("three hosts join; a is approved with the key its request shows (pinned)", async () => {
    await apply("a"); // publishes a's request; a is pending
    const r = await admin(["approve", hostname("a"), "--public-key", lab.pub.a]);
    expect(r.code, r.stderr).toBe(0);
    for (const round of [1, 2]) for (const h of HOSTS) expect((await apply(h)).code, `round ${round}`).toBe(0);
    const list = JSON.parse((await admin(["list", "--json"])).stdout).nodes as Json[];
    expect(list.find((n) => n.name === hostname("a"))).toMatchObject({ state: "approved", key_policy: "pinned", public_key: lab.pub.a });
    for (const h of HOSTS) await replanEmpty(h);
    await allPairsPing();
  }, 120_000);

  it("pinned: a rotated key file is published but not applied until approved; a stays reachable, re-plans are empty", async () => {
    const K_OLD = lab.pub.a;
    const K_NEW = await rotate("a", 2);
    const r = await apply("a");
    const say = `${r.stdout}${r.stderr}`;
    expect(say).toContain(`${keyOf.a} holds a new key (public key ${K_NEW}), but node "${hostname("a")}"'s identity in the mesh store still pins ${K_OLD}`);
    expect(say).toContain(`\`bolt mesh approve ${hostname("a")}\``);
    expect(await deviceKey("a")).toBe(K_OLD);
    // The request shows the new key; the identity still pins the old one.
    const list = JSON.parse((await admin(["list", "--json"])).stdout).nodes as Json[];
    expect(list.find((n) => n.name === hostname("a"))).toMatchObject({ public_key: K_OLD, requested: { public_key: K_NEW } });
    const p = await replanEmpty("a");
    expect(`${p.stdout}${p.stderr}`).toContain("keeps its current private key");
    for (const h of ["b", "c"] as const) {
      await apply(h);
      await replanEmpty(h);
      expect(await peerKeys(h)).toContain(K_OLD);
    }
    expect(await deviceKey("a")).toBe(K_OLD);
    await allPairsPing();

    // Approved: the request's key is pinned. a applies it; b and c switch at their next pass.
    expect((await admin(["approve", hostname("a")])).code).toBe(0);
    const done = await apply("a");
    expect(`${done.stdout}${done.stderr}`).not.toContain("keeps its current private key");
    expect(await deviceKey("a")).toBe(K_NEW);
    for (const h of ["b", "c"] as const) {
      // Old peer removed and new added: one `wg set` process (no destroy-phase removal before it).
      const plan = await lab.bolt(h, ["plan", "-f", file(h), "--json"]);
      const changes = (JSON.parse(plan.stdout).changes as Json[]).filter((c) => c.kind === "wg-peer");
      expect(changes.map((c) => `${c.action} ${c.address}`).sort()).toEqual([`create wg-peer:gw0/${K_NEW}`, `delete wg-peer:gw0/${K_OLD}`].sort());
      expect(changes.flatMap((c) => (c.commands as Json[]).map((x) => `${x.tool} ${x.phase}`))).toEqual(["wg build", "wg build"]);
      await apply(h);
      expect(await peerKeys(h)).toContain(K_NEW);
      expect(await peerKeys(h)).not.toContain(K_OLD);
    }
    lab.pub.a = K_NEW;
    for (const h of HOSTS) await replanEmpty(h);
    await allPairsPing();
  }, 120_000);

  it('key_policy "node": the identity follows the request, so c switches in the same pass and a and b follow at their next', async () => {
    const K_OLD = lab.pub.c;
    const K_NEW = await rotate("c", 2);
    const r = await apply("c");
    expect(`${r.stdout}${r.stderr}`).not.toContain("identity in the mesh store");
    expect(await deviceKey("c")).toBe(K_NEW);
    for (const h of ["a", "b"] as const) {
      await apply(h);
      expect(await peerKeys(h)).toContain(K_NEW);
      expect(await peerKeys(h)).not.toContain(K_OLD);
    }
    lab.pub.c = K_NEW;
    for (const h of HOSTS) await replanEmpty(h);
    await allPairsPing();
  }, 120_000);

  it("no private key, old or new, in anything bolt printed or kept", async () => {
    await lab.expectNoSecrets(Object.values(keyOf).map((k) => readFileSync(k, "utf8").trim()));
  });
});
