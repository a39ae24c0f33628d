// Parsers on recorded iproute2 6.1 output (fixtures/ip/iproute2-6.1, recorded from a real
// bolt apply plus hand-made foreign objects): ownership comes from the kernel alone
// (IFLA_IFALIAS), so everything without bolt's alias must land in `foreign`.
import { describe, expect, it } from "vitest";
import { parseNetworks } from "../../reconcilers/network/read.js";
import { networkReconciler } from "../../reconcilers/network/index.js";
import { parseEndpoints, readInside } from "../../reconcilers/endpoint/read.js";
import { endpointReconciler } from "../../reconcilers/endpoint/index.js";
import { normalizeValue, parseSysctl, sysctlReconciler } from "../../reconcilers/sysctl/index.js";
import { ALIAS_MAGIC, decodeAlias, encodeAlias } from "../../src/core/ownership.js";
import { LiveReader } from "../../src/core/live-reader.js";
import type { IpAddr, IpLink } from "../../src/core/live-reader.js";
import { CommandError } from "../../src/core/diagnostics.js";
import { ScriptedRunner, ok } from "../../src/exec/scripted-runner.js";
import type { PlanContext, Resource } from "../../src/core/resource.js";
import { FX_NS, fixtureJson, fixtureText, serve } from "./helpers/ip-fixtures.js";
import { at, intent, resource } from "./helpers/builders.js";

const links = fixtureJson<IpLink[]>("link-show-detailed.json");
const addrs = fixtureJson<IpAddr[]>("addr-show.json");
const clone = <T>(v: T): T => structuredClone(v);

describe("parseNetworks (ip -j -d link show + ip -j addr show)", () => {
  const { resources, foreign } = parseNetworks(links, addrs);

  it("returns exactly the bridges carrying bolt1,net=NAME, with their kernel state", () => {
    expect(resources).toEqual([
      {
        kind: "network",
        name: "web",
        id: "network:web",
        keys: ["link:bolt-web"],
        spec: { bridge: "bolt-web", address: "10.77.0.1/24", broadcast: "10.77.0.255", mtu: "1400", state: "up" },
        data: { ports: ["bt-vm1", "bv-a"] },
        deps: [],
        owned: true,
      },
      {
        kind: "network",
        name: "db",
        id: "network:db",
        keys: ["link:bolt-dbnet"],
        spec: { bridge: "bolt-dbnet", address: "10.78.0.254/24", broadcast: "10.78.0.255", mtu: "1500", state: "up" },
        data: { ports: ["bv-b"] },
        deps: [],
        owned: true,
      },
    ]);
  });

  it("remembers each bridge's ports, so undoing its deletion attaches them again", () => {
    const web = resources.find((r) => r.name === "web")!;
    const [del] = networkReconciler.render({ id: web.id, kind: "network", name: "web", action: "delete", before: web, changed: [], forcedBy: [] }, {
      target: FX_NS,
    } as PlanContext);
    expect(del!.undo.map((u) => u.args.join(" ")).slice(-2)).toEqual(["link set dev bt-vm1 master bolt-web", "link set dev bv-a master bolt-web"]);
  });

  it("reports every link without a bolt alias as foreign, keyed link:NAME", () => {
    expect([...foreign.keys()].sort()).toEqual(["link:br-foreign", "link:lo", "link:vf0", "link:vf1"]);
    // A foreign bridge with an address is still foreign: it must never become a network.
    expect(foreign.get("link:br-foreign")).toBe("bridge");
    expect(foreign.get("link:vf0")).toBe("veth");
    expect(foreign.get("link:lo")).toBe("link");
  });

  it("does not count bolt's endpoint links as networks or as foreign", () => {
    for (const name of ["bv-a", "bv-b", "bt-vm1"]) {
      expect(foreign.has(`link:${name}`)).toBe(false);
      expect(resources.some((r) => r.keys.includes(`link:${name}`))).toBe(false);
    }
  });

  it("IPv4 then IPv6 addresses, each sorted; of link-local ones only bolt's fe80::1/64; a downed bridge reads as down", () => {
    const a = clone(addrs);
    const web = a.find((x) => x.ifname === "bolt-web")!;
    web.addr_info.push(
      { family: "inet6", local: "fe80::1", prefixlen: 64, scope: "link" },
      { family: "inet6", local: "fe80::a8bb:ccff:fe00:1", prefixlen: 64, scope: "link" },
      { family: "inet6", local: "fd77::1", prefixlen: 64, scope: "global" },
      { family: "inet", local: "10.77.0.0", prefixlen: 25 },
    );
    const l = clone(links);
    l.find((x) => x.ifname === "bolt-web")!.flags = ["BROADCAST", "MULTICAST"];
    const net = parseNetworks(l, a).resources.find((r) => r.name === "web")!;
    expect(net.spec.address).toBe("10.77.0.0/25, 10.77.0.1/24, fd77::1/64, fe80::1/64");
    expect(net.spec.state).toBe("down");
  });

  it("a bridge with no address entry reads as an empty address", () => {
    const net = parseNetworks(links, []).resources.find((r) => r.name === "db")!;
    expect(net.spec.address).toBe("");
  });
});

describe("parseEndpoints (host side of veths and taps)", () => {
  const eps = parseEndpoints(links);

  it("finds the three endpoints from their aliases, nothing else", () => {
    expect(eps.map((r) => r.id)).toEqual(["endpoint:a", "endpoint:b", "endpoint:vm1"]);
  });

  it("a veth endpoint: recorded inside state, bridge from master, namespace created by bolt", () => {
    const a = eps.find((r) => r.name === "a")!;
    expect(a.spec).toEqual({
      type: "veth",
      host_if: "bv-a",
      network: "web",
      bridge: "bolt-web",
      netns: "bolt-t-fx-a",
      ip: "10.77.0.10/24",
      broadcast: "10.77.0.255",
      gateway: "10.77.0.1",
      mtu: "1400",
      state: "up",
    });
    expect(a).toMatchObject({ keys: ["link:bv-a"], deps: ["network:web"], owned: true, data: { nsCreated: true } });
    expect(eps.find((r) => r.name === "b")!.spec).toMatchObject({
      bridge: "bolt-dbnet",
      netns: "bolt-t-fx-b",
      ip: "10.78.0.10/24",
      gateway: "10.78.0.254",
      mtu: "1500",
    });
  });

  it("a tap (info_kind tun) has no namespace or gateway; NO-CARRIER does not make it down", () => {
    const vm = eps.find((r) => r.name === "vm1")!;
    expect(vm.spec).toEqual({ type: "tap", host_if: "bt-vm1", network: "web", bridge: "bolt-web", ip: "10.77.0.2/24", mtu: "1400", state: "up" });
    expect(vm.data).toEqual({ nsCreated: false });
  });
});

describe("reading inside an endpoint namespace", () => {
  const batchArgv = "ip -n bolt-t-fx-a -j -batch -";

  it("replaces the alias' recorded ip and gateway with what eth0 really has", async () => {
    const runner = new ScriptedRunner([serve(batchArgv, "endpoint-a-inside-batch.jsonl")]);
    const r = parseEndpoints(links).find((x) => x.name === "a")!;
    r.spec.ip = "10.77.0.99/24";
    r.spec.gateway = "10.77.0.254";
    await readInside(new LiveReader(runner, FX_NS), r, true);
    expect(r.spec.ip).toBe("10.77.0.10/24"); // lo's 127.0.0.1 is not eth0's
    expect(r.spec.gateway).toBe("10.77.0.1");
    expect(runner.calls).toHaveLength(1);
    expect(runner.calls[0]!.stdin).toBe("addr show\nroute show table all default\n");
  });

  it("the single-command recordings agree with the batch recording", () => {
    const [addr, route] = fixtureText("endpoint-a-inside-batch.jsonl")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ifname?: string; addr_info?: unknown; dst?: string }[]);
    const single = fixtureJson<IpAddr[]>("endpoint-a-addr-show.json");
    expect(addr!.find((x) => x.ifname === "eth0")!.addr_info).toEqual(single.find((x) => x.ifname === "eth0")!.addr_info);
    expect(route).toEqual(fixtureJson("endpoint-a-route4-default.json"));
  });

  it("a missing namespace means nothing inside, without entering it", async () => {
    const runner = new ScriptedRunner([]);
    const r = parseEndpoints(links).find((x) => x.name === "a")!;
    await readInside(new LiveReader(runner, FX_NS), r, false);
    expect([r.spec.ip, r.spec.gateway]).toEqual(["", ""]);
    expect(runner.calls).toHaveLength(0);
  });

  it("a deep read enters only the namespaces asked for (netns list from the host)", async () => {
    const runner = new ScriptedRunner([
      serve(`ip -n ${FX_NS} -j -d link show`, "link-show-detailed.json"),
      serve("ip -j netns list", "netns-list.json"),
      serve(batchArgv, "endpoint-a-inside-batch.jsonl"),
    ]);
    const res = await endpointReconciler.read(new LiveReader(runner, FX_NS), { deep: new Set(["endpoint:a"]), intent: intent(), originals: new Map() });
    expect(res.resources.map((r) => r.id)).toEqual(["endpoint:a", "endpoint:b", "endpoint:vm1"]);
    expect(runner.calls.map((c) => c.argv.join(" "))).not.toContain("ip -n bolt-t-fx-b -j -batch -");
    expect(res.resources.find((r) => r.name === "a")!.spec.ip).toBe("10.77.0.10/24");
  });
});

describe("network conflicts with routes already in the namespace", () => {
  const runner = () =>
    new ScriptedRunner([
      serve(`ip -n ${FX_NS} -j -4 route show table all`, "route4-show-table-all.json"),
      serve(`ip -n ${FX_NS} -j -d link show`, "link-show-detailed.json"),
    ]);
  const desired = (name: string, subnet: string): Resource => resource("network", name, {}, { data: { subnet }, source: at(3, 10) });

  it("a subnet overlapping a foreign route is an error at the subnet; bolt's own and free subnets are fine", async () => {
    const out = await networkReconciler.conflicts!(
      [desired("x", "172.31.5.0/24"), desired("y", "10.77.0.0/24"), desired("z", "10.200.0.0/24"), desired("t", "10.123.0.0/16")],
      new LiveReader(runner(), FX_NS),
    );
    expect(out.map((d) => d.message)).toEqual([
      'network "x": subnet 172.31.5.0/24 overlaps the existing route 172.31.0.0/16 dev br-foreign',
      'network "t": subnet 10.123.0.0/16 overlaps the existing route 10.123.0.0/24 dev vf0 table 100',
    ]);
    expect(out[0]!.source).toEqual(at(3, 10));
  });
});

describe("sysctl text output", () => {
  it("parses `sysctl KEY…` lines into key → value", () => {
    expect(parseSysctl(fixtureText("sysctl-forwarding.txt"))).toEqual(
      new Map([
        ["net.ipv4.ip_forward", "1"],
        ["net.ipv4.conf.all.forwarding", "1"],
      ]),
    );
  });

  it("normalizes tab-separated multi-value keys to single spaces", () => {
    expect(fixtureText("sysctl-port-range.txt")).toContain("32768\t60999");
    expect(parseSysctl(fixtureText("sysctl-port-range.txt")).get("net.ipv4.ip_local_port_range")).toBe("32768 60999");
    expect(normalizeValue("  4096\t87380 \t 6291456\n")).toBe("4096 87380 6291456");
    expect(normalizeValue("1")).toBe("1");
  });

  it("ignores error lines sysctl prints for a missing key", () => {
    const m = parseSysctl("net.ipv4.ip_forward = 0\nsysctl: cannot stat /proc/sys/net/ipv4/nope: No such file or directory\n");
    expect([...m.keys()]).toEqual(["net.ipv4.ip_forward"]);
  });

  it("reads all keys in one process inside the target; owned only with a recorded original; missing key → error at its line", async () => {
    const runner = new ScriptedRunner([
      (c) =>
        c.argv.join(" ") === `ip netns exec ${FX_NS} sysctl net.ipv4.conf.all.forwarding net.ipv4.ip_forward net.ipv4.nope`
          ? { stdout: fixtureText("sysctl-forwarding.txt"), stderr: "sysctl: cannot stat /proc/sys/net/ipv4/nope: No such file or directory\n", code: 255 }
          : undefined,
    ]);
    const sysctls = ["net.ipv4.ip_forward", "net.ipv4.nope"].map((key, i) => ({ key, value: "1", source: at(2 + i) }));
    const res = await sysctlReconciler.read(new LiveReader(runner, FX_NS), {
      deep: false,
      intent: intent({ sysctls }),
      originals: new Map([["net.ipv4.conf.all.forwarding", "0"]]),
    });
    expect(runner.calls).toHaveLength(1);
    expect(res.resources).toEqual([
      {
        kind: "sysctl",
        name: "net.ipv4.conf.all.forwarding",
        id: "sysctl:net.ipv4.conf.all.forwarding",
        keys: [],
        spec: { value: "1" },
        restores: { value: "0" },
        deps: [],
        owned: true,
      },
      { kind: "sysctl", name: "net.ipv4.ip_forward", id: "sysctl:net.ipv4.ip_forward", keys: [], spec: { value: "1" }, deps: [], owned: false },
    ]);
    expect(res.diagnostics).toEqual([{ severity: "error", message: 'sysctl "net.ipv4.nope" does not exist in this kernel (or namespace)', source: at(3) }]);
  });
});

describe("ownership alias", () => {
  it("decodes every alias bolt wrote in the recording", () => {
    const tags = links.map((l) => decodeAlias(l.ifalias)).filter(Boolean);
    expect(tags).toEqual([
      { net: "web" },
      { net: "db" },
      { ep: "a", net: "web", ns: "bolt-t-fx-a", nsc: "1", ip: "10.77.0.10/24", brd: "10.77.0.255", gw: "10.77.0.1" },
      { ep: "b", net: "db", ns: "bolt-t-fx-b", nsc: "1", ip: "10.78.0.10/24", brd: "10.78.0.255", gw: "10.78.0.254" },
      { ep: "vm1", net: "web", ip: "10.77.0.2/24" },
    ]);
  });

  it("round-trips, skipping empty and undefined values, keeping order", () => {
    const s = encodeAlias({ ep: "a", net: "web", ns: undefined, nsc: "", ip: "10.0.0.2/24" });
    expect(s).toBe("bolt1,ep=a,net=web,ip=10.0.0.2/24");
    expect(decodeAlias(s)).toEqual({ ep: "a", net: "web", ip: "10.0.0.2/24" });
    expect(encodeAlias({})).toBe(ALIAS_MAGIC);
  });

  it("is not bolt's unless it starts with exactly `bolt1,`", () => {
    for (const a of [undefined, "", "bolt1", "bolt10,net=x", "Bolt1,net=x", "docker0 bridge", " bolt1,net=x"]) expect(decodeAlias(a)).toBeUndefined();
    expect(decodeAlias("bolt1,net=x,junk,=y")).toEqual({ net: "x" });
  });

  it("refuses values that would corrupt the format, and aliases over IFALIASZ-1 (255) bytes", () => {
    for (const v of ["a,b", "a=b", "a b", "a\tb", 'a"b', "a'b", "a\\b"]) expect(() => encodeAlias({ net: v })).toThrow(/reserved character/);
    expect(encodeAlias({ k: "x".repeat(255 - "bolt1,k=".length) })).toHaveLength(255);
    expect(() => encodeAlias({ k: "x".repeat(256 - "bolt1,k=".length) })).toThrow(/over 255/);
  });
});

describe("LiveReader", () => {
  const addrArgv = ["ip", "-n", FX_NS, "-j", "addr", "show"];

  it("memoizes: the same read twice (even concurrently) runs one process and shares the result", async () => {
    const runner = new ScriptedRunner([serve(addrArgv.join(" "), "addr-show.json")]);
    const io = new LiveReader(runner, FX_NS);
    const [a, b] = await Promise.all([io.ipJson(["addr", "show"]), io.ipJson(["addr", "show"])]);
    const c = await io.ipJson(["addr", "show"]);
    expect(runner.calls).toHaveLength(1);
    expect(runner.calls[0]!.argv).toEqual(addrArgv);
    expect(a).toBe(b);
    expect(c).toBe(a);
    expect((a as IpAddr[]).map((x) => x.ifname)).toContain("br-foreign");
  });

  it("keeps different namespaces and commands apart; null means bolt's own namespace", async () => {
    const runner = new ScriptedRunner([(c) => ok(c.argv.includes("sysctl") ? "x = 1\n" : "[]")]);
    const io = new LiveReader(runner, FX_NS);
    await Promise.all([
      io.ipJson(["addr", "show"]),
      io.ipJson(["addr", "show"], null),
      io.ipJson(["addr", "show"], "bolt-t-fx-a"),
      io.exec(["sysctl", "x"]),
      io.exec(["sysctl", "x"]),
    ]);
    expect(runner.calls.map((c) => c.argv.join(" ")).sort()).toEqual([
      "ip -j addr show",
      "ip -n bolt-t-fx -j addr show",
      "ip -n bolt-t-fx-a -j addr show",
      "ip netns exec bolt-t-fx sysctl x",
    ]);
  });

  it("an empty dump parses as an empty list", async () => {
    const io = new LiveReader(new ScriptedRunner([() => ok("")]), FX_NS);
    expect(await io.ipJson(["-4", "route", "show", "default"])).toEqual([]);
  });

  it('retries a dump the kernel interrupted ("Dump was interrupted and may be inconsistent")', async () => {
    for (const code of [0, 2]) {
      let n = 0;
      const runner = new ScriptedRunner([
        () => (n++ < 2 ? { stdout: "[]", stderr: "Dump was interrupted and may be inconsistent.\n", code } : ok(fixtureText("addr-show.json"))),
      ]);
      const got = await new LiveReader(runner, FX_NS).ipJson<IpAddr[]>(["addr", "show"]);
      expect(runner.calls).toHaveLength(3);
      expect(got).toHaveLength(addrs.length);
    }
  });

  it("gives up after 4 interrupted dumps with a CommandError", async () => {
    const runner = new ScriptedRunner([() => ({ stdout: "", stderr: "Dump was interrupted and may be inconsistent.\n", code: 2 })]);
    await expect(new LiveReader(runner, FX_NS).ipJson(["link", "show"])).rejects.toBeInstanceOf(CommandError);
    expect(runner.calls).toHaveLength(4);
  });

  it("a non-zero exit is a CommandError naming the command and stderr, not retried", async () => {
    const runner = new ScriptedRunner([() => ({ stdout: "", stderr: 'Cannot open network namespace "bolt-t-fx": No such file or directory\n', code: 1 })]);
    const err = await new LiveReader(runner, FX_NS).ipJson(["addr", "show"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err).toMatchObject({ argv: addrArgv, code: 1 });
    expect((err as Error).message).toBe('command failed: ip -n bolt-t-fx -j addr show: Cannot open network namespace "bolt-t-fx": No such file or directory');
    expect(runner.calls).toHaveLength(1);
  });
});
