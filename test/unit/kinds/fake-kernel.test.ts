// The fake kernel itself (test/unit/helpers/fake-kernel.ts): its output has the shape of the real
// tools' (recorded iproute2 6.1, nft 1.0.6 and wg output under fixtures/), `ip -batch` and
// `wg set` fail the way the tools do, faults hit exactly the K-th write op, snapshots ignore
// what the kernel chooses (ifindex, MACs, handles), strict mode refuses what it does not know.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FakeKernel, FakeKernelError, FakeKernelKilled, diffSnapshots, opKey, publicKeyOf } from "../helpers/fake-kernel.js";
import { fixtureJson, fixtureText } from "../helpers/ip-fixtures.js";
import { converge, intentOf, newWorld, writeConfigs } from "../helpers/pipeline.js";
import { parseWgDump } from "../../../reconcilers/wireguard/dump.js";
import { parseTable } from "../../../reconcilers/nft/read.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const json = (s: string): Json => JSON.parse(s);
const run = async (k: FakeKernel, cmd: string, stdin?: string) => k.run(cmd.split(" "), stdin);

describe("fake kernel output has the recorded tools' shape", () => {
  // The topology of fixtures/ip/README.md: bolt's apply, then the hand-made foreign objects.
  const FX = "bolt-t-fx";
  const CONFIG = `
[networks.web]
subnet = "10.77.0.0/24"
mtu = 1400

[networks.db]
bridge = "bolt-dbnet"
subnet = "10.78.0.0/24"
gateway = "10.78.0.254"
ip_range = { start = "10.78.0.10", end = "10.78.0.20" }

[[endpoints]]
name = "a"
network = "web"
ip = "10.77.0.10"

[[endpoints]]
name = "b"
network = "db"

[[endpoints]]
name = "vm1"
network = "web"
tap = true

[sysctl]
"net.ipv4.ip_forward" = 1
`;
  const FOREIGN = [
    "link add br-foreign type bridge",
    "addr add 192.168.99.1/24 dev br-foreign",
    "link set br-foreign up",
    "link add vf0 type veth peer name vf1",
    "link set vf0 up",
    "link set vf1 up",
    "addr add 10.99.0.1/30 dev vf0",
    "route add 172.31.0.0/16 via 192.168.99.254 dev br-foreign",
    "route add 10.123.0.0/24 dev vf0 table 100",
  ];
  const topology = async () => {
    const w = newWorld(FX);
    await converge(w, { intent: intentOf(writeConfigs({ "bolt-network.toml": CONFIG }), { netnsPrefix: `${FX}-` }) });
    for (const c of FOREIGN) expect((await run(w.kernel, `ip -n ${FX} ${c}`)).code, c).toBe(0);
    return w.kernel;
  };
  const linkView = (l: Json) => ({
    ifname: l.ifname,
    flags: l.flags,
    mtu: l.mtu,
    master: l.master,
    operstate: l.operstate,
    link_type: l.link_type,
    ifalias: l.ifalias,
    info_kind: l.linkinfo?.info_kind,
    info_slave_kind: l.linkinfo?.info_slave_kind,
    tun_type: l.linkinfo?.info_data?.type,
    addr_gen: l.inet6_addr_gen_mode,
    peer: l.link ?? (l.link_index !== undefined ? "(index)" : undefined),
    other_ns: l.link_netnsid !== undefined,
  });
  const byName = (a: Json[]) => [...a].sort((x, y) => (x.ifname < y.ifname ? -1 : 1));
  const addrView = (l: Json) => ({
    ifname: l.ifname,
    addr_info: l.addr_info.map((a: Json) => ({ ...a, local: a.family === "inet6" && a.scope === "link" ? "fe80::(eui64)" : a.local })),
  });

  it("ip -j -d link show", async () => {
    const k = await topology();
    const fake = json((await run(k, `ip -n ${FX} -j -d link show`)).stdout);
    expect(byName(fake).map(linkView)).toEqual(byName(fixtureJson<Json[]>("link-show-detailed.json")).map(linkView));
  });

  it("ip -j addr show", async () => {
    const k = await topology();
    const fake = json((await run(k, `ip -n ${FX} -j addr show`)).stdout);
    expect(byName(fake).map(addrView)).toEqual(byName(fixtureJson<Json[]>("addr-show.json")).map(addrView));
  });

  it("ip -j -4 route show table all (kernel routes derived from addresses, in the kernel's order)", async () => {
    const k = await topology();
    expect(json((await run(k, `ip -n ${FX} -j -4 route show table all`)).stdout)).toEqual(fixtureJson("route4-show-table-all.json"));
  });

  it("ip -j netns list, and an endpoint's inside (addr show + route show default in one batch)", async () => {
    const k = await topology();
    const names = json((await run(k, "ip -j netns list")).stdout)
      .map((n: Json) => n.name)
      .sort();
    expect(names).toEqual(
      fixtureJson<Json[]>("netns-list.json")
        .map((n) => n.name)
        .sort(),
    );
    const r = await run(k, `ip -n ${FX}-a -j -batch -`, "addr show\nroute show default\n");
    const [fa, fr] = r.stdout.trim().split("\n").map(json);
    const [ra, rr] = fixtureText("endpoint-a-inside-batch.jsonl").trim().split("\n").map(json);
    expect(byName(fa).map(addrView)).toEqual(byName(ra).map(addrView));
    expect(fr).toEqual(rr);
  });

  it("sysctl KEY… prints `key = value`, multi-value keys tab-separated", async () => {
    const k = await topology();
    expect((await run(k, `ip netns exec ${FX} sysctl net.ipv4.ip_forward net.ipv4.conf.all.forwarding`)).stdout).toBe(fixtureText("sysctl-forwarding.txt"));
    expect((await run(k, `ip netns exec ${FX} sysctl net.ipv4.ip_local_port_range net.ipv4.conf.all.rp_filter`)).stdout).toBe(
      fixtureText("sysctl-port-range.txt"),
    );
    const missing = await run(k, `ip netns exec ${FX} sysctl net.ipv4.nope net.ipv4.ip_forward`);
    expect(missing).toEqual({
      stdout: "net.ipv4.ip_forward = 1\n",
      stderr: "sysctl: cannot stat /proc/sys/net/ipv4/nope: No such file or directory\n",
      code: 255,
    });
  });

  it("nft -j list table: bolt's own table, as nft 1.0.6 lists it (fixtures/nft)", async () => {
    const fixture = (name: string) => fileURLToPath(new URL(`../../../fixtures/nft/${name}`, import.meta.url));
    // every feature of the table, applied by bolt (the recording's config)
    const w = newWorld("bolt-t-x");
    await converge(w, { intent: intentOf([fixture("roundtrip.toml")], { netnsPrefix: "bolt-t-x-" }) });
    const k = w.kernel;
    const fake = json((await run(k, "ip netns exec bolt-t-x nft -j list table inet bolt")).stdout);
    const recorded = json(readFileSync(fixture("roundtrip.nft.json"), "utf8"));
    // what bolt reads back is the same…
    expect(parseTable(fake)).toEqual(parseTable(recorded));
    // …and so is every set, chain and rule comment, item by item (handles aside; set elements in any order)
    const view = (items: Json[]) =>
      items.flatMap((i: Json): Json[] => {
        if (i.set) return [{ set: { ...i.set, handle: undefined, elem: i.set.elem ? [...i.set.elem].map((e: Json) => JSON.stringify(e)).sort() : undefined } }];
        if (i.chain) return [{ chain: { ...i.chain, handle: undefined } }];
        if (i.rule) return [{ rule: { chain: i.rule.chain, comment: i.rule.comment, counter: i.rule.expr.some((e: Json) => "counter" in e) } }];
        return [];
      });
    expect(view(fake.nftables)).toEqual(view(recorded.nftables));
  });

  it("nft -s list table gives text that `nft -f -` turns back into the same table", async () => {
    const k = new FakeKernel();
    const script =
      'table inet bolt\ndelete table inet bolt\ntable inet bolt {\n\tset s {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tcomment "bolt:00000000"\n\t\telements = { 10.0.0.0/24,\n\t\t\t10.1.0.0-10.1.0.9 }\n\t}\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr @s counter drop comment "bolt:x|00000000"\n\t}\n}\n';
    expect((await k.run(["nft", "-f", "-"], script)).code).toBe(0);
    const before = k.snapshot();
    const text = (await run(k, "nft -s list table inet bolt")).stdout;
    expect(text).toContain("type filter hook input priority filter; policy accept;");
    expect(text).toContain("elements = { 10.0.0.0/24, 10.1.0.0-10.1.0.9 }");
    expect((await run(k, "nft list table inet bolt")).stdout).toContain("counter packets 0 bytes 0 drop");
    expect((await k.run(["nft", "-f", "-"], `table inet bolt\ndelete table inet bolt\n${text}`)).code).toBe(0);
    expect(k.snapshot()).toEqual(before);
    // a missing table reads as nft says it
    expect((await k.run(["nft", "-f", "-"], "table inet bolt\ndelete table inet bolt\n")).code).toBe(0);
    const gone = await run(k, "nft -j list table inet bolt");
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/No such file or directory/);
    // a reference to a set that does not exist refuses the whole transaction
    const bad = await k.run(["nft", "-c", "-f", "-"], "table inet bolt {\n\tchain c {\n\t\tip saddr @nope drop\n\t}\n}\n");
    expect(bad.code).toBe(1);
  });

  it("wg show IF dump, in the format parseWgDump reads (fixtures/wg)", async () => {
    const recorded = parseWgDump(readFileSync(fileURLToPath(new URL("../../../fixtures/wg/wg-show-dump.txt", import.meta.url)), "utf8"))!;
    const k = new FakeKernel();
    k.writeFile("/etc/wg/wg0.key", "cHJpdmF0ZS1rZXktZmFrZS1mb3ItdGhlLXRlc3RzISE=\n").writeFile(
      "/etc/wg/p1.psk",
      "cHJlc2hhcmVkLWZha2UtZm9yLXRoZS10ZXN0cy0xMjM=\n",
    );
    expect((await run(k, "wireguard-go wg0")).code).toBe(0);
    const [p1, p2, p3] = recorded.peers;
    const set = `wg set wg0 private-key /etc/wg/wg0.key listen-port 51820 fwmark 0xb000000 peer ${p1!.publicKey} preshared-key /etc/wg/p1.psk endpoint ${p1!.endpoint} allowed-ips ${p1!.allowedIps.join(",")} persistent-keepalive 25 peer ${p2!.publicKey} peer ${p3!.publicKey} endpoint ${p3!.endpoint} allowed-ips 0.0.0.0/0`;
    expect(await run(k, set)).toEqual({ stdout: "", stderr: "", code: 0 });
    const fake = parseWgDump((await run(k, "timeout 5 wg show wg0 dump")).stdout)!;
    // the recorded dump's keys are made up: its public key is no X25519 of its private key
    const counters = (d: typeof recorded) => ({ ...d, publicKey: undefined, peers: d.peers.map((p) => ({ ...p, latestHandshake: 0, rx: 0, tx: 0 })) });
    expect(counters(fake)).toEqual(counters(recorded));
    expect(fake.publicKey).toBe(publicKeyOf("cHJpdmF0ZS1rZXktZmFrZS1mb3ItdGhlLXRlc3RzISE="));
    expect(k.writes.map((w) => `${w.tool} ${w.args.slice(0, 3).join(" ")}`)).toEqual([
      "exec wireguard-go wg0",
      "exec wg set wg0",
      `wg wg0 peer ${p1!.publicKey}`,
      `wg wg0 peer ${p2!.publicKey}`,
      `wg wg0 peer ${p3!.publicKey}`,
    ]);
    // the control socket is machine-wide: another namespace sees it, and cannot start the same name
    expect((await run(k, "test -S /var/run/wireguard/wg0.sock")).code).toBe(0);
    k.addNetns("other");
    expect((await run(k, "ip netns exec other timeout 2 wg show wg0 listen-port")).stdout).toBe("51820\n");
    expect((await run(k, "ip netns exec other wireguard-go wg0")).stderr).toMatch(/address already in use/);
    // deleting the tun device ends wireguard-go
    expect((await run(k, "ip link del dev wg0")).code).toBe(0);
    expect((await run(k, "test -S /var/run/wireguard/wg0.sock")).code).toBe(1);
    expect((await run(k, "wg show wg0 dump")).code).toBe(1);
  });
});

describe("fake kernel: tool semantics", () => {
  it("ip -batch: lines before the failing one take effect, it is reported as `Command failed -:N`; -force goes on", async () => {
    const k = new FakeKernel();
    const r = await k.run(["ip", "-batch", "-"], "link add name b0 type bridge\nlink set dev nope up\nlink add name b1 type bridge\n");
    expect(r).toEqual({ stdout: "", stderr: 'Cannot find device "nope"\nCommand failed -:2\n', code: 1 });
    expect(k.ns(null).links.map((l) => l.name)).toEqual(["lo", "b0"]);
    const f = await k.run(["ip", "-force", "-batch", "-"], "link del dev nope\nlink del dev b0\n");
    expect(f.code).toBe(1);
    expect(k.ns(null).links.map((l) => l.name)).toEqual(["lo"]);
  });

  it("ip exits 255 on an argument it cannot resolve: the batch stops there, even with -force, without `Command failed`", async () => {
    const k = new FakeKernel();
    const r = await k.run(["ip", "-force", "-batch", "-"], "link add name b0 type bridge\nlink set dev b0 master nope\nlink add name b1 type bridge\n");
    expect(r).toEqual({ stdout: "", stderr: 'Error: argument "nope" is wrong: Device does not exist\n', code: 255 });
    expect(k.ns(null).links.map((l) => l.name)).toEqual(["lo", "b0"]);
    expect(k.writes.map((w) => [w.ok, !!w.fatal])).toEqual([
      [true, false],
      [false, true],
    ]);
  });

  it("a fault fails exactly the K-th write op, like the tool: ip lines, wg clauses, exec'd commands", async () => {
    const k = new FakeKernel().failAt(3);
    const r = await k.run(
      ["ip", "-batch", "-"],
      "link add name b0 type bridge\nlink add name b1 type bridge\nlink add name b2 type bridge\nlink add name b3 type bridge\n",
    );
    expect(r.stderr).toBe("RTNETLINK answers: Operation not permitted\nCommand failed -:3\n");
    expect(k.ns(null).links.map((l) => l.name)).toEqual(["lo", "b0", "b1"]);
    expect(k.forwardWrites().map((w) => [w.index, w.ok, w.injected])).toEqual([
      [1, true, undefined],
      [2, true, undefined],
      [3, false, "fail"],
    ]);

    // wg set: the clauses before the failing one are applied (the interface part is one clause)
    const w = new FakeKernel();
    w.writeFile("/k", "cHJpdmF0ZS1rZXktZmFrZS1mb3ItdGhlLXRlc3RzISE=");
    await run(w, "wireguard-go wg0");
    w.failAt(4);
    const pubs = [
      "zjloEVd2BHHisXcpJjopJ5Gd9SLPk9g5LgkuF8TsQWU=",
      "R4lVQaHCk4mbSV1jFgX6r7IiqP2EQ4fB46Ctowo60VY=",
      "3/6PSlfp4viSRwZPYzKqJ/J/g8+rEoRTRIbBFYJhggw=",
    ];
    const ws = await run(w, `wg set wg0 listen-port 1 peer ${pubs[0]} allowed-ips 10.0.0.1/32 peer ${pubs[1]} peer ${pubs[2]}`);
    expect(ws.code).toBe(1);
    expect(w.link(null, "wg0")!.wg!.peers.map((p) => p.publicKey)).toEqual([pubs[0]]);
    expect(w.link(null, "wg0")!.wg!.listenPort).toBe(1);

    // nft: the transaction is refused whole
    const n = new FakeKernel().failAt(1);
    expect((await n.run(["nft", "-f", "-"], "table inet bolt {\n}\n")).code).toBe(1);
    expect(n.ns(null).nft).toEqual([]);

    // "ignore": the tool says yes and nothing happens
    const g = new FakeKernel().setFault({ at: 1, effect: "ignore" });
    expect((await run(g, "sysctl -q -w net.ipv4.ip_forward=1")).code).toBe(0);
    expect(g.ns(null).sysctl["net.ipv4.ip_forward"]).toBe("0");
  });

  it("a kill: run() throws at the K-th write op, which (and what follows in that process) never happens", async () => {
    const k = new FakeKernel().setFault({ at: 2, effect: "kill" });
    await expect(k.run(["ip", "-batch", "-"], "link add name b0 type bridge\nlink add name b1 type bridge\nlink add name b2 type bridge\n")).rejects.toThrow(
      FakeKernelKilled,
    );
    expect(k.ns(null).links.map((l) => l.name)).toEqual(["lo", "b0"]);
  });

  it("rollback writes are recorded apart and never faulted", async () => {
    const k = new FakeKernel().setFault({ when: () => true });
    await run(k, "ip link add name b0 type bridge");
    k.markRollback();
    await run(k, "ip link add name b1 type bridge");
    expect(k.rollbackWrites().map(opKey)).toEqual(["ip|-|link add name b1 type bridge"]);
    expect(k.ns(null).links.map((l) => l.name)).toEqual(["lo", "b1"]);
  });

  it("veth pairs across namespaces: the peer goes with its link, with its namespace, and when moved", async () => {
    const k = new FakeKernel().addNetns("a").addNetns("b");
    await run(k, "ip -n a link add name v0 mtu 1400 type veth peer name eth0 mtu 1400 address 02:00:00:00:00:01 netns b");
    expect(k.link("b", "eth0")).toMatchObject({ kind: "veth", mac: "02:00:00:00:00:01", macSet: true, peer: { ns: "a", name: "v0" } });
    await run(k, "ip netns del b");
    expect(k.link("a", "v0")).toBeUndefined();
    await run(k, "ip -n a link add name v1 type veth peer name p1");
    await run(k, "ip -n a link set dev p1 netns b");
    expect(k.hasNetns("b")).toBe(false); // b was deleted: the move fails
    k.addNetns("b");
    expect((await run(k, "ip -n a link set dev p1 netns b")).code).toBe(0);
    expect(k.link("a", "v1")!.peer).toEqual({ ns: "b", name: "p1" });
    await run(k, "ip -n b link del dev p1");
    expect(k.link("a", "v1")).toBeUndefined();
  });

  it("IPv4 routes: gateway must be reachable, device up; flushed on link down, link delete and last address delete", async () => {
    const k = new FakeKernel();
    await run(k, "ip link add name d0 type dummy");
    expect((await run(k, "ip route add 10.9.0.0/16 dev d0")).stderr).toBe("Error: Nexthop device is not up.\n");
    await run(k, "ip link set dev d0 up");
    expect((await run(k, "ip route add default via 10.0.0.1 dev d0 proto 176")).stderr).toBe("Error: Nexthop has invalid gateway.\n");
    await run(k, "ip address add 10.0.0.2/24 dev d0");
    expect((await run(k, "ip route add default via 10.0.0.1 dev d0 proto 176")).code).toBe(0);
    expect((await run(k, "ip route add default via 10.0.0.1 dev d0 proto 176")).stderr).toBe("RTNETLINK answers: File exists\n");
    await run(k, "ip link set dev d0 down");
    expect(k.ns(null).routes).toEqual([]);
    await run(k, "ip link set dev d0 up");
    await run(k, "ip route replace default via 10.0.0.1 dev d0 proto 176");
    await run(k, "ip address add 10.0.0.3/24 dev d0");
    await run(k, "ip address del 10.0.0.2/24 dev d0"); // promote_secondaries: 10.0.0.3 stays, and so does the route
    expect(k.link(null, "d0")!.addrs).toEqual(["10.0.0.3/24"]);
    expect(k.ns(null).routes).toHaveLength(1);
    await run(k, "ip address del 10.0.0.3/24 dev d0");
    expect(k.ns(null).routes).toEqual([]);
    expect((await run(k, "ip route del default proto 176")).stderr).toBe("RTNETLINK answers: No such process\n");
  });

  it("policy rules: add, show as iproute2 prints them, delete the first match", async () => {
    const k = new FakeKernel();
    await run(k, "ip rule add priority 20001 not fwmark 0xb000000/0xf000000 table 20100 protocol 176");
    await run(k, "ip rule add priority 20000 table main suppress_prefixlength 0 protocol 176");
    expect((await run(k, "ip rule add priority 20000 table main suppress_prefixlength 0 protocol 176")).stderr).toBe("RTNETLINK answers: File exists\n");
    expect(json((await run(k, "ip -j rule show")).stdout)).toEqual([
      { priority: 0, src: "all", table: "local" },
      { priority: 20000, src: "all", table: "main", suppress_prefixlen: 0, protocol: "176" },
      { priority: 20001, not: null, src: "all", fwmark: "0xb000000", fwmask: "0xf000000", table: "20100", protocol: "176" },
      { priority: 32766, src: "all", table: "main" },
      { priority: 32767, src: "all", table: "default" },
    ]);
    await run(k, "ip rule del priority 20001 protocol 176");
    expect((await run(k, "ip rule del priority 20001 protocol 176")).stderr).toBe("RTNETLINK answers: No such file or directory\n");
  });

  it("iptables DOCKER-USER: -I at the top, -D the first match, iptables-save with quoted comments", async () => {
    const k = new FakeKernel().dockerHost(null);
    const rule = (op: string, dir: string) => ["iptables", op, "DOCKER-USER", dir, "br0", "-m", "comment", "--comment", "bolt:br0", "-j", "ACCEPT"];
    await k.run(rule("-I", "-i"));
    await k.run(rule("-I", "-o"));
    const save = (await run(k, "iptables-save -t filter")).stdout;
    expect(save).toContain(":DOCKER-USER - [0:0]\n");
    expect(save).toContain(
      '-A DOCKER-USER -o br0 -m comment --comment "bolt:br0" -j ACCEPT\n-A DOCKER-USER -i br0 -m comment --comment "bolt:br0" -j ACCEPT\n-A DOCKER-USER -j RETURN\n',
    );
    await k.run(rule("-D", "-i"));
    expect((await k.run(rule("-D", "-i"))).stderr).toBe("iptables: Bad rule (does a matching rule exist in that chain?).\n");
    expect(new FakeKernel().ns(null).iptables).toBeNull();
    expect((await run(new FakeKernel(), "iptables-save -t filter")).stdout).toBe("");
  });

  it("files: cat, tee, rm -f, mkdir -p, rmdir, and /etc/netns/NS bind-mounted under ip netns exec", async () => {
    const k = new FakeKernel().addNetns("n");
    expect((await run(k, "cat /etc/netns/n/hosts")).code).toBe(1);
    expect((await k.run(["tee", "/etc/netns/n/hosts"], "x\n")).stderr).toMatch(/No such file or directory/);
    await run(k, "mkdir -p /etc/netns/n");
    expect(await k.run(["tee", "/etc/netns/n/hosts"], "x\n")).toEqual({ stdout: "x\n", stderr: "", code: 0 });
    expect((await run(k, "ip netns exec n cat /etc/hosts")).stdout).toBe("x\n");
    expect((await run(k, "cat /etc/hosts")).stdout).toContain("localhost");
    expect((await run(k, "rmdir --ignore-fail-on-non-empty /etc/netns/n")).code).toBe(0);
    expect(k.state.dirs).toContain("/etc/netns/n");
    await run(k, "rm -f /etc/netns/n/hosts");
    await run(k, "rm -f /etc/netns/n/hosts");
    await run(k, "rmdir --ignore-fail-on-non-empty /etc/netns/n");
    expect(k.state.dirs).not.toContain("/etc/netns/n");
  });

  it("snapshots ignore what the kernel picks (ifindex, MACs, nft handles) and keep what was set", async () => {
    const k = new FakeKernel();
    await run(k, "ip link add name b0 mtu 1400 type bridge");
    const before = k.snapshot();
    await run(k, "ip link del dev b0");
    await run(k, "ip link add name b0 mtu 1400 type bridge");
    expect(k.link(null, "b0")!.ifindex).not.toBe(2);
    expect(k.snapshot()).toEqual(before);
    await run(k, "ip link set dev b0 address 02:00:00:00:00:09");
    expect(diffSnapshots(before, k.snapshot())).toEqual(['ns.(host).links.b0.mac: (none) → "02:00:00:00:00:09"']);
    const c = k.clone();
    await run(c, "ip link del dev b0");
    expect(k.link(null, "b0")).toBeDefined(); // a clone is a deep copy
  });

  it("strict mode throws on what it does not know; permissive answers like a host without it", async () => {
    const strict = new FakeKernel();
    await expect(run(strict, "ethtool -k lo")).rejects.toThrow(FakeKernelError);
    await expect(run(strict, "ip link set dev lo promisc on")).rejects.toThrow(/unsupported: ip link set … promisc/);
    const loose = new FakeKernel({ mode: "permissive" });
    expect(await run(loose, "ethtool -k lo")).toMatchObject({ code: 127 });
    expect((await run(loose, "ip -batch -", "link add name b0 type bridge\nlink set dev b0 promisc on\n")).stderr).toContain("Command failed -:2");
    expect(loose.unknown).toEqual(["command ethtool -k lo", "ip link set … promisc"]);
  });

  it("scripted expectations: canned answers, order, assertDone", async () => {
    const k = new FakeKernel().expect([{ argv: "ip -j netns list", respond: { stdout: '[{"name":"x"}]\n', stderr: "", code: 0 } }, { argv: /^sysctl / }], {
      ordered: true,
    });
    expect((await run(k, "ip -j netns list")).stdout).toBe('[{"name":"x"}]\n');
    expect(() => k.assertDone()).toThrow(/never came: \/\^sysctl \//);
    await expect(run(k, "ip -j link show")).rejects.toThrow(/out of order/);
    expect((await run(k, "sysctl net.ipv4.ip_forward")).stdout).toBe("net.ipv4.ip_forward = 0\n"); // matched, then simulated
    k.assertDone();
  });
});
