// The daemon's read cache: what it may keep (reads the target's monitors cover), what it never
// keeps, and when it forgets (an event, a write, a monitor that is not running, an event that
// overtook a read in flight).
import { describe, expect, it } from "vitest";
import { ReadCacheRunner, classify } from "../../src/exec/read-cache-runner.js";
import { readsNetnsFiles } from "../../src/watch/netns-files-watch.js";
import type { CommandRunner, RunResult } from "../../src/exec/runner.js";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadIntent } from "../../src/cli/config.js";
import type { Intent } from "../../src/core/intent.js";
import type { MeshSnapshot } from "../../reconcilers/wireguard/store.js";
import { storeNode, writeMeshHostConf } from "./helpers/builders.js";
import { converge, intentOf, newWorld, planIntent, wgKeyPair, writeConfigs, writeKeyFile } from "./helpers/pipeline.js";

const EXAMPLE = readFileSync(fileURLToPath(new URL("../../examples/bolt-network.toml", import.meta.url)), "utf8");

const T = "bolt-t-cache";

class CountingRunner implements CommandRunner {
  calls: string[] = [];
  answer = "A";
  gate?: Promise<void>;
  async run(argv: string[]): Promise<RunResult> {
    this.calls.push(argv.join(" "));
    const answer = this.answer;
    if (this.gate) await this.gate;
    return { stdout: answer, stderr: "", code: 0 };
  }
}

describe("classify", () => {
  it("keeps only reads of the target the monitors cover", () => {
    expect(classify(["ip", "-n", T, "-j", "-d", "link", "show"], undefined, T)).toBe("cacheable");
    expect(classify(["ip", "-n", T, "-j", "-4", "route", "show", "table", "all"], undefined, T)).toBe("cacheable");
    expect(classify(["ip", "-n", T, "-j", "rule", "show"], undefined, T)).toBe("cacheable");
    expect(classify(["ip", "netns", "exec", T, "nft", "-j", "list", "table", "inet", "bolt"], undefined, T)).toBe("cacheable");
    expect(classify(["ip", "-n", T, "-j", "-batch", "-"], "route get 10.0.0.1\nlink show\n", T)).toBe("cacheable");
    // an endpoint's own namespace sends the target no events; nor does the namespace list
    expect(classify(["ip", "-n", `${T}-web`, "-j", "-batch", "-"], "addr show\nroute show\n", T)).toBe("read");
    expect(classify(["ip", "-j", "netns", "list"], undefined, T)).toBe("read");
    expect(classify(["ip", "-n", T, "-j", "-batch", "-"], "netns list\n", T)).toBe("read");
    expect(classify(["ip", "netns", "exec", T, "sysctl", "-n", "net.ipv4.ip_forward"], undefined, T)).toBe("read");
    expect(classify(["nsenter", "--net=/run/netns/x", "--mount=/m", "--", "wg", "show", "gw0", "dump"], undefined, T)).toBe("read");
    expect(classify(["ip", "netns", "exec", T, "tc", "-j", "qdisc", "show"], undefined, T)).toBe("read");
    // Docker's chains are read every plan (firewall analysis): a read, or it would empty the cache each time
    expect(classify(["ip", "netns", "exec", T, "iptables-save", "-t", "filter"], undefined, T)).toBe("read");
    expect(classify(["ip", "netns", "exec", T, "iptables", "-S", "DOCKER-USER"], undefined, T)).toBe("read");
    expect(classify(["find", "/etc/netns", "-name", "hosts", "-exec", "tail", "-v", "-n", "+1", "--", "{}", "+"], undefined, T)).toBe("read");
    expect(classify(["modprobe", "-n", "-q", "wireguard"], undefined, T)).toBe("read");
    expect(classify(["modprobe", "-nq", "wireguard"], undefined, T)).toBe("read");
  });

  it("anything not known to be a read is a write", () => {
    expect(classify(["ip", "-n", T, "-batch", "-"], "link add name b0 type bridge\n", T)).toBe("write");
    expect(classify(["ip", "-n", T, "-j", "-batch", "-"], "link show\nlink set dev lo up\n", T)).toBe("write");
    expect(classify(["ip", "netns", "exec", T, "nft", "-f", "-"], undefined, T)).toBe("write");
    expect(classify(["ip", "netns", "exec", T, "sysctl", "-w", "net.ipv4.ip_forward=1"], undefined, T)).toBe("write");
    expect(classify(["nsenter", "--", "wg", "set", "gw0", "peer", "K", "remove"], undefined, T)).toBe("write");
    expect(classify(["ip", "netns", "exec", T, "tc", "-batch", "-"], "qdisc add dev x root handle b017: htb\n", T)).toBe("write");
    expect(classify(["tee", "/etc/netns/x/hosts"], "x", T)).toBe("write");
    expect(classify(["ip", "netns", "add", "x"], undefined, T)).toBe("write");
    expect(classify(["something-new"], undefined, T)).toBe("write");
    expect(classify(["modprobe", "-q", "wireguard"], undefined, T)).toBe("write");
    expect(classify(["find", "/etc/netns", "-name", "x", "-delete"], undefined, T)).toBe("write");
    expect(classify(["find", "/etc/netns", "-exec", "rm", "{}", "+"], undefined, T)).toBe("write");
    expect(classify(["ip", "netns", "exec", T, "iptables", "-I", "DOCKER-USER", "-j", "ACCEPT"], undefined, T)).toBe("write");
  });
});

describe("ReadCacheRunner", () => {
  const LINK = ["ip", "-n", T, "-j", "-d", "link", "show"];

  it("answers a covered read from the cache until an event, a write or a stopped monitor", async () => {
    const inner = new CountingRunner();
    let live = true;
    const r = new ReadCacheRunner(inner, T, () => live);
    await r.run(LINK);
    await r.run(LINK);
    expect(inner.calls).toHaveLength(1);
    expect(r.hits).toBe(1);
    r.invalidate(); // a monitor event
    await r.run(LINK);
    expect(inner.calls).toHaveLength(2);
    await r.run(["ip", "-n", T, "-batch", "-"], "link set dev lo up\n"); // a write
    await r.run(LINK);
    expect(inner.calls).toHaveLength(4);
    live = false; // a monitor restarting: events may be lost
    await r.run(LINK);
    await r.run(LINK);
    expect(inner.calls).toHaveLength(6);
    // uncovered reads always run
    live = true;
    await r.run(["ip", "-j", "netns", "list"]);
    await r.run(["ip", "-j", "netns", "list"]);
    expect(inner.calls.filter((c) => c.includes("netns list"))).toHaveLength(2);
  });

  it("a namespace file event forgets the namespace list and files only, and moves the clock", async () => {
    const inner = new CountingRunner();
    const r = new ReadCacheRunner(inner, T, () => true, readsNetnsFiles);
    const HOSTS = ["cat", "/etc/netns/x/hosts"];
    await r.run(LINK);
    await r.run(HOSTS);
    const clock = r.now();
    r.invalidate(new Set(["files"]));
    expect(r.now()).not.toBe(clock);
    await r.run(LINK);
    await r.run(HOSTS);
    expect(inner.calls).toEqual([LINK.join(" "), HOSTS.join(" "), HOSTS.join(" ")]);
  });

  it("an event or a write forgets only the reads about what it changed; the clock moves for any", async () => {
    const inner = new CountingRunner();
    const r = new ReadCacheRunner(inner, T, () => true);
    const ADDR = ["ip", "-n", T, "-j", "addr", "show"];
    const ROUTE = ["ip", "-n", T, "-j", "-4", "route", "show", "table", "all"];
    const NFT = ["ip", "netns", "exec", T, "nft", "-j", "list", "table", "inet", "bolt"];
    const all = [LINK, ADDR, ROUTE, NFT];
    const readAll = async () => {
      for (const a of all) await r.run(a);
    };
    const ran = async (f: () => unknown) => {
      await readAll();
      const n = inner.calls.length;
      const clock = r.now();
      await f();
      await readAll();
      expect(r.now()).not.toBe(clock);
      return inner.calls.slice(n).filter((c) => all.some((a) => a.join(" ") === c));
    };
    // a mesh peer added: wg set (nothing cached is about it), then its route
    expect(await ran(() => r.run(["nsenter", "--net=/run/netns/x", "--", "wg", "set", "gw0", "peer", "K", "allowed-ips", "100.64.0.2/32"]))).toEqual([]);
    expect(await ran(() => r.run(["ip", "-n", T, "-batch", "-"], "route replace 100.64.0.2/32 dev gw0\n"))).toEqual([ROUTE.join(" ")]);
    // a route event (ip monitor label); an address event also stales the routes (its prefix route)
    expect(await ran(() => r.invalidate(new Set(["route"])))).toEqual([ROUTE.join(" ")]);
    expect(await ran(() => r.invalidate(new Set(["addr"])))).toEqual([ADDR.join(" "), ROUTE.join(" ")]);
    // a link event stales addresses (ip addr prints link flags) and routes (linkdown) too
    expect(await ran(() => r.invalidate(new Set(["link"])))).toEqual(all.slice(0, 3).map((a) => a.join(" ")));
    expect(await ran(() => r.run(["ip", "netns", "exec", T, "nft", "-f", "-"], "flush table inet bolt\n"))).toEqual([NFT.join(" ")]);
    // anything not known (sysctl -w, a tc change) forgets everything
    expect(await ran(() => r.run(["ip", "netns", "exec", T, "sysctl", "-w", "net.ipv4.ip_forward=1"]))).toEqual(all.map((a) => a.join(" ")));
    // a namespace made is only a name (the namespace list); one deleted takes the veths whose peers it held
    expect(await ran(() => r.run(["ip", "-batch", "-"], "netns add y\n"))).toEqual([]);
    expect(await ran(() => r.run(["ip", "netns", "del", "y"]))).toEqual(all.slice(0, 3).map((a) => a.join(" ")));
    // an endpoint's addresses, routes and sysctls in its own namespace are not the target's
    expect(await ran(() => r.run(["ip", "-n", "y", "-batch", "-"], "address add 10.0.0.5/24 dev eth0\nroute add default via 10.0.0.1\n"))).toEqual([]);
    expect(await ran(() => r.run(["ip", "netns", "exec", "y", "sysctl", "-w", "net.ipv4.ip_forward=1"]))).toEqual([]);
  });

  it("a read in flight across an invalidation of its topic is not kept; of another topic, it is", async () => {
    const inner = new CountingRunner();
    let release!: () => void;
    inner.gate = new Promise<void>((res) => (release = res));
    const r = new ReadCacheRunner(inner, T, () => true);
    const ROUTE = ["ip", "-n", T, "-j", "-4", "route", "show", "table", "all"];
    const link = r.run(LINK);
    const route = r.run(ROUTE);
    r.invalidate(new Set(["route"]));
    release();
    await Promise.all([link, route]);
    inner.gate = undefined;
    await r.run(LINK);
    await r.run(ROUTE);
    expect(inner.calls).toEqual([LINK.join(" "), ROUTE.join(" "), ROUTE.join(" ")]);
  });

  it("a read an event overtook in flight is not kept", async () => {
    const inner = new CountingRunner();
    let release!: () => void;
    inner.gate = new Promise<void>((res) => (release = res));
    const r = new ReadCacheRunner(inner, T, () => true);
    const first = r.run(LINK);
    r.invalidate();
    release();
    expect((await first).stdout).toBe("A");
    inner.gate = undefined;
    inner.answer = "B";
    expect((await r.run(LINK)).stdout).toBe("B");
    expect(inner.calls).toHaveLength(2);
  });

  it("a loose batch whose lines partly fail (route get of an unreachable endpoint) and a missing nft table are kept; a failed ip read is not", async () => {
    const inner = new CountingRunner();
    const r = new ReadCacheRunner(inner, T, () => true);
    inner.run = async (argv: string[]) => {
      inner.calls.push(argv.join(" "));
      return { stdout: "[]", stderr: "Command failed -:1", code: 1 };
    };
    const LOOSE = ["ip", "-n", T, "-j", "-force", "-batch", "-"];
    const NFT = ["ip", "netns", "exec", T, "nft", "-j", "list", "table", "inet", "bolt"];
    await r.run(LOOSE, "route get 198.19.0.1\n");
    await r.run(LOOSE, "route get 198.19.0.1\n");
    // no table yet (a mesh host without ACLs): nft monitor says when one is made
    await r.run(NFT);
    await r.run(NFT);
    await r.run(LINK);
    await r.run(LINK);
    expect(inner.calls).toEqual([LOOSE.join(" "), NFT.join(" "), LINK.join(" "), LINK.join(" ")]);
  });

  it("reads another event source covers (inotify on /etc/netns) are kept while it covers them, failures too", async () => {
    const inner = new CountingRunner();
    let covering = true;
    const CAT = ["cat", "/etc/netns/x/hosts"];
    const r = new ReadCacheRunner(
      inner,
      T,
      () => true,
      (argv) => covering && argv[0] === "cat",
    );
    expect(r.classify(CAT, undefined)).toBe("cacheable");
    inner.run = async (argv: string[]) => {
      inner.calls.push(argv.join(" "));
      return { stdout: "", stderr: "cat: No such file or directory", code: 1 };
    };
    await r.run(CAT);
    await r.run(CAT);
    expect(inner.calls).toHaveLength(1);
    covering = false;
    expect(r.classify(CAT, undefined)).toBe("read");
    await r.run(CAT);
    expect(inner.calls).toHaveLength(2);
  });

  it("iptables-save of the target is covered by nft monitor only when iptables is iptables-nft", async () => {
    const SAVE = ["ip", "netns", "exec", T, "iptables-save", "-t", "filter"];
    for (const [version, want] of [
      ["iptables-save v1.8.9 (nf_tables)", "cacheable"],
      ["iptables-save v1.8.9 (legacy)", "read"],
    ] as const) {
      const inner = new CountingRunner();
      inner.answer = version;
      const r = new ReadCacheRunner(inner, T, () => true);
      expect(r.classify(SAVE, undefined)).toBe("read");
      await r.probeIptables();
      expect(r.classify(SAVE, undefined)).toBe(want);
      // another namespace's is never covered
      expect(r.classify(["ip", "netns", "exec", `${T}-web`, "iptables-save"], undefined)).toBe("read");
    }
  });
});

describe("what a plan runs", () => {
  // One command the cache counts as a write empties it on every pass: every read after it runs
  // again (modprobe -n, the wireguard kind's probe, did that to every store-triggered pass of a mesh host).
  it("a no-op plan of a store-backed mesh host and of the example Boltfile runs only reads", async () => {
    const MESH_T = "bolt-t-cache-mesh";
    const self = wgKeyPair();
    const peer = wgKeyPair();
    const key = writeKeyFile("self.key", self.priv);
    const conf = writeMeshHostConf(key);
    const snapshot: MeshSnapshot = {
      revision: "9",
      meta: { v: 1, mesh_id: "m1", cidr4: "100.64.0.0/10", listen_port: 41641, keepalive: 25, created_at: "" },
      nodes: [storeNode("me", { mesh_ip4: "100.64.0.10", public_key: self.pub }), storeNode("peer", { mesh_ip4: "100.64.0.11", public_key: peer.pub })],
      requests: {
        peer: { v: 1, public_key: peer.pub, hostname: "peer", endpoint: "198.18.0.11:41641", tags: [], routes: [], exit_node: false, at: "" },
      },
      ipam: {},
    };
    const cases: { target: string; intent: Intent }[] = [
      { target: MESH_T, intent: loadIntent([conf], "", { external: { wireguard: { snapshot, self: "me" } } }).intent },
      // the example Boltfile without its IPv6 line (the fake kernel models IPv4 only)
      {
        target: "bolt-t-cache-ex",
        intent: intentOf(writeConfigs({ "bolt-network.toml": EXAMPLE.replace(/^ipv6 = .*$/m, "").replace(/^ip6 = .*$/m, "") }), {
          netnsPrefix: "bolt-t-cache-ex-",
        }),
      },
    ];
    for (const c of cases) {
      const w = newWorld(c.target);
      await converge(w, { intent: c.intent });
      const ran: [string[], string | undefined][] = [];
      const recording: CommandRunner = {
        run: (argv, stdin, o) => {
          ran.push([argv, stdin]);
          return w.kernel.run(argv, stdin, o);
        },
      };
      const plan = await planIntent(c.intent, recording, { target: c.target, leases: w.store.leases, originals: w.store.originals });
      expect(plan.changes).toEqual([]);
      expect(ran.length).toBeGreaterThan(5);
      expect(ran.filter(([argv, stdin]) => classify(argv, stdin, c.target) === "write").map(([argv]) => argv.join(" "))).toEqual([]);
    }
  });
});
