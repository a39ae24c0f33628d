// Routes, exit nodes and the policy through the mesh's etcd store (issue 10, MULTIHOST.md
// §2.4/§2.5): a node's announced subnet route and exit offer count only once approved — by the
// policy's autoApprovers or `bolt mesh approve --routes/--exit-node` — and then carry traffic;
// every host takes its ACLs from the one policy key; two routers announcing one LAN are an HA
// pair whose primary moves to the other when the primary's status lease dies, and stays there.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, must, requireBuild } from "./harness.js";
import { sleep, waitFor } from "./watch-helpers.js";
import type { Json } from "./harness.js";
import { EtcdCluster } from "./etcd-cluster.js";
import { HOSTS, INTERNET, LAN, MeshLab, UNDERLAY, hostname, mesh6, pingUntil } from "./mesh-topology.js";
import type { HostId } from "./mesh-topology.js";
import { MeshDaemons } from "./mesh-daemons.js";

const TTL = 3;

describe.skipIf(!!SKIP_REASON)("routes, exit nodes and the policy through the mesh store", () => {
  const etcd = new EtcdCluster();
  const lab = new MeshLab(HOSTS, true);
  const ip: Partial<Record<HostId, string>> = {};
  const admin = (args: string[]) => bolt(["mesh", ...args, "--control-server", etcd.url, "--mesh", "routes"]);
  const policy = (name: string, text: string) => lab.sb.write(name, text);
  const node: Record<HostId, string[]> = {
    a: [`advertise_routes = ["${LAN.subnet}"]`, "exit_node = true"],
    b: ["accept_routes = true"],
    c: ["accept_routes = true", `use_exit_node = "${hostname("a")}"`],
  };
  const file = (h: HostId) => lab.storeFile(h, etcd.url, { lines: node[h], name: `${h}-routes.toml` });
  const round = async (hosts: readonly HostId[] = HOSTS) => {
    for (const h of hosts) {
      const r = await lab.bolt(h, ["apply", "-f", file(h)]);
      expect(r.code, `${h}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  };
  const replanEmpty = async (hosts: readonly HostId[] = HOSTS) => {
    for (const h of hosts) {
      const p = await lab.bolt(h, ["plan", "-f", file(h), "--detailed-exitcode"]);
      expect(p.code, `${h} re-plan: ${p.stdout}${p.stderr}`).toBe(0);
    }
  };
  // `bolt mesh list`: the whole mesh, and one node's entry in it.
  const list = async () => JSON.parse((await admin(["list", "--json"])).stdout) as Json;
  const listed = async (h: HostId) => ((await list()).nodes as Json[]).find((n) => n.name === hostname(h))!;
  const listLine = async (h: HostId) => (await admin(["list"])).stdout.split("\n").find((l) => l.startsWith(`${hostname(h)} `)) ?? "";
  // Sorted: a node's IPv4 lease, its routes, then the IPv6 address every host derives from the lease.
  const allowedOf = async (h: HostId, peer: HostId): Promise<string[]> => {
    const peers = ((await lab.status(h)).interfaces as Json[])[0].peers as Json[];
    return [...((peers.find((p) => p.public_key === lab.pub[peer])?.allowed_ips as string[] | undefined) ?? [])].sort();
  };
  const own = (h: HostId) => [`${ip[h]}/32`, `${mesh6(ip[h]!)}/128`];

  beforeAll(async () => {
    requireBuild();
    await etcd.start(3);
    await lab.build();
    expect((await admin(["init", "--status-ttl", `${TTL}`])).code).toBe(0);
    Object.assign(ip, await lab.enrollStore(admin, (h) => ["--auto-approve", ...(h === "c" ? [] : ["--tags", "router"])]));
  }, 90_000);
  afterAll(async () => {
    await lab.cleanup();
    await etcd.stop();
  }, 60_000);

  it("announced but not approved: no route, no exit; the mesh itself works", async () => {
    await round();
    await round();
    expect(await pingUntil(lab.ns("b"), ip.a!)).toBe(true);
    expect(await allowedOf("b", "a")).toEqual(own("a"));
    expect(await allowedOf("c", "a")).toEqual(own("a"));
    expect(await pingUntil(lab.ns("b"), LAN.host, 2)).toBe(false);
    expect(await pingUntil(lab.ns("c"), INTERNET.host, 2)).toBe(false);
    await replanEmpty();
    // mesh list: what a asks for (its key, the LAN, the exit), none of it approved yet.
    const a = await listed("a");
    expect(a.requested).toMatchObject({ public_key: lab.pub.a, routes: [LAN.subnet], exit_node: true });
    expect(a.effective).toEqual({ routes: [], exit_node: false });
    expect(await listLine("a")).toContain(`routes ${LAN.subnet} (awaiting approval)  exit-node (awaiting approval)`);
  }, 120_000);

  it("the policy's autoApprovers approve the route (tag:router), `approve --exit-node` the exit: LAN and internet answer through A", async () => {
    const p = policy(
      "auto.hujson",
      `{
  "autoApprovers": { "routes": { "192.168.0.0/16": ["tag:router"] } },
  "acls": [ { "action": "accept", "src": ["*"], "dst": ["*:*"] } ],
}\n`,
    );
    const set = await admin(["policy", "set", "-f", p]);
    expect(set.code, set.stderr).toBe(0);
    await round(["a", "b"]);
    expect(await allowedOf("b", "a")).toEqual([...own("a"), LAN.subnet].sort());
    expect(await pingUntil(lab.ns("b"), LAN.host)).toBe(true);
    expect(await listLine("a")).toContain(`routes ${LAN.subnet} (approved)  exit-node (awaiting approval)`);
    // Not yet an exit: the offer is only announced.
    expect(await allowedOf("c", "a")).not.toContain("0.0.0.0/0");
    const ok = await admin(["approve", hostname("a"), "--exit-node"]);
    expect(ok.code, ok.stderr).toBe(0);
    await round(["a", "c"]);
    expect(await allowedOf("c", "a")).toContain("0.0.0.0/0");
    expect(await pingUntil(lab.ns("c"), INTERNET.host)).toBe(true);
    expect((await listed("a")).effective).toEqual({ routes: [LAN.subnet], exit_node: true });
    expect(await listLine("a")).toContain(`routes ${LAN.subnet} (approved)  exit-node (approved)`);
    await replanEmpty();
  }, 120_000);

  it("every host applies the store's one policy: c may reach a only, and its pings to b are dropped by b", async () => {
    const p = policy(
      "narrow.hujson",
      `{
  "autoApprovers": { "routes": { "192.168.0.0/16": ["tag:router"] } },
  "acls": [
    { "action": "accept", "src": ["tag:router"], "dst": ["*:*"] },
    { "action": "accept", "src": ["${hostname("c")}"], "dst": ["${hostname("a")}:*", "autogroup:internet:*"] },
  ],
  "tests": [ { "src": "${hostname("c")}", "proto": "tcp", "accept": ["${hostname("a")}:80"], "deny": ["${hostname("b")}:80"] } ],
}\n`,
    );
    const set = await admin(["policy", "set", "-f", p]);
    expect(set.code, set.stderr).toBe(0);
    expect((await admin(["policy", "get"])).stdout).toContain('"autogroup:internet:*"');
    await round();
    expect(await pingUntil(lab.ns("c"), ip.a!)).toBe(true);
    expect(await pingUntil(lab.ns("c"), ip.b!, 2)).toBe(false);
    expect(await pingUntil(lab.ns("b"), ip.a!)).toBe(true);
    await replanEmpty();
  }, 120_000);

  it("HA: a and b both route the LAN; c uses a (first by name) until a's status lease dies, then b — and stays on b when a is back", async () => {
    // b joins the LAN too: the LAN's one host hangs off a bridge both routers reach.
    const lan = lab.ns("lan");
    await must(["ip", "-n", lan, "link", "add", "br0", "type", "bridge"]);
    await must(["ip", "-n", lan, "link", "set", "br0", "up"]);
    await must(["ip", "-n", lan, "address", "del", `${LAN.host}/24`, "dev", "eth0"]);
    await must(["ip", "-n", lan, "link", "set", "eth0", "master", "br0"]);
    await must(["ip", "-n", lan, "address", "add", `${LAN.host}/24`, "dev", "br0"]);
    await must(["ip", "-n", lab.ns("b"), "link", "add", "lan0", "type", "veth", "peer", "name", "eth1", "netns", lan]);
    await must(["ip", "-n", lab.ns("b"), "address", "add", "192.168.77.3/24", "dev", "lan0"]);
    await must(["ip", "-n", lab.ns("b"), "link", "set", "lan0", "up"]);
    await must(["ip", "-n", lan, "link", "set", "eth1", "master", "br0", "up"]);
    node.b = [`advertise_routes = ["${LAN.subnet}"]`, "accept_routes = true"];
    node.c = ["accept_routes = true"];
    expect((await admin(["policy", "set", "-f", join(lab.sb.dir, "auto.hujson")])).code).toBe(0);
    const daemons = new MeshDaemons(lab);
    const start = (h: HostId) => daemons.start(h, file(h));
    const stop = (h: HostId, sig?: NodeJS.Signals) => daemons.stop(h, sig);
    try {
      for (const h of HOSTS) await start(h);
      await waitFor("c to route the LAN through a", async () => (await allowedOf("c", "a")).includes(LAN.subnet), 20_000);
      // Every daemon converges, b too: it announces the LAN a carries, and reaches it on its own link.
      for (const h of HOSTS) await daemons.converged(h);
      // Every daemon keeps its status lease alive: online in mesh list, with the endpoint it publishes.
      for (const h of HOSTS) expect(await listed(h), `${h} in mesh list`).toMatchObject({ online: true, endpoints: [`${UNDERLAY[h]}:41641`] });
      expect(await allowedOf("c", "b")).toEqual(own("b"));
      expect(await pingUntil(lab.ns("c"), LAN.host)).toBe(true);
      // a dies: its daemon killed, its underlay cut. Its status lease lapses after TTL.
      await stop("a", "SIGKILL");
      await must(["ip", "-n", lab.ns("a"), "link", "set", "eth0", "down"]);
      const t0 = Date.now();
      await waitFor("c to move the LAN to b", async () => (await allowedOf("c", "b")).includes(LAN.subnet), 30_000, 200);
      const moved = Date.now() - t0;
      console.info(`HA failover: the LAN route moved to b ${moved} ms after a died (status TTL ${TTL} s)`);
      expect(moved).toBeGreaterThan((TTL - 1) * 1000); // moved by the lease's end, not before
      expect(await allowedOf("c", "a")).toEqual(own("a")); // a stays a peer: identity, not liveness
      expect(await pingUntil(lab.ns("c"), LAN.host)).toBe(true);
      // a's lease is gone: offline in mesh list, and in c's mesh status (its saved snapshot, no etcd).
      const now = await list();
      const entry = (h: HostId) => (now.nodes as Json[]).find((n) => n.name === hostname(h));
      expect(entry("a")).toMatchObject({ online: false, endpoints: [] });
      expect(entry("b")).toMatchObject({ online: true });
      expect(await listLine("a")).toMatch(/ {2}offline$/);
      const st = (await lab.status("c")).store as Json;
      expect(st).toMatchObject({ mesh: "routes", mesh_id: now.mesh_id, self: hostname("c"), online: [hostname("b")], offline: [hostname("a")] });
      expect(st.revision).toMatch(/^\d+$/);
      expect(BigInt(st.revision)).toBeLessThanOrEqual(BigInt(now.revision));
      expect(st.age_seconds).toBeLessThan(30);
      expect((await lab.bolt("c", ["mesh", "status"])).stdout).toMatch(
        new RegExp(`^store: mesh "routes" revision \\d+, snapshot saved \\d+ s ago; online ${hostname("b")}; offline ${hostname("a")}$`, "m"),
      );
      // a is back: the route stays on b (no flap back to the first by name).
      await must(["ip", "-n", lab.ns("a"), "link", "set", "eth0", "up"]);
      await start("a");
      await sleep((TTL + 1) * 1000);
      expect(await allowedOf("c", "b")).toContain(LAN.subnet);
      expect(await allowedOf("c", "a")).toEqual(own("a"));
      expect(await pingUntil(lab.ns("c"), LAN.host)).toBe(true);
      // Re-planned while every daemon runs: which router is primary follows the status leases,
      // and stopping the daemons ends some of them before others (a plan then may rightly move it).
      for (const h of HOSTS) await daemons.converged(h);
      await replanEmpty();
    } finally {
      await daemons.stopAll();
    }
  }, 150_000);
});
