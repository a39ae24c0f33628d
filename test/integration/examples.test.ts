// Examples are tests: every file in examples/ validates and is applied into throwaway
// namespaces (`bolt-t-*`, created and deleted here, never the host's own). Then, for every
// change `plan --json` listed, the kernel is read back with its own tools — `ip -j`,
// `nft -j list table inet bolt`, `wg show`, `sysctl`, `iptables -S`, the hosts file — never
// with bolt's readers, and must hold what the plan said and nothing it did not say. A kind with
// no check here fails the test: a new kind cannot slip through unchecked. Traffic proves that
// what is there works; after every apply (and after the traffic) a second plan is empty; destroy
// leaves every namespace exactly as it was.
//
// Two shapes of example:
// - One host (a Boltfile, a volantd.yaml): applied to a "host" namespace with an uplink to an
//   "outside" namespace that has no route back (nft-topology.ts). Endpoints ping their gateway
//   and each other, reach the outside through NAT when their network has internet and nothing in
//   another isolated network; every port forward answers from the outside and from the host.
//   An example with `[firewall] docker_conflict_resolution = true` is applied to a Docker host:
//   iptables FORWARD policy DROP and a DOCKER-USER chain are set up first, as Docker does.
// - The GhostWire mesh: every mesh-node file (ghostwire.toml with a [node]) at the top of
//   examples/ and in examples/mesh/ is one host of the three-host underlay of mesh-topology.ts,
//   by its hostname (host-a, host-b, host-c). The examples hold no key material: each host gets a
//   copy of its file with a key pair generated now (`bolt keygen`, 0600), the other hosts' fresh
//   public keys in place of the placeholders, and its interface name (gw0 on every host: each
//   namespace has its own wireguard-go control sockets). Nothing else in the file is changed.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, SKIP_REASON, bolt, exampleFiles, ipJson, must, ping, requireBuild, run, snapshot, sysctlGet, wgIn, wgPidsIn } from "./harness.js";
import { wgSocketDir } from "../../src/exec/run-dir.js";
import type { Json, Snapshot } from "./harness.js";
import { expectTap, expectVeth, link } from "./checks.js";
import { Topology, UPLINK } from "./nft-topology.js";
import { HOSTS, INTERNET, LAN, MeshLab, UNDERLAY, hostname, pingUntil, routeGet } from "./mesh-topology.js";
import type { HostId } from "./mesh-topology.js";

const rel = (f: string) => relative(REPO, f);

/** The parsed file; {} when it does not parse (its "validates" test then says why). */
function readConfig(file: string): Json {
  try {
    const text = readFileSync(file, "utf8");
    return /\.ya?ml$/.test(file) ? (parseYaml(text) ?? {}) : parseToml(text);
  } catch {
    return {};
  }
}

/** A ghostwire.toml that sets up a node (the Boltfile's inline [meshvpn] is a one-host example). */
function isMeshNode(file: string): boolean {
  if (!file.endsWith(".toml")) return false;
  const d = readConfig(file);
  return !!(d.ghostwire || d.meshvpn) && !d.networks && !d.networking && !!(d.node ?? d.meshvpn?.node);
}

// Globbed when the suite is collected: the folder is written by others and grows.
const TOP = exampleFiles();
const MESH_DIR = join(REPO, "examples", "mesh");
const MESH_FILES = [
  ...TOP.filter(isMeshNode),
  ...(existsSync(MESH_DIR)
    ? readdirSync(MESH_DIR)
        .filter((f) => f.endsWith(".toml"))
        .sort()
        .map((f) => join(MESH_DIR, f))
    : []),
];
const SINGLE = TOP.filter((f) => !isMeshNode(f));

/** Kinds whose kernel check ran, and how many scenarios got that far (for the coverage test). */
const seenKinds = new Set<string>();
let appliedScenarios = 0;
const SCENARIOS = SINGLE.length + (MESH_FILES.length ? 1 : 0);

describe.skipIf(!!SKIP_REASON)("examples/", () => {
  it("has example files (an empty folder must fail, not pass)", () => {
    expect(TOP.length, "examples/ holds no .toml/.yaml/.yml file: every example is an integration test, add one").toBeGreaterThan(0);
  });

  it("covers every config file in examples/ and its subfolders (examples/ci/ holds CI workflows, not configs)", () => {
    const all = (readdirSync(join(REPO, "examples"), { recursive: true }) as string[])
      .filter((f) => /\.(toml|ya?ml)$/.test(f) && !f.startsWith("ci/"))
      .map((f) => join(REPO, "examples", f));
    expect(all.sort()).toEqual([...SINGLE, ...MESH_FILES].sort());
  });

  for (const file of SINGLE) {
    describe(rel(file), () => {
      const cfg = readConfig(file);
      const docker = cfg.firewall?.docker_conflict_resolution === true;
      const topo = new Topology();
      const sb = topo.sb;
      let before: Snapshot;
      let nsBefore: string[] = [];
      let changes: Json[] = [];
      const sysctlsBefore = new Map<string, string>();

      beforeAll(async () => {
        requireBuild();
        await topo.build();
        if (docker) await dockerHost(sb.target);
        before = await snapshot(sb.target);
        nsBefore = await sb.mine();
      });
      afterAll(() => topo.cleanup());

      it("validates", async () => {
        const r = await bolt(["validate", "-f", file]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("Configuration is valid");
      });

      it(`applies${docker ? " (to a Docker host)" : ""}, and the kernel has exactly what the plan said`, async () => {
        const p = await sb.bolt(["plan", "--json", "-f", file]);
        expect(p.code, p.stderr).toBe(0);
        changes = (JSON.parse(p.stdout) as Json).changes;
        expect(changes.length, "the example plans something").toBeGreaterThan(0);
        expect(
          changes.filter((c) => c.action !== "create").map((c) => `${c.action} ${c.address}`),
          "a fresh namespace plans creates only",
        ).toEqual([]);
        for (const c of changes) if (c.kind === "sysctl") sysctlsBefore.set(c.name, await sysctlGet(sb.target, c.name));

        const r = await sb.bolt(["apply", "-f", file]);
        expect(r.code, r.stderr).toBe(0);
        const t: Target = { ns: sb.target, changes, psk: pskOf(cfg) };
        for (const c of changes) await expectInKernel(t, c);
        await expectNothingUnplanned(t);
        appliedScenarios++;
      });

      it("plans no changes right after apply", async () => {
        const p = await sb.planExit(file, ["--deep"]);
        expect(p.code, p.stdout + p.stderr).toBe(0);
      });

      it("traffic: endpoints reach their gateway, each other, the outside when they have internet; port forwards answer", async () => {
        await endpointTraffic(topo, cfg, changes);
        await portForwardTraffic(topo, cfg, changes);
        if (docker) await expectDockerUserCounted(sb.target, changes);
      });

      const specific = TRAFFIC[basename(file)];
      if (specific) it(`traffic: ${specific.what}`, () => specific.run(topo, changes));

      it("still plans no changes after the traffic (conntrack, dynamic sets and counters are not drift)", async () => {
        const p = await sb.planExit(file, ["--deep"]);
        expect(p.code, p.stdout + p.stderr).toBe(0);
      });

      it("destroy leaves the namespace as before", async () => {
        const r = await sb.bolt(["destroy"]);
        expect(r.code, r.stderr).toBe(0);
        expect(await snapshot(sb.target)).toEqual(before);
        expect(await sb.mine()).toEqual(nsBefore);
        for (const [key, value] of sysctlsBefore) expect(await sysctlGet(sb.target, key), key).toBe(value);
        expect(existsSync(`/etc/netns/${sb.target}`), "no /etc/netns dir left behind").toBe(false);
        expect((await sb.planExit(file)).code, "everything is planned again").toBe(2);
      });
    });
  }

  if (MESH_FILES.length) {
    describe(`GhostWire mesh on three hosts: ${MESH_FILES.map(rel).join(", ")}`, () => {
      const lab = new MeshLab();
      const hosts = new Map<HostId, { src: string; cfg: Json; file: string }>();
      const plans = new Map<HostId, Json[]>();
      const before = new Map<HostId, Snapshot>();
      const sysctlsBefore = new Map<HostId, Map<string, string>>();
      const meshAddr = (h: HostId): string => String(hosts.get(h)!.cfg.node.address);

      beforeAll(async () => {
        requireBuild();
        await lab.build();
        for (const h of HOSTS) before.set(h, await snapshot(lab.ns(h)));
      });
      afterAll(() => lab.cleanup());

      for (const file of MESH_FILES) {
        it(`${rel(file)} validates (its key file need not exist offline)`, async () => {
          const r = await bolt(["validate", "-f", file]);
          expect(r.code, r.stderr).toBe(0);
          expect(r.stdout).toContain("Configuration is valid");
        });
      }

      it("is one file per host of the lab (host-a, host-b, host-c), each listing the other two at their underlay address", () => {
        const byName = new Map(MESH_FILES.map((f) => [String(meshData(readConfig(f)).node.hostname), f]));
        expect(MESH_FILES.length, MESH_FILES.map(rel).join(", ")).toBe(HOSTS.length);
        expect([...byName.keys()].sort()).toEqual(HOSTS.map(hostname));
        for (const h of HOSTS) {
          const src = byName.get(hostname(h))!;
          const cfg = meshData(readConfig(src));
          const peers = (cfg.peers ?? []) as Json[];
          expect(peers.map((p) => p.hostname).sort(), `${rel(src)}: the peers`).toEqual(HOSTS.filter((x) => x !== h).map(hostname));
          for (const p of peers)
            expect(String(p.endpoint).split(":")[0], `${rel(src)}: ${p.hostname}'s endpoint is its address on the underlay`).toBe(UNDERLAY[hostOf(p.hostname)]);
          hosts.set(h, { src, cfg, file: lab.sb.write(`${h}.toml`, meshCopy(src, cfg, h, lab)) });
        }
      });

      it("applies on every host, and every kernel has exactly what its plan said", async () => {
        for (const h of HOSTS) {
          const { file } = hosts.get(h)!;
          const p = await lab.bolt(h, ["plan", "--json", "-f", file]);
          expect(p.code, p.stderr).toBe(0);
          const changes = (JSON.parse(p.stdout) as Json).changes as Json[];
          expect(
            changes.filter((c) => c.action !== "create").map((c) => `${c.action} ${c.address}`),
            `${h}: a fresh namespace plans creates only`,
          ).toEqual([]);
          expect(changes.find((c) => c.kind === "wireguard")?.after.public_key, `${h}: the interface has the key generated for this run`).toBe(lab.pub[h]);
          const sys = new Map<string, string>();
          for (const c of changes) if (c.kind === "sysctl") sys.set(c.name, await sysctlGet(lab.ns(h), c.name));
          sysctlsBefore.set(h, sys);
          // apply, then plan --detailed-exitcode must be 0
          await lab.apply(h, file);
          plans.set(h, changes);
        }
        for (const h of HOSTS) {
          const t: Target = { ns: lab.ns(h), changes: plans.get(h)!, psk: pskOf(hosts.get(h)!.cfg) };
          for (const c of t.changes) await expectInKernel(t, c);
          await expectNothingUnplanned(t);
        }
        // Later hosts coming up changes nothing on the earlier ones.
        for (const h of HOSTS) {
          const p = await lab.bolt(h, ["plan", "-f", hosts.get(h)!.file, "--detailed-exitcode"]);
          expect(p.code, `${h}: ${p.stdout}${p.stderr}`).toBe(0);
        }
        appliedScenarios++;
      });

      it("every host pings every other host's mesh address and <hostname>.mesh, through the tunnel", async () => {
        for (const from of HOSTS) {
          for (const to of HOSTS.filter((x) => x !== from)) {
            const sent = await transfer(lab, from, to);
            const got = await transfer(lab, to, from);
            expect(await pingUntil(lab.ns(from), meshAddr(to)), `${from} → ${to} (${meshAddr(to)})`).toBe(true);
            // An ICMP echo inside WireGuard is at least 84 + 32 bytes of transport data each way.
            expect((await transfer(lab, from, to)).tx - sent.tx, `${from} sent to ${to} through the tunnel`).toBeGreaterThanOrEqual(116);
            expect((await transfer(lab, to, from)).rx - got.rx, `${to} received from ${from} through the tunnel`).toBeGreaterThanOrEqual(116);
            if (hosts.get(from)!.cfg.features?.magic_dns)
              expect(await pingUntil(lab.ns(from), `${hostname(to)}.mesh`, 2), `${from} → ${hostname(to)}.mesh`).toBe(true);
          }
        }
      });

      it("subnet routes and exit node: whoever accepts host-a's LAN route reaches the LAN; host-a carries the internet of who uses it as exit node", async () => {
        // The lab has a LAN and an internet behind host-a only: the example must put them there.
        const a = hosts.get("a")!.cfg.node;
        expect(a.advertise_routes, "host-a advertises the lab's LAN").toContain(LAN.subnet);
        expect(a.exit_node, "host-a is an exit node").toBe(true);
        let lanUsers = 0;
        let exitUsers = 0;
        for (const h of HOSTS.filter((x) => x !== "a")) {
          const { node, peers } = hosts.get(h)!.cfg;
          const accepts = node.accept_routes === true && ((peers as Json[]).find((p) => p.hostname === hostname("a"))?.routes ?? []).includes(LAN.subnet);
          const tx = (await transfer(lab, h, "a")).tx;
          expect(await pingUntil(lab.ns(h), LAN.host, accepts ? 5 : 1), `${h} → LAN host ${LAN.host}`).toBe(accepts);
          if (accepts) expect((await transfer(lab, h, "a")).tx, `${h}'s LAN traffic went to host-a`).toBeGreaterThan(tx);
          lanUsers += accepts ? 1 : 0;

          const exit = node.use_exit_node ? hostOf(String(node.use_exit_node)) : undefined;
          if (exit) {
            expect((await routeGet(lab.ns(h), INTERNET.host)).dev, `${h}: the internet goes into the tunnel`).toBe(lab.ifname(h));
            expect((await routeGet(lab.ns(h), UNDERLAY.router)).dev, `${h}: the underlay stays off the tunnel`).toBe("eth0");
            const before = (await transfer(lab, h, exit)).tx;
            expect(await pingUntil(lab.ns(h), INTERNET.host), `${h} → internet ${INTERNET.host} via ${exit}`).toBe(true);
            expect((await transfer(lab, h, exit)).tx - before).toBeGreaterThanOrEqual(116);
            expect(await pingUntil(lab.ns(h), UNDERLAY.router), `${h} still reaches its underlay directly`).toBe(true);
            exitUsers++;
          } else expect(await pingUntil(lab.ns(h), INTERNET.host, 1), `${h} has no exit node: no internet in this lab`).toBe(false);
        }
        expect(lanUsers, "some host uses host-a's LAN route").toBeGreaterThan(0);
        expect(exitUsers, "some host uses host-a as exit node").toBeGreaterThan(0);
      });

      it("still plans no changes after the traffic (handshakes, counters and endpoints are not drift)", async () => {
        for (const h of HOSTS) {
          const p = await lab.bolt(h, ["plan", "-f", hosts.get(h)!.file, "--detailed-exitcode"]);
          expect(p.code, `${h}: ${p.stdout}${p.stderr}`).toBe(0);
        }
      });

      it("destroy on every host leaves its namespace as before: no interface, process, socket, route, rule, nft table or hosts file", async () => {
        for (const h of HOSTS) {
          const r = await lab.bolt(h, ["destroy"]);
          expect(r.code, r.stderr).toBe(0);
        }
        for (const h of HOSTS) {
          expect(await snapshot(lab.ns(h)), `namespace of ${h} after destroy`).toEqual(before.get(h));
          expect(await lab.wgPids(h)).toEqual([]);
          expect(existsSync(lab.socket(h))).toBe(false);
          expect(existsSync(`/etc/netns/${lab.ns(h)}`), `${h}: the /etc/netns dir bolt made for the hosts file is gone`).toBe(false);
          for (const [key, value] of sysctlsBefore.get(h) ?? []) expect(await sysctlGet(lab.ns(h), key), `${h}: ${key}`).toBe(value);
          expect((await lab.bolt(h, ["plan", "-f", hosts.get(h)!.file, "--detailed-exitcode"])).code).toBe(2);
        }
      });

      it("no private key appears in any output (debug logs, JSON plans) or in the state", async () => {
        await lab.expectNoSecrets();
      });
    });
  }

  it("every kernel check was exercised by some example (a check nothing reaches is a check that rots)", (ctx) => {
    if (appliedScenarios < SCENARIOS) ctx.skip();
    expect([...seenKinds].sort()).toEqual(Object.keys(CHECKS).sort());
  });
});

// ---------------------------------------------------------------------------------------------
// Kernel checks, one per kind. Each reads the kernel itself and compares with the plan's `after`.

interface Target {
  ns: string;
  /** the whole plan of this namespace */
  changes: Json[];
  /** the config: whether peer PUB of interface DEV has a preshared key (the plan prints a set PSK as "(sensitive)") */
  psk: (dev: string, pub: string) => boolean;
}

/** From a Boltfile's [wireguard.DEV] peers; GhostWire peers have no preshared key. */
function pskOf(cfg: Json): Target["psk"] {
  return (dev, pub) =>
    ((cfg.wireguard?.[dev]?.peers ?? []) as Json[]).some((p) => p.public_key === pub && (p.preshared_key_file ?? p.preshared_key) !== undefined);
}

type Check = (t: Target, c: Json) => Promise<void>;

const CHECKS: Record<string, Check> = {
  network: checkNetwork,
  endpoint: checkEndpoint,
  sysctl: checkSysctl,
  nft: checkNft,
  route: checkRoute,
  rule: checkRule,
  wireguard: checkWireguard,
  "wg-peer": checkWgPeer,
  hosts: checkHosts,
  resolver: checkResolver,
  "docker-user": checkDockerUser,
};

async function expectInKernel(t: Target, c: Json): Promise<void> {
  const check = CHECKS[c.kind];
  if (!check) expect.fail(`the plan has ${c.address} of kind "${c.kind}", and examples.test.ts has no kernel check for that kind: add one to CHECKS`);
  seenKinds.add(c.kind);
  await check(t, c);
}

const flagsState = (flags: string[]) => (flags.includes("UP") ? "up" : "down");

/**
 * The addresses on a link as the plan lists them: IPv4, then global IPv6 — and on a bridge
 * (addrgenmode none: the kernel adds none) the link-local ones too, bolt's fe80::1/64 of a
 * dual-stack bridge; elsewhere a link-local one is the kernel's. None tentative.
 */
async function addrs(ns: string, dev: string, bridge = false): Promise<string> {
  const a = (await ipJson(ns, ["addr", "show", "dev", dev]))[0];
  const info = (a?.addr_info ?? []) as Json[];
  expect(
    info.filter((x) => x.tentative).map((x) => x.local),
    `${dev}: addresses still in DAD`,
  ).toEqual([]);
  const of = (family: string) =>
    info
      .filter((x) => x.family === family && (bridge || x.scope !== "link"))
      .map((x) => `${x.local}/${x.prefixlen}`)
      .sort();
  return [...of("inet"), ...of("inet6")].join(", ");
}

/** The bridge: kind, alias naming the network, MTU, state, exactly the planned address(es). */
async function checkNetwork(t: Target, c: Json): Promise<void> {
  const a = c.after;
  const l = await link(t.ns, a.bridge);
  expect(l.linkinfo?.info_kind).toBe("bridge");
  expect(l.ifalias).toBe(`bolt1,net=${c.name}`);
  expect(l.mtu).toBe(Number(a.mtu));
  expect(flagsState(l.flags), `${a.bridge} state`).toBe(a.state);
  expect(await addrs(t.ns, a.bridge, true), `${a.bridge} addresses`).toBe(a.address);
}

/** veth: host side on the bridge, eth0 in the endpoint's namespace with address, MTU, default route, MAC; it pings its gateway. tap: on the bridge. */
async function checkEndpoint(t: Target, c: Json): Promise<void> {
  const a = c.after;
  if (a.type === "veth") {
    await expectVeth(t.ns, { name: c.name, hostIf: a.host_if, bridge: a.bridge, netns: a.netns, ip: a.ip, gateway: a.gateway, mtu: Number(a.mtu) });
    if (a.mac) expect((await link(a.netns, "eth0")).address, `${c.name}: MAC of eth0`).toBe(a.mac);
    expect(await ping(a.netns, a.gateway), `${c.name} → its gateway ${a.gateway}`).toBe(true);
    if (a.ip6) {
      // Dual-stack: the IPv6 address beside the IPv4 one, the IPv6 default route, and the IPv6 gateway answers.
      expect(await addrs(a.netns, "eth0"), `${c.name}: eth0 addresses`).toBe(`${a.ip}, ${a.ip6}`);
      const r6 = (await ipJson(a.netns, ["-6", "route", "show", "default"])) as Json[];
      expect(r6.map((r) => r.gateway)).toEqual([a.gateway6]);
      expect(await ping(a.netns, a.gateway6), `${c.name} → its IPv6 gateway ${a.gateway6}`).toBe(true);
    }
  } else if (a.type === "tap") {
    await expectTap(t.ns, { name: c.name, hostIf: a.host_if, bridge: a.bridge, mtu: Number(a.mtu) });
    if (a.mac) expect((await link(t.ns, a.host_if)).address, `${c.name}: MAC of ${a.host_if}`).toBe(a.mac);
  } else expect.fail(`${c.address}: endpoint type "${a.type}" has no kernel check`);
  expect(flagsState((await link(t.ns, a.host_if)).flags)).toBe(a.state);
}

/** `sysctl -n` inside the namespace (multi-value keys compared on single spaces). */
async function checkSysctl(t: Target, c: Json): Promise<void> {
  expect((await sysctlGet(t.ns, c.name)).split(/\s+/).join(" "), c.name).toBe(c.after.value);
}

const hash8 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8);

async function nftTable(ns: string): Promise<Json[] | undefined> {
  const r = await run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "bolt"]);
  if (r.code !== 0) {
    expect(r.stderr).toMatch(/No such file or directory/);
    return undefined;
  }
  return (JSON.parse(r.stdout) as Json).nftables;
}

interface KeyedRule {
  chain: string;
  key: string;
  hash: string;
  rule: Json;
}

/** The rules of bolt's table with their `bolt:<key>|<hash>` comments; a rule without one fails. */
function keyedRules(items: Json[]): KeyedRule[] {
  return items
    .filter((i) => i.rule)
    .map((i) => {
      const m = /^bolt:(.+)\|([0-9a-f]{8})$/.exec(i.rule.comment ?? "");
      expect(m, `rule in chain ${i.rule.chain} without bolt's comment: ${JSON.stringify(i.rule.expr)}`).toBeTruthy();
      return { chain: i.rule.chain, key: m![1]!, hash: m![2]!, rule: i.rule };
    });
}

/**
 * bolt's table `inet bolt`, field by field of the plan: every chain with its type, hook,
 * priority and policy; every set with its comment hash and element count (dynamic sets: the
 * dynamic flag); every rule, found by its comment key in its chain with the planned hash; each
 * chain's rule order (sha256 of the keys in kernel order, as the plan's `<chain> order`
 * field); and no chain, set or rule the plan did not name. Port-forward rules are read as text
 * too: they match the host port and DNAT.
 */
async function checkNft(t: Target, c: Json): Promise<void> {
  expect(c.name).toBe("inet bolt");
  const items = await nftTable(t.ns);
  expect(items, `nft table inet bolt in ${t.ns}`).toBeDefined();
  const chains = new Map<string, Json>(items!.filter((i) => i.chain).map((i) => [i.chain.name, i.chain]));
  const sets = new Map<string, Json>(items!.filter((i) => i.set).map((i) => [i.set.name, i.set]));
  const rules = keyedRules(items!);
  const text = await must(["ip", "netns", "exec", t.ns, "nft", "list", "table", "inet", "bolt"]);
  const planned = { chains: [] as string[], sets: [] as string[], rules: [] as string[] };
  for (const [field, value] of Object.entries(c.after as Record<string, string>)) {
    let m: RegExpExecArray | null;
    if ((m = /^chain (\S+)$/.exec(field))) {
      const ch = chains.get(m[1]!);
      expect(ch, field).toBeDefined();
      expect(ch.hook ? `${ch.type} ${ch.hook} ${ch.prio} ${ch.policy}` : "regular", field).toBe(value);
      planned.chains.push(m[1]!);
    } else if ((m = /^set (\S+)$/.exec(field))) {
      const s = sets.get(m[1]!);
      expect(s, field).toBeDefined();
      const v = /^(?:dynamic|(\d+) elements) ([0-9a-f]{8})$/.exec(value);
      expect(v, `${field} = "${value}"`).toBeTruthy();
      if (v![1] === undefined) {
        expect(s.comment, field).toBe(`bolt:d:${v![2]}`);
        // nft -j (1.0.6) lists the flags of a "dynamic,timeout" set as ["timeout"]: read the text.
        expect(text, `${field}: flags dynamic`).toMatch(new RegExp(`set ${m[1]} \\{[^}]*flags [a-z,]*dynamic`));
      } else {
        expect(s.comment, field).toBe(`bolt:${v![2]}`);
        expect((s.elem ?? []).length, `${field}: elements`).toBe(Number(v![1]));
      }
      planned.sets.push(m[1]!);
    } else if ((m = /^(\S+) order$/.exec(field))) {
      const keys = rules.filter((r) => r.chain === m![1]).map((r) => r.key);
      expect(hash8(keys.join("\n")), `${field}: kernel order ${keys.join(", ")}`).toBe(value);
    } else if ((m = /^(\S+) (\S+)$/.exec(field))) {
      const hits = rules.filter((r) => r.chain === m![1] && r.key === m![2]);
      expect(
        hits.map((r) => r.hash),
        field,
      ).toEqual([value]);
      planned.rules.push(field);
    } else expect.fail(`nft field "${field}" is not understood by this check`);
  }
  expect([...chains.keys()].sort(), "chains in the kernel").toEqual(planned.chains.sort());
  expect([...sets.keys()].sort(), "sets in the kernel").toEqual(planned.sets.sort());
  expect(rules.map((r) => `${r.chain} ${r.key}`).sort(), "rules in the kernel").toEqual(planned.rules.sort());

  for (const r of rules) {
    const pf = /^port-forward:(tcp|udp):(?:[\d.]+:)?(\d+)$/.exec(r.key);
    if (!pf || !r.chain.startsWith("nat_")) continue;
    const line = text.split("\n").find((l) => l.includes(`"bolt:${r.key}|${r.hash}"`));
    expect(line, `${r.chain} ${r.key} as text`).toMatch(new RegExp(`${pf[1]} dport ${pf[2]} .*dnat ip to \\d+\\.\\d+\\.\\d+\\.\\d+:\\d+`));
  }
}

/** ip prints host routes without "/32". */
const normDst = (dst: string) => (dst === "default" || dst.includes("/") ? dst : `${dst}/32`);

/** A route `table/dst`: in that table, bolt's protocol 176, the planned device and gateway. */
async function checkRoute(t: Target, c: Json): Promise<void> {
  const i = c.name.indexOf("/");
  const [table, dst] = [c.name.slice(0, i), c.name.slice(i + 1)];
  // An IPv6 route (a mesh peer's /128, ::/0 of an exit node): ip prints its default as "default", a host without /128.
  const six = dst.includes(":");
  const norm6 = (d: string) => (d === "default" ? "::/0" : d.includes("/") ? d : `${d}/128`);
  const routes = ((await ipJson(t.ns, [six ? "-6" : "-4", "route", "show", "table", table])) as Json[]).filter(
    (r) => (six ? norm6(r.dst) : normDst(r.dst)) === dst,
  );
  expect(routes.length, `route ${dst} in table ${table}`).toBe(1);
  const r = routes[0];
  expect(String(r.protocol), `${c.name}: protocol`).toBe("176");
  expect(r.dev, `${c.name}: dev`).toBe(c.after.dev);
  expect(r.gateway ?? "", `${c.name}: via`).toBe(c.after.via ?? "");
}

/** A policy rule: its priority, protocol 176, table, and the selector the plan names. */
async function checkRule(t: Target, c: Json): Promise<void> {
  const a = c.after;
  // "v6:PRIORITY": the same rule in the IPv6 rule list.
  const six = c.name.startsWith("v6:");
  const rules = ((await ipJson(t.ns, [...(six ? ["-6"] : []), "rule", "show"])) as Json[]).filter((r) => r.priority === Number(six ? c.name.slice(3) : c.name));
  expect(rules.length, `rule priority ${c.name}`).toBe(1);
  const r = rules[0];
  expect(String(r.protocol), `rule ${c.name}: protocol`).toBe("176");
  expect(String(r.table), `rule ${c.name}: table`).toBe(a.table);
  let m: RegExpExecArray | null;
  if ((m = /^suppress_prefixlength (\d+)$/.exec(a.selector))) {
    expect(r.suppress_prefixlen, `rule ${c.name}: ${a.selector}`).toBe(Number(m[1]));
    expect(r.fwmark).toBeUndefined();
  } else if ((m = /^(not )?fwmark (0x[0-9a-f]+)\/(0x[0-9a-f]+)$/.exec(a.selector))) {
    expect(Number(r.fwmark), `rule ${c.name}: fwmark`).toBe(Number(m[2]));
    expect(Number(r.fwmask ?? "0xffffffff"), `rule ${c.name}: fwmask`).toBe(Number(m[3]));
    expect("not" in r, `rule ${c.name}: not`).toBe(!!m[1]);
  } else expect.fail(`rule ${c.name}: selector "${a.selector}" is not understood by this check`);
}

async function wg(ns: string, dev: string, what: string): Promise<string> {
  return (await must(wgIn(ns, ["show", dev, what]))).trim();
}

interface WgPeer {
  publicKey: string;
  psk: "set" | "none";
  endpoint: string;
  allowedIps: string;
  rx: number;
  tx: number;
  keepalive: string;
}

/** The peers of `wg show IF dump` (the interface line, which holds the private key, is dropped unread). */
async function wgPeers(ns: string, dev: string): Promise<WgPeer[]> {
  const lines = (await wg(ns, dev, "dump")).split("\n").slice(1).filter(Boolean);
  return lines
    .map((l) => l.split("\t"))
    .map((f) => ({
      publicKey: f[0]!,
      psk: f[1] === "(none)" ? "none" : "set",
      endpoint: f[2]!,
      allowedIps: f[3]!,
      rx: Number(f[5]),
      tx: Number(f[6]),
      keepalive: f[7]!,
    }));
}

/** The WireGuard interface: link (tun served by wireguard-go, or kernel wireguard), alias, MTU, state, addresses; key, port and fwmark from `wg show`; its wireguard-go runs in this namespace. */
async function checkWireguard(t: Target, c: Json): Promise<void> {
  const a = c.after;
  const dev = c.name;
  const l = await link(t.ns, dev);
  expect(l.linkinfo?.info_kind, `${dev}: ${a.type}`).toBe(a.type === "userspace" ? "tun" : "wireguard");
  expect(l.ifalias, `${dev}: alias`).toMatch(new RegExp(`^bolt1,(.*,)?wg=${dev}(,|$)`));
  expect(l.mtu).toBe(Number(a.mtu));
  expect(flagsState(l.flags)).toBe(a.state);
  // The interface's addresses of both families in one sorted list, as bolt's reader keeps them.
  expect((await addrs(t.ns, dev)).split(", ").filter(Boolean).sort().join(", "), `${dev}: addresses`).toBe(a.address);
  expect(await wg(t.ns, dev, "public-key"), `${dev}: public key`).toBe(a.public_key);
  expect(await wg(t.ns, dev, "listen-port"), `${dev}: listen port`).toBe(a.listen_port || "0");
  expect(await wg(t.ns, dev, "fwmark"), `${dev}: fwmark`).toBe(a.fwmark || "off");
  if (a.type === "userspace") {
    // Other namespaces (other tests running now) have their own `gw0`: counted in this one.
    const pids = await wgPidsIn(t.ns, dev);
    expect(pids.length, `one wireguard-go ${dev} in ${t.ns}`).toBe(1);
    expect(existsSync(join(wgSocketDir(t.ns), `${dev}.sock`)), `${dev}: its control socket is ${t.ns}'s own`).toBe(true);
  }
}

/** A peer `IF/PUBKEY` in `wg show IF dump`: allowed IPs, endpoint, keepalive, and whether a PSK is set. */
async function checkWgPeer(t: Target, c: Json): Promise<void> {
  const a = c.after;
  const i = c.name.indexOf("/");
  const [dev, pub] = [c.name.slice(0, i), c.name.slice(i + 1)];
  const p = (await wgPeers(t.ns, dev)).find((x) => x.publicKey === pub);
  expect(p, `peer ${pub} on ${dev}`).toBeDefined();
  expect(p!.allowedIps === "(none)" ? "" : p!.allowedIps.split(",").sort().join(","), `${c.name}: allowed IPs`).toBe(a.allowed_ips);
  // No endpoint in the config: the peer dials in, and whatever it dialled from is right.
  if (a.endpoint) expect(p!.endpoint, `${c.name}: endpoint`).toBe(a.endpoint);
  expect(p!.keepalive, `${c.name}: persistent keepalive`).toBe(a.persistent_keepalive || "off");
  const psk = a.preshared_key === "(sensitive)" ? t.psk(dev, pub) : !!a.preshared_key;
  expect(p!.psk, `${c.name}: preshared key`).toBe(psk ? "set" : "none");
}

const HOSTS_BEGIN = "# BEGIN bolt magic_dns";
const HOSTS_END = "# END bolt magic_dns";

/** Magic DNS: one bolt block in the namespace's hosts file with exactly the planned entries, and each name resolves inside the namespace. */
async function checkHosts(t: Target, c: Json): Promise<void> {
  const a = c.after;
  expect(a.file).toBe(`/etc/netns/${t.ns}/hosts`);
  const lines = readFileSync(a.file, "utf8").split("\n");
  const b = lines.filter((l) => l.startsWith(HOSTS_BEGIN));
  expect(b.length, `one bolt block in ${a.file}`).toBe(1);
  expect(lines.filter((l) => l === HOSTS_END).length).toBe(1);
  const block = lines.slice(lines.indexOf(b[0]!) + 1, lines.indexOf(HOSTS_END)).filter(Boolean);
  expect(block, `entries in ${a.file}`).toEqual(String(a.entries).split("; "));
  for (const entry of block) {
    const [ip, name] = entry.split(/\s+/);
    const r = await run(["ip", "netns", "exec", t.ns, "getent", "hosts", name!]);
    expect(r.code, `${name} resolves in ${t.ns}`).toBe(0);
    expect(r.stdout.trim().split(/\s+/), name).toEqual([ip, name]);
  }
}

/**
 * A resolver file (/etc/netns/NS/hosts or resolv.conf, what `ip netns exec NS` binds): its bytes
 * have the planned digest, a hosts file's entries resolve by name inside the namespace, and a
 * resolv.conf lists the planned nameservers in order.
 */
async function checkResolver(_t: Target, c: Json): Promise<void> {
  const a = c.after;
  const text = readFileSync(a.file, "utf8");
  expect(createHash("sha256").update(text).digest("hex").slice(0, 16), `bytes of ${a.file}`).toBe(a.content);
  const ns = String(a.file).split("/")[3]!;
  const body = text.split("\n").filter((l) => l && !l.startsWith("#"));
  if (String(a.file).endsWith("/hosts")) {
    const entries = body.filter((l) => !l.startsWith("127.0.0.1\t") && !l.startsWith("::1\t"));
    expect(String(entries.length), `entries in ${a.file}`).toBe(a.entries);
    for (const entry of entries) {
      const [ip, name] = entry.split(/\s+/);
      // By address: a dual-stack name has two entries, and getent by name gives one of them.
      const r = await run(["ip", "netns", "exec", ns, "getent", "hosts", ip!]);
      expect(r.code, `${ip} resolves in ${ns}`).toBe(0);
      expect(r.stdout.trim().split(/\s+/).slice(1), ip).toContain(name);
    }
  } else
    expect(
      body
        .filter((l) => l.startsWith("nameserver "))
        .map((l) => l.split(/\s+/)[1])
        .join(", "),
    ).toBe(a.nameservers);
}

/** bolt's ACCEPT rules in Docker's DOCKER-USER chain (`-i`/`-o` BRIDGE, comment bolt:BRIDGE). */
async function dockerUserRules(ns: string): Promise<{ bolt: string[]; firstForeign: number; lines: string[] } | undefined> {
  const r = await run(["ip", "netns", "exec", ns, "iptables", "-v", "-S", "DOCKER-USER"]);
  if (r.code !== 0) return undefined;
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("-A DOCKER-USER "));
  const bolt = lines
    .map((l) => /^-A DOCKER-USER (-i|-o) (\S+) -m comment --comment "?bolt:(\S+?)"? -c \d+ \d+ -j ACCEPT$/.exec(l))
    .filter((m) => m && m[2] === m[3])
    .map((m) => `${m![1] === "-i" ? "in" : "out"} ${m![2]}`);
  const firstForeign = lines.findIndex((l) => !/--comment "?bolt:/.test(l));
  return { bolt, firstForeign: firstForeign < 0 ? lines.length : firstForeign, lines };
}

/** docker-user BRIDGE: ACCEPT in and out of the bridge in DOCKER-USER, ahead of Docker's own rules. */
async function checkDockerUser(t: Target, c: Json): Promise<void> {
  const d = await dockerUserRules(t.ns);
  expect(d, "a DOCKER-USER chain").toBeDefined();
  for (const dir of ["in", "out"] as const) {
    const want = c.after[dir] === "accept";
    expect(d!.bolt.includes(`${dir} ${c.name}`), `DOCKER-USER ${dir} ${c.name}:\n${d!.lines.join("\n")}`).toBe(want);
  }
  expect(d!.firstForeign, `bolt's rules come before Docker's:\n${d!.lines.join("\n")}`).toBeGreaterThanOrEqual(d!.bolt.length);
}

/** What bolt owns in the namespace is exactly what the plan created: no extra link, route, rule, peer, nft table, hosts block or DOCKER-USER rule. */
async function expectNothingUnplanned(t: Target): Promise<void> {
  const planned = (k: string) => t.changes.filter((c) => c.kind === k);
  const links = (await ipJson(t.ns, ["link", "show"])) as Json[];
  expect(
    links
      .filter((l) => String(l.ifalias ?? "").startsWith("bolt1,"))
      .map((l) => l.ifname)
      .sort(),
    "links with bolt's alias",
  ).toEqual(
    [...planned("network").map((c) => c.after.bridge), ...planned("endpoint").map((c) => c.after.host_if), ...planned("wireguard").map((c) => c.name)].sort(),
  );
  // Both families (IPv6: a mesh peer's /128, ::/0 of an exit node), named as the plan names them.
  const v6dst = (d: string) => (d === "default" ? "::/0" : d.includes("/") ? d : `${d}/128`);
  const routes = [
    ...((await ipJson(t.ns, ["-4", "route", "show", "table", "all"])) as Json[]).map((r) => ({ ...r, dst: normDst(r.dst) })),
    ...((await ipJson(t.ns, ["-6", "route", "show", "table", "all"])) as Json[]).map((r) => ({ ...r, dst: v6dst(r.dst) })),
  ].filter((r) => String(r.protocol) === "176");
  expect(routes.map((r) => `${r.table ?? "main"}/${r.dst}`).sort(), "routes with protocol 176").toEqual(
    planned("route")
      .map((c) => c.name)
      .sort(),
  );
  const mine = async (family: string[], prefix: string) =>
    ((await ipJson(t.ns, [...family, "rule", "show"])) as Json[]).filter((r) => String(r.protocol) === "176").map((r) => `${prefix}${r.priority}`);
  const rules = [...(await mine([], "")), ...(await mine(["-6"], "v6:"))];
  expect(rules.sort(), "rules with protocol 176").toEqual(
    planned("rule")
      .map((c) => c.name)
      .sort(),
  );
  for (const w of planned("wireguard")) {
    const peers = (await wgPeers(t.ns, w.name)).map((p) => `${w.name}/${p.publicKey}`).sort();
    expect(peers, `peers of ${w.name}`).toEqual(
      planned("wg-peer")
        .filter((c) => c.name.startsWith(`${w.name}/`))
        .map((c) => c.name)
        .sort(),
    );
  }
  if (!planned("nft").length) expect(await nftTable(t.ns), "no nft table inet bolt").toBeUndefined();
  const hostsFile = `/etc/netns/${t.ns}/hosts`;
  if (!planned("hosts").length && existsSync(hostsFile)) expect(readFileSync(hostsFile, "utf8")).not.toContain(HOSTS_BEGIN);
  const d = await dockerUserRules(t.ns);
  if (d)
    expect(d.bolt.sort(), "bolt's DOCKER-USER rules").toEqual(
      planned("docker-user")
        .flatMap((c) => (["in", "out"] as const).filter((dir) => c.after[dir] === "accept").map((dir) => `${dir} ${c.name}`))
        .sort(),
    );
}

// ---------------------------------------------------------------------------------------------
// One-host examples: the setup and the traffic.

/** Docker's filter setup, as far as bolt is concerned: FORWARD policy DROP, FORWARD jumps to DOCKER-USER first. */
async function dockerHost(ns: string): Promise<void> {
  const ipt = (...a: string[]) => must(["ip", "netns", "exec", ns, "iptables", ...a]);
  await ipt("-N", "DOCKER-USER");
  await ipt("-A", "DOCKER-USER", "-j", "RETURN");
  await ipt("-A", "FORWARD", "-j", "DOCKER-USER");
  await ipt("-P", "FORWARD", "DROP");
}

/** With Docker's FORWARD DROP, forwarded traffic only passes on bolt's DOCKER-USER accepts: their counters moved. */
async function expectDockerUserCounted(ns: string, changes: Json[]): Promise<void> {
  const out = await must(["ip", "netns", "exec", ns, "iptables", "-v", "-S", "DOCKER-USER"]);
  const bridges = changes.filter((c) => c.kind === "docker-user").map((c) => c.name);
  expect(bridges.length, "docker-user rules planned on the Docker host").toBeGreaterThan(0);
  const counted = out.split("\n").filter((l) => / -c [1-9]\d* /.test(l) && /--comment "?bolt:/.test(l));
  expect(counted.length, `packets accepted by bolt's DOCKER-USER rules:\n${out}`).toBeGreaterThan(0);
}

interface Ep {
  name: string;
  network: string;
  netns: string;
  addr: string;
  gateway: string;
}

function veths(changes: Json[]): Ep[] {
  return changes
    .filter((c) => c.kind === "endpoint" && c.after.type === "veth")
    .map((c) => ({ name: c.name, network: c.after.network, netns: c.after.netns, addr: String(c.after.ip).split("/")[0]!, gateway: c.after.gateway }));
}

/** Same network: ping. Different networks, one of them isolated (the default): nothing. Internet (the default): the outside answers through NAT; without: nothing. */
async function endpointTraffic(topo: Topology, cfg: Json, changes: Json[]): Promise<void> {
  const eps = veths(changes);
  const net = (name: string): Json => cfg.networks?.[name] ?? {};
  for (const [i, a] of eps.entries()) {
    for (const b of eps.slice(i + 1)) {
      if (a.network === b.network) expect(await ping(a.netns, b.addr), `${a.name} → ${b.name} (same network)`).toBe(true);
      else if (net(a.network).isolated !== false || net(b.network).isolated !== false) {
        expect(await topo.noReply(a.netns, b.addr), `${a.name} ↛ ${b.name} (isolated networks)`).toBe(true);
        expect(await topo.noReply(b.netns, a.addr), `${b.name} ↛ ${a.name} (isolated networks)`).toBe(true);
      }
    }
  }
  for (const e of eps) {
    if (net(e.network).internet !== false) expect(await ping(e.netns, UPLINK.outside), `${e.name} → the outside (masquerade)`).toBe(true);
    else expect(await topo.noReply(e.netns, UPLINK.outside), `${e.name} ↛ the outside (internet = false)`).toBe(true);
  }
}

function portForwards(cfg: Json): Json[] {
  return (cfg.port_forwards ?? cfg.networking?.port_forwards ?? []) as Json[];
}

/** Every port forward: a server in the target endpoint answers on the host's uplink address, from the outside and from the host itself. */
async function portForwardTraffic(topo: Topology, cfg: Json, changes: Json[]): Promise<void> {
  const eps = veths(changes);
  const serving = new Set<string>();
  for (const pf of portForwards(cfg)) {
    const to = String(pf.to);
    const i = to.lastIndexOf(":");
    const [target, port] = [to.slice(0, i), Number(to.slice(i + 1))];
    const ep = eps.find((e) => e.name === target || e.addr === target);
    expect(ep, `port forward ${pf.host_port} → ${to}: the target is an endpoint of this example`).toBeDefined();
    expect(pf.host_ip, "host_ip forwards are not covered by this test").toBeUndefined();
    const proto = pf.protocol === "udp" ? "udp" : "tcp";
    const banner = `${ep!.name}-${proto}-${port}`;
    if (!serving.has(banner)) {
      await (proto === "udp" ? topo.serveUdp(ep!.netns, port, banner) : topo.serveTcp(ep!.netns, port, banner));
      serving.add(banner);
    }
    const send = (ns: string) => (proto === "udp" ? topo.udp(ns, UPLINK.host, Number(pf.host_port)) : topo.tcp(ns, UPLINK.host, Number(pf.host_port)));
    expect(await send(topo.outside), `${proto} ${UPLINK.host}:${pf.host_port} from the outside → ${to}`).toBe(banner);
    expect(await send(topo.host), `${proto} ${UPLINK.host}:${pf.host_port} from the host itself → ${to}`).toBe(banner);
  }
}

/** TCP from NS with a given source address; the banner, or undefined. */
async function tcpFrom(ns: string, src: string, ip: string, port: number, sec = 2): Promise<string | undefined> {
  const r = await run(["ip", "netns", "exec", ns, "nc", "-n", "-N", "-s", src, "-w", String(sec), ip, String(port)], "");
  const out = r.stdout.trim();
  return r.code === 0 && out ? out : undefined;
}

/** Packets counted by each rule of bolt's table, "chain key" → packets (read with nft -j). */
async function nftCounters(ns: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of keyedRules((await nftTable(ns)) ?? [])) {
    const ctr = (r.rule.expr as Json[]).find((e) => "counter" in e)?.counter;
    if (ctr) out[`${r.chain} ${r.key}`] = ctr.packets;
  }
  return out;
}

/** What one example's firewall says, proven by traffic (keyed by file name). */
const TRAFFIC: Record<string, { what: string; run: (topo: Topology, changes: Json[]) => Promise<void> }> = {
  "firewall.toml": {
    what: "ssh only from the admin net, blocklisted sources dropped, the data tier's one port, smtp rejected, a ping flood cut to its rate",
    async run(topo, changes) {
      const ep = (name: string) => veths(changes).find((e) => e.name === name)!;
      const [web, game, db] = [ep("web"), ep("game"), ep("db")];
      const ADMIN = "192.0.2.10"; // in ssh-from-admin's 192.0.2.0/24
      const BLOCKED = "203.0.113.7"; // in firewall-blocklist.txt
      for (const a of [ADMIN, BLOCKED]) await must(["ip", "-n", topo.outside, "address", "add", `${a}/32`, "dev", "eth0"]);

      // no-ssh (priority 20) drops SSH to the host; ssh-from-admin (priority 10) comes first for the admin net.
      await topo.serveTcp(topo.host, 22, "host-ssh");
      expect(await topo.tcp(topo.outside, UPLINK.host, 22, 1), "ssh from the outside").toBeUndefined();
      expect(await topo.tcp(web.netns, web.gateway, 22, 1), "ssh from an endpoint").toBeUndefined();
      expect(await tcpFrom(topo.outside, ADMIN, UPLINK.host, 22), "ssh from the admin net").toBe("host-ssh");

      // A blocklisted source gets nothing, not even the published port (the same port answers others).
      expect(await tcpFrom(topo.outside, BLOCKED, UPLINK.host, 8080, 1), "port forward from a blocklisted source").toBeUndefined();
      expect(await topo.tcp(topo.outside, UPLINK.host, 8080), "the same port forward from the outside").toBe("web-tcp-80");

      // The data tier: the dmz reaches PostgreSQL, nothing else of the backend (isolation); the backend reaches nothing of the dmz.
      await topo.serveTcp(db.netns, 5432, "db-5432");
      await topo.serveTcp(db.netns, 6379, "db-6379");
      expect(await topo.tcp(web.netns, db.addr, 5432), "web → db:5432").toBe("db-5432");
      expect(await topo.tcp(game.netns, db.addr, 5432), "game → db:5432").toBe("db-5432");
      expect(await topo.tcp(web.netns, db.addr, 6379, 1), "web → db:6379").toBeUndefined();
      expect(await topo.tcp(db.netns, web.addr, 80, 1), "db → web:80 (web-budget allows only external sources)").toBeUndefined();

      // no-smtp-out: a TCP reset at once (not a timeout); another port goes out through NAT.
      await topo.serveTcp(topo.outside, 25, "smtp");
      await topo.serveTcp(topo.outside, 587, "submission");
      const t0 = Date.now();
      expect(await topo.tcp(web.netns, UPLINK.outside, 25, 5), "web → outside:25").toBeUndefined();
      expect(Date.now() - t0, "rejected, not dropped").toBeLessThan(3000);
      expect(await topo.tcp(web.netns, UPLINK.outside, 587), "web → outside:587").toBe("submission");

      // ping-flood: echo requests to the host over 10/s (burst 20) are dropped, the rest answered.
      const key = "firewall rule:ping-flood";
      const before = (await nftCounters(topo.host))[key];
      expect(before, `counter of ${key}`).toBeTypeOf("number");
      const sent = 300;
      const t1 = Date.now();
      const received = await topo.flood(topo.outside, UPLINK.host, sent);
      const seconds = (Date.now() - t1) / 1000;
      const dropped = (await nftCounters(topo.host))[key]! - before!;
      expect(received + dropped, "every echo request was either answered or dropped by ping-flood").toBe(sent);
      expect(dropped).toBeGreaterThan(sent / 2);
      expect(received).toBeLessThanOrEqual(Math.ceil(10 * (seconds + 1)) + 20);
      expect(received).toBeGreaterThanOrEqual(10);
    },
  },
};

// ---------------------------------------------------------------------------------------------
// The mesh example: which host a file is, and its copy with this run's keys.

/** The mesh part of a file: ghostwire.toml's top level, or a [meshvpn] table. */
function meshData(cfg: Json): Json {
  return cfg.node ? cfg : cfg.meshvpn;
}

function hostOf(name: string): HostId {
  const h = HOSTS.find((x) => hostname(x) === name);
  expect(h, `"${name}" is one of the lab's hosts (${HOSTS.map(hostname).join(", ")})`).toBeDefined();
  return h!;
}

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Host h's file as this run applies it: its private_key_file → the key generated for h, each
 * peer's placeholder public key → that peer's generated one, the interface → the lab's name
 * for h. Each replaced text must occur exactly once; nothing else changes.
 */
function meshCopy(src: string, cfg: Json, h: HostId, lab: MeshLab): string {
  let text = readFileSync(src, "utf8");
  // The replacement keeps the match's first group (the `key = ` before a value), if any.
  const once = (re: RegExp, to: string, what: string) => {
    const n = [...text.matchAll(new RegExp(re.source, `${re.flags}g`))].length;
    expect(n, `${rel(src)}: ${what} (${re.source}) must occur exactly once`).toBe(1);
    text = text.replace(re, (_m, before: unknown) => `${typeof before === "string" ? before : ""}${to}`);
  };
  const node = cfg.node;
  expect(node.interface, `${rel(src)}: [node] names its interface`).toBeTypeOf("string");
  expect(node.private_key_file, `${rel(src)}: [node] names its private_key_file`).toBeTypeOf("string");
  once(new RegExp(`^(\\s*interface\\s*=\\s*)"${reEscape(node.interface)}"`, "m"), JSON.stringify(lab.ifname(h)), "the interface");
  once(new RegExp(`^(\\s*private_key_file\\s*=\\s*)"${reEscape(node.private_key_file)}"`, "m"), JSON.stringify(lab.keyFile(h)), "the private_key_file");
  for (const p of cfg.peers as Json[])
    once(new RegExp(`"${reEscape(p.public_key)}"`), JSON.stringify(lab.pub[hostOf(p.hostname)]), `the public key of ${p.hostname}`);
  return text;
}

/** Bytes host h sent to and received from peer p, from `wg show dump` (not `bolt mesh status`). */
async function transfer(lab: MeshLab, h: HostId, p: HostId): Promise<{ rx: number; tx: number }> {
  const peer = (await wgPeers(lab.ns(h), lab.ifname(h))).find((x) => x.publicKey === lab.pub[p]);
  expect(peer, `${p} is a peer of ${h}`).toBeDefined();
  return { rx: peer!.rx, tx: peer!.tx };
}
