// The pure middle of the pipeline: dependency order, desired-vs-live diff, ops → waves of
// batches, and IPAM. Same input must always give the same plan (reviewable, golden-testable).
import { describe, expect, it } from "vitest";
import { toposort } from "../../src/core/graph.js";
import { changedFields, diffResources } from "../../src/core/diff.js";
import { planWaves, sequentialBatches } from "../../src/core/batches.js";
import { assignAddresses } from "../../reconcilers/endpoint/ipam.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { formatIp4 } from "../../src/core/ipv4.js";
import type { OpLine, Resource } from "../../src/core/resource.js";
import { at, endpoint, labels, network, op, resource } from "./helpers/builders.js";

const node = (id: string, ...deps: string[]) => ({ id, deps });
const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

describe("toposort", () => {
  it("keeps input order when nothing depends on anything", () => {
    expect(ids(toposort([node("c"), node("a"), node("b")]))).toEqual(["c", "a", "b"]);
  });

  it("puts dependencies first, and among ready nodes the earlier input wins", () => {
    expect(ids(toposort([node("x", "a"), node("y"), node("a")]))).toEqual(["y", "a", "x"]);
    expect(ids(toposort([node("ep2", "net"), node("ep1", "net"), node("net")]))).toEqual(["net", "ep2", "ep1"]);
    expect(ids(toposort([node("c", "b"), node("b", "a"), node("a")]))).toEqual(["a", "b", "c"]);
  });

  it("ignores dependencies on ids that are not in the list (they exist already)", () => {
    expect(ids(toposort([node("ep", "network:gone"), node("z")]))).toEqual(["ep", "z"]);
  });

  it("is a pure function of its input (same order twice, input untouched)", () => {
    const input = [node("d", "b"), node("c", "a"), node("b"), node("a")];
    const snapshot = JSON.stringify(input);
    expect(ids(toposort(input))).toEqual(ids(toposort(input)));
    expect(ids(toposort(input))).toEqual(["b", "d", "a", "c"]);
    expect(JSON.stringify(input)).toBe(snapshot);
  });

  it("a cycle is an error naming the nodes that could not be ordered, not the free ones", () => {
    const run = () => toposort([node("a", "b"), node("free"), node("b", "a")]);
    expect(run).toThrow("dependency cycle between: a, b");
    expect(() => toposort([node("self", "self")])).toThrow("dependency cycle between: self");
  });
});

const net = (name: string, spec: Partial<Record<string, string>> = {}, opts: Partial<Resource> = {}) =>
  resource("network", name, { bridge: `bolt-${name}`, address: "10.1.0.1/24", mtu: "1500", state: "up", ...spec } as Record<string, string>, opts);
const ep = (name: string, netName: string, spec: Partial<Record<string, string>> = {}, opts: Partial<Resource> = {}) =>
  resource("endpoint", name, { type: "veth", host_if: `bv-${name}`, network: netName, ip: "10.1.0.2/24", ...spec } as Record<string, string>, {
    deps: [`network:${netName}`],
    ...opts,
  });
const sysctl = (key: string, value: string, opts: Partial<Resource> = {}) => resource("sysctl", key, { value }, opts);
const liveMap = (...rs: Resource[]) => new Map(rs.map((r) => [r.id, r]));
const summary = (cs: { action: string; id: string }[]) => cs.map((c) => `${c.action} ${c.id}`);

describe("diffResources", () => {
  it("creates in dependency order, whatever order the desired list has", () => {
    const changes = diffResources([ep("a", "web"), sysctl("net.ipv4.ip_forward", "1"), net("web")], new Map(), REGISTRY);
    expect(summary(changes)).toEqual(["create network:web", "create endpoint:a", "create sysctl:net.ipv4.ip_forward"]);
    expect(changes[0]!.changed).toEqual(["bridge", "address", "mtu", "state"]);
    expect(changes[0]!.before).toBeUndefined();
  });

  it("no change when the live spec equals the desired one", () => {
    expect(diffResources([net("web"), ep("a", "web")], liveMap(net("web"), ep("a", "web")), REGISTRY)).toEqual([]);
  });

  it("update in place lists the changed fields and points at the config line that caused it", () => {
    const want = net("web", { mtu: "9000" }, { source: at(1), fieldSources: { mtu: at(4, 7) } });
    const [c, ...rest] = diffResources([want], liveMap(net("web")), REGISTRY);
    expect(rest).toEqual([]);
    expect(c).toMatchObject({ action: "update", id: "network:web", changed: ["mtu"], forcedBy: [], source: at(4, 7) });
    expect(c!.before!.spec.mtu).toBe("1500");
    expect(c!.after!.spec.mtu).toBe("9000");
  });

  it("replace when a field that cannot change in place differs (bridge rename, endpoint netns)", () => {
    const changes = diffResources(
      [net("web", { bridge: "br-new", mtu: "1400" }), ep("a", "web", { netns: "other" })],
      liveMap(net("web"), ep("a", "web", { netns: "a" })),
      REGISTRY,
    );
    expect(changes.map((c) => [c.action, c.id, c.forcedBy, c.changed])).toEqual([
      ["replace", "network:web", ["bridge"], ["bridge", "mtu"]],
      ["replace", "endpoint:a", ["netns"], ["netns"]],
    ]);
  });

  it("deletes come first, in reverse dependency order (endpoints before their network, sysctls restored first)", () => {
    const live = liveMap(
      net("old"),
      ep("e1", "old"),
      ep("e2", "old"),
      sysctl("net.ipv4.ip_forward", "1", { owned: true, restores: { value: "0" } }),
      net("web"),
    );
    const changes = diffResources([net("web"), ep("new", "web")], live, REGISTRY);
    expect(summary(changes)).toEqual([
      "delete sysctl:net.ipv4.ip_forward",
      "delete endpoint:e2",
      "delete endpoint:e1",
      "delete network:old",
      "create endpoint:new",
    ]);
  });

  it("never deletes or updates what bolt does not own", () => {
    const foreignNet = net("web", { mtu: "9000" }, { owned: false });
    const changes = diffResources(
      [net("web")],
      liveMap(foreignNet, net("theirs", {}, { owned: false }), sysctl("net.ipv4.conf.all.rp_filter", "1", { owned: false })),
      REGISTRY,
    );
    // A network id held by an unowned object is not adopted: create (the planner reports the name clash).
    expect(changes.map((c) => [c.action, c.id, c.before])).toEqual([["create", "network:web", undefined]]);
  });

  it("adopts an unowned live sysctl: create with the live value as `before` (what destroy restores)", () => {
    const live = sysctl("net.ipv4.ip_forward", "0", { owned: false });
    const [c] = diffResources([sysctl("net.ipv4.ip_forward", "1")], liveMap(live), REGISTRY);
    expect(c).toMatchObject({ action: "create", id: "sysctl:net.ipv4.ip_forward" });
    expect(c!.before).toBe(live);
  });

  it("a field the config leaves to the kernel (a WireGuard listen port) matches whatever the kernel chose", () => {
    const spec = { type: "userspace", address: "10.0.9.1/24", public_key: "K", fwmark: "", mtu: "1420", state: "up" };
    const want = resource("wireguard", "wg0", { ...spec, listen_port: "" });
    expect(diffResources([want], liveMap(resource("wireguard", "wg0", { ...spec, listen_port: "43117" })), REGISTRY)).toEqual([]);
    // A configured port is still compared.
    const fixed = resource("wireguard", "wg0", { ...spec, listen_port: "51820" });
    expect(diffResources([fixed], liveMap(resource("wireguard", "wg0", { ...spec, listen_port: "43117" })), REGISTRY).map((c) => c.changed)).toEqual([
      ["listen_port"],
    ]);
  });

  it("changedFields treats a missing field as empty", () => {
    expect(changedFields({ a: "1", b: "" }, { a: "1", c: "x" })).toEqual(["c"]);
    expect(changedFields({ a: "1" }, { a: "2", b: "" })).toEqual(["a"]);
  });
});

describe("planWaves", () => {
  const X = "bolt-t-x";
  it("destroy ops first (highest stage first), then build ops (lowest first); one batch per tool+namespace per wave", () => {
    const ops = [
      op("link add br", 20, X, { step: 0 }),
      op("sysctl ip_forward", 50, X, { step: 4, tool: "exec" }),
      op("inside a", 40, "ep-a", { step: 2 }),
      op("link add veth", 20, X, { step: 1 }),
      op("link del old", 20, X, { step: 5, destroy: true }),
      op("inside old", 40, "ep-old", { step: 6, destroy: true }),
      op("inside b", 40, "ep-b", { step: 3 }),
      op("addr on veth a", 40, X, { step: 2 }),
    ];
    const waves = planWaves(ops).map((w) => w.map((b) => `${b.tool}@${b.ns}: ${labels(b.ops).join(" | ")}`));
    expect(waves).toEqual([
      ["ip@ep-old: inside old"],
      ["ip@bolt-t-x: link del old"],
      ["ip@bolt-t-x: link add br | link add veth"],
      // batches appear in the order their first op comes in (step 2, step 3)
      ["ip@ep-a: inside a", "ip@ep-b: inside b"],
      // step 2's next op is for another namespace: after its first, in the same stage
      ["ip@bolt-t-x: addr on veth a"],
      ["exec@bolt-t-x: sysctl ip_forward"],
    ]);
  });

  it("a step's ops keep their order across tools and namespaces within a stage; other steps still share the batches", () => {
    // dhcp's restart: stop and wait on the host, then start in the target — never side by side
    const restart = (n: number) => [
      op(`pkill ${n}`, 60, null, { step: n, tool: "exec" }),
      op(`tail --pid ${n}`, 60, null, { step: n, tool: "exec" }),
      op(`dnsmasq ${n}`, 60, X, { step: n, tool: "exec" }),
      op(`pkill -HUP ${n}`, 60, null, { step: n, tool: "exec" }),
    ];
    const waves = planWaves([...restart(1), ...restart(2)]).map((w) => w.map((b) => `${b.ns}: ${labels(b.ops).join(" | ")}`));
    expect(waves).toEqual([["null: pkill 1 | tail --pid 1 | pkill 2 | tail --pid 2"], [`${X}: dnsmasq 1 | dnsmasq 2`], ["null: pkill -HUP 1 | pkill -HUP 2"]]);
  });

  it("within a stage, plan step order wins over list order, then list order", () => {
    const ops = [op("step2", 20, X, { step: 2 }), op("step1-first", 20, X, { step: 1 }), op("step1-second", 20, X, { step: 1 })];
    expect(planWaves(ops).map((w) => w.map((b) => labels(b.ops)))).toEqual([[["step1-first", "step1-second", "step2"]]]);
  });

  it("no ops, no waves; null namespace is its own batch key", () => {
    expect(planWaves([])).toEqual([]);
    const w = planWaves([op("host", 20, null), op("ns", 20, X)]);
    expect(w).toHaveLength(1);
    expect(w[0]!.map((b) => b.ns)).toEqual([null, X]);
  });
});

describe("sequentialBatches (undo lines: order is everything)", () => {
  it("merges only consecutive lines with the same tool and namespace", () => {
    const line = (label: string, tool: OpLine["tool"], ns: string | null): OpLine => ({ tool, ns, args: [label] });
    const batches = sequentialBatches([
      line("a", "ip", "x"),
      line("b", "ip", "x"),
      line("c", "exec", "x"),
      line("d", "ip", "x"),
      line("e", "ip", "y"),
      line("f", "ip", null),
      line("g", "ip", null),
    ]);
    expect(batches.map((b) => `${b.tool}@${b.ns}:${labels(b.ops).join("")}`)).toEqual(["ip@x:ab", "exec@x:c", "ip@x:d", "ip@y:e", "ip@null:fg"]);
    expect(sequentialBatches([])).toEqual([]);
  });
});

describe("assignAddresses (IPAM)", () => {
  const web = network("web", "10.1.0.0/24", { pool: ["10.1.0.2", "10.1.0.254"] });
  const result = (r: ReturnType<typeof assignAddresses>) => Object.fromEntries([...r.ips].map(([k, v]) => [k, formatIp4(v)]));

  it("first free address of the pool, in endpoint order, skipping the gateway and static addresses", () => {
    const n = network("n", "10.2.0.0/24"); // default pool starts at the gateway, .1
    const r = assignAddresses([n], [endpoint("s", "n", { ip: "10.2.0.2" }), endpoint("a", "n"), endpoint("b", "n")], new Map(), new Map());
    expect(result(r)).toEqual({ s: "10.2.0.2", a: "10.2.0.3", b: "10.2.0.4" });
    expect(r.diagnostics).toEqual([]);
  });

  it("a static address wins even over another endpoint's lease, which then moves", () => {
    const r = assignAddresses([web], [endpoint("dyn", "web"), endpoint("fixed", "web", { ip: "10.1.0.10" })], new Map([["dyn", "10.1.0.10"]]), new Map());
    expect(result(r)).toEqual({ fixed: "10.1.0.10", dyn: "10.1.0.2" });
  });

  it("keeps a lease (store first, else what the kernel shows after the state dir was lost)", () => {
    const r = assignAddresses(
      [web],
      [endpoint("a", "web"), endpoint("b", "web")],
      new Map([["a", "10.1.0.50"]]),
      new Map([
        ["b", "10.1.0.60"],
        ["a", "10.1.0.99"],
      ]),
    );
    expect(result(r)).toEqual({ a: "10.1.0.50", b: "10.1.0.60" });
  });

  it("a new endpoint listed first never takes an older endpoint's lease", () => {
    const r = assignAddresses([web], [endpoint("new", "web"), endpoint("old", "web")], new Map([["old", "10.1.0.2"]]), new Map());
    expect(result(r)).toEqual({ old: "10.1.0.2", new: "10.1.0.3" });
  });

  it("a lease outside the (changed) pool is reallocated to the first free address of the new pool", () => {
    const moved = network("web", "10.1.0.0/24", { pool: ["10.1.0.100", "10.1.0.200"] });
    const r = assignAddresses(
      [moved],
      [endpoint("a", "web"), endpoint("b", "web")],
      new Map([
        ["a", "10.1.0.50"],
        ["b", "10.1.0.150"],
      ]),
      new Map(),
    );
    expect(result(r)).toEqual({ b: "10.1.0.150", a: "10.1.0.100" });
  });

  it("a lease equal to the gateway or unparsable is not kept; two endpoints claiming one lease: the first keeps it", () => {
    const r = assignAddresses(
      [network("n", "10.3.0.0/24", { pool: ["10.3.0.1", "10.3.0.9"] })],
      [endpoint("gw", "n"), endpoint("junk", "n"), endpoint("x", "n"), endpoint("y", "n")],
      new Map([
        ["gw", "10.3.0.1"],
        ["junk", "not-an-ip"],
        ["x", "10.3.0.5"],
        ["y", "10.3.0.5"],
      ]),
      new Map(),
    );
    expect(result(r)).toEqual({ x: "10.3.0.5", gw: "10.3.0.2", junk: "10.3.0.3", y: "10.3.0.4" });
  });

  it("exhaustion: the endpoints that fit get addresses, the rest an error at their config line", () => {
    const tiny = network("tiny", "10.4.0.0/24", { pool: ["10.4.0.10", "10.4.0.11"] });
    const r = assignAddresses([tiny], [endpoint("a", "tiny"), endpoint("b", "tiny"), endpoint("c", "tiny", { line: 17 })], new Map(), new Map());
    expect(result(r)).toEqual({ a: "10.4.0.10", b: "10.4.0.11" });
    expect(r.diagnostics).toEqual([
      { severity: "error", message: 'endpoint "c": no free address left in network "tiny" (pool 10.4.0.10–10.4.0.11)', source: at(17) },
    ]);
  });

  it("is deterministic and per network; endpoints of unknown networks are skipped (reported by validation)", () => {
    const other = network("other", "10.5.0.0/24");
    const eps = [endpoint("a", "web"), endpoint("b", "other"), endpoint("c", "web"), endpoint("lost", "nope")];
    const r1 = assignAddresses([web, other], eps, new Map(), new Map());
    const r2 = assignAddresses([web, other], eps, new Map(), new Map());
    expect(result(r1)).toEqual({ a: "10.1.0.2", b: "10.5.0.2", c: "10.1.0.3" });
    expect(result(r2)).toEqual(result(r1));
    expect(r1.diagnostics).toEqual([]);
  });
});
