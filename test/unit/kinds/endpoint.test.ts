// endpoint: a veth pair (host side on the bridge, eth0 with address and default route in the
// endpoint's namespace, created when missing) or a tap on the bridge, through create (new and
// existing namespace), update (address, MTU), replace (MAC) and delete.
import { describe, expect, it } from "vitest";
import type { FakeKernel } from "../helpers/fake-kernel.js";
import { attempt, converge, describeTransition, undoMatches, intentOf, newWorld, writeConfigs } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const P = `${T}-`;
const NET = `
[networks.front]
subnet = "10.81.0.0/24"
internet = false
`;
const EPS = `${NET}
[[endpoints]]
name = "web"
network = "front"
ip = "10.81.0.10"

[[endpoints]]
name = "vm"
network = "front"
tap = true
`;
// two endpoints plugged into namespaces that exist (a job runner's)
const JOB = `${NET}
[[endpoints]]
name = "job"
network = "front"

[[endpoints]]
name = "job2"
network = "front"
`;
const jobNamespaces = (k: FakeKernel) => void k.addNetns(`${P}job`).addNetns(`${P}job2`);

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text }), { netnsPrefix: P }) });
const from = (text: string, setup?: Parameters<typeof newWorld>[1]) => async () => {
  const w = newWorld(T, setup);
  await converge(w, want(text)());
  return w;
};

describe("endpoint", () => {
  describeTransition("create: veth (namespace created) and tap", {
    kind: "endpoint",
    before: from(NET),
    to: want(EPS),
    changes: ["create endpoint:web", "create endpoint:vm", "create resolver:bolt-t-kinds-web/hosts"],
    after: (k) => {
      expect(k.link(T, "bv-web")).toMatchObject({ kind: "veth", up: true, master: "bolt-front", addrgenmode: "none", peer: { ns: `${P}web`, name: "eth0" } });
      expect(k.link(`${P}web`, "eth0")).toMatchObject({ up: true, addrs: ["10.81.0.10/24"], mtu: 1500 });
      expect(k.link(`${P}web`, "lo")).toMatchObject({ up: true });
      expect(k.ns(`${P}web`).routes).toEqual([
        { dst: "0.0.0.0/0", gateway: "10.81.0.1", dev: "eth0", table: 254, protocol: "176", type: "unicast", metric: 0 },
      ]);
      expect(k.link(T, "bt-vm")).toMatchObject({ kind: "tun", tunType: "tap", up: true, master: "bolt-front" });
    },
  });

  describeTransition("create: veth into a namespace that already exists", {
    kind: "endpoint",
    before: from(NET, jobNamespaces),
    to: want(JOB),
    changes: ["create endpoint:job", "create endpoint:job2", "create resolver:bolt-t-kinds-job/hosts", "create resolver:bolt-t-kinds-job2/hosts"],
    after: (k) => {
      expect(k.link(T, "bv-job")!.alias).toContain("ns=bolt-t-kinds-job");
      expect(k.link(T, "bv-job")!.alias).not.toContain("nsc=1");
      expect(k.link(`${P}job`, "lo")).toMatchObject({ up: false }); // not bolt's namespace: lo untouched
    },
  });

  // A container's secondary network (a CNI attachment other than eth0): its interface named,
  // no default route; the other endpoint of the namespace keeps eth0 and the default route.
  const SECONDARY = `${NET}
[networks.back]
subnet = "10.83.0.0/24"
internet = false

[[endpoints]]
name = "side"
network = "back"
netns = "ctr"
ifname = "net1"
default = false

[[endpoints]]
name = "main"
network = "front"
netns = "ctr"
`;
  describeTransition("create: an explicit ifname with default = false beside the namespace's routed endpoint", {
    kind: "endpoint",
    before: from(NET),
    to: want(SECONDARY),
    after: (k) => {
      expect(k.link(T, "bv-side")).toMatchObject({ peer: { ns: `${P}ctr`, name: "net1" } });
      expect(k.link(T, "bv-main")).toMatchObject({ peer: { ns: `${P}ctr`, name: "eth0" } });
      expect(k.ns(`${P}ctr`).routes.filter((r) => r.dst === "0.0.0.0/0")).toEqual([
        { dst: "0.0.0.0/0", gateway: "10.81.0.1", dev: "eth0", table: 254, protocol: "176", type: "unicast", metric: 0 },
      ]);
    },
  });

  it("default = false on every endpoint of a namespace: no default route; ifname errors at their line", async () => {
    const w = newWorld(T);
    await converge(w, want(`${SECONDARY}default = false\n`)());
    expect(w.kernel.ns(`${P}ctr`).routes.filter((r) => r.dst === "0.0.0.0/0")).toEqual([]);
    /** The config's one error, and the line it must name (the last occurrence of `needle`). */
    const bad = (text: string, needle: string): { message: string; line: number } => {
      const line = text.slice(0, text.lastIndexOf(needle)).split("\n").length;
      try {
        intentOf(writeConfigs({ "bolt-network.toml": text }), { netnsPrefix: P });
      } catch (e) {
        return { message: (e as Error).message, line };
      }
      return { message: "", line };
    };
    const dup = bad(`${SECONDARY}ifname = "net1"\n`, 'ifname = "net1"');
    expect(dup.message).toMatch(
      new RegExp(
        `bolt-network\\.toml:${dup.line}:\\d+: error: endpoint "main": namespace "bolt-t-kinds-ctr" already has an interface net1 through endpoint "side"`,
      ),
    );
    const lo = bad(SECONDARY.replace('ifname = "net1"', 'ifname = "lo"'), 'ifname = "lo"');
    expect(lo.message).toMatch(new RegExp(`:${lo.line}:\\d+: error: endpoint "side": ifname "lo" is the namespace's loopback`));
    expect(bad(`${NET}\n[[endpoints]]\nname = "vm"\nnetwork = "front"\ntap = true\nifname = "eth1"\n`, "ifname").message).toMatch(
      /"ifname" applies to veth endpoints only/,
    );
    expect(bad(SECONDARY.replace('ifname = "net1"', 'ifname = "a-name-too-long-16"'), "ifname").message).toMatch(/ifname/);
  });

  describeTransition("update: static address changed", {
    kind: "endpoint",
    before: from(EPS),
    to: want(EPS.replace("10.81.0.10", "10.81.0.20")),
    changes: ["update endpoint:web", "update resolver:bolt-t-kinds-web/hosts"],
    after: (k) => {
      expect(k.link(`${P}web`, "eth0")!.addrs).toEqual(["10.81.0.20/24"]);
      expect(k.ns(`${P}web`).routes.map((r) => r.gateway)).toEqual(["10.81.0.1"]);
    },
  });

  describeTransition("update: the network's MTU (bridge, veth both ends, tap)", {
    kind: "endpoint",
    before: from(EPS),
    to: want(EPS.replace("internet = false", "internet = false\nmtu = 1400")),
    changes: ["update network:front", "update endpoint:web", "update endpoint:vm"],
    after: (k) => {
      for (const [ns, dev] of [
        [T, "bolt-front"],
        [T, "bv-web"],
        [`${P}web`, "eth0"],
        [T, "bt-vm"],
      ] as const)
        expect(k.link(ns, dev)!.mtu, dev).toBe(1400);
    },
  });

  // Was a bug of runUndo's retry of failed undo lines (fixed): the undo of a `netns add` or
  // `link add` that never took effect fails, later undo lines re-create what the replace deleted,
  // and a retry of the failed line deleted it again. Each undo line now runs exactly once.
  describeTransition("replace: MAC address given", {
    kind: "endpoint",
    before: from(EPS),
    to: want(EPS.replace('ip = "10.81.0.10"', 'ip = "10.81.0.10"\nmac = "02:42:ac:11:00:0a"')),
    changes: ["replace endpoint:web"],
    after: (k) => expect(k.link(`${P}web`, "eth0")).toMatchObject({ mac: "02:42:ac:11:00:0a", macSet: true, addrs: ["10.81.0.10/24"] }),
  });

  describeTransition("delete: endpoints removed (the namespace bolt made goes too)", {
    kind: "endpoint",
    before: from(EPS),
    to: want(NET),
    changes: ["delete resolver:bolt-t-kinds-web/hosts", "delete endpoint:vm", "delete endpoint:web"],
    after: (k) => {
      expect(k.hasNetns(`${P}web`)).toBe(false);
      expect(
        k
          .ns(T)
          .links.map((l) => l.name)
          .sort(),
      ).toEqual(["bolt-front", "lo"]);
    },
  });

  describeTransition("delete: an endpoint in a namespace bolt did not make (it stays)", {
    kind: "endpoint",
    before: from(JOB, jobNamespaces),
    to: want(NET),
    changes: ["delete resolver:bolt-t-kinds-job2/hosts", "delete resolver:bolt-t-kinds-job/hosts", "delete endpoint:job2", "delete endpoint:job"],
    after: (k) => {
      expect(k.ns(`${P}job`).links.map((l) => l.name)).toEqual(["lo"]);
      expect(k.ns(`${P}job2`).links.map((l) => l.name)).toEqual(["lo"]);
    },
  });
});

// Deleting a primary IPv4 address deletes the secondaries of its subnet unless
// promote_secondaries is set. systemd sets it (and new namespaces inherit init_net's IPv4 conf),
// other hosts (Alpine, containers, devconf_inherit_init_net=2) do not: there the new address,
// added next to the old one in the same subnet, vanishes with the old one, and the default
// route through it cannot be replaced. Was a bug (fixed): the old address is now deleted first.
describe("endpoint: an address change where new namespaces do not promote secondary addresses", () => {
  const noPromote = (k: FakeKernel) =>
    void (k.state.netnsSysctl = { "net.ipv4.conf.all.promote_secondaries": "0", "net.ipv4.conf.default.promote_secondaries": "0" });
  const baseline = async () => {
    const w = newWorld(T, noPromote);
    await converge(w, want(EPS)());
    return w;
  };
  const to = want(EPS.replace("10.81.0.10", "10.81.0.20"));

  it("the address change converges", async () => {
    const w = await baseline();
    await converge(w, to());
  });

  it("a failed address change rolls back exactly", async () => {
    const w = await baseline();
    const a = await attempt(w, to(), { fault: { at: 2 } });
    expect(a.error).toBeDefined();
    expect(a.diff).toEqual([]);
    expect(undoMatches(a), `undo ran ${a.undoRan.join(" | ")}`).toBe(true);
  });
});
