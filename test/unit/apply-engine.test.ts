// The apply engine against a fake kernel: a failure injected at step N leaves exactly the
// inverses of what already took effect run, newest first, with `-force`, and the kernel as it
// was; a verify that still sees a difference rolls back too; the journal is written before
// every wave and cleared on success; recoverJournal repairs an apply killed mid-way.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { broadcastOf, formatIp4, parseCidr4 } from "../../src/core/ipv4.js";
import { ApplyError, applyPlan } from "../../src/core/apply.js";
import type { JournalPayload, JournalSink } from "../../src/core/apply.js";
import { makePlan } from "../../src/core/plan.js";
import type { Plan } from "../../src/core/plan.js";
import { recoverJournal } from "../../src/core/recover.js";
import type { Op, OpLine } from "../../src/core/resource.js";
import type { Intent } from "../../src/core/intent.js";
import { ReplayRunner } from "../../src/exec/replay-runner.js";
import type { RunResult } from "../../src/exec/runner.js";
import { ScriptedRunner } from "../../src/exec/scripted-runner.js";
import type { ScriptedCall } from "../../src/exec/scripted-runner.js";
import { RECONCILERS as ALL_RECONCILERS } from "../../reconcilers/registry.js";
import { compileRegistry } from "../../src/core/registry.js";

// The engine under test is kind-agnostic; the other kinds (nft, WireGuard, routes, rules…) have
// their own tests, and leaving them out keeps this fake kernel to `ip` and `sysctl`.
const RECONCILERS = compileRegistry(
  ALL_RECONCILERS.filter((r) => ["network", "endpoint", "sysctl"].includes(r.kind)),
  { partial: true },
);
import { StateStore } from "../../src/state/store.js";

const T = "bolt-t-ae";
const PREFIX = "bolt-t-ae-";
const CONFIG = `
[networks.front]
subnet = "10.81.0.0/24"

[networks.lab]
subnet = "10.82.0.0/24"
mtu = 9000

[[endpoints]]
name = "web"
network = "front"
ip = "10.81.0.10"

[[endpoints]]
name = "api"
network = "front"

[[endpoints]]
name = "vm"
network = "lab"
tap = true

[sysctl]
"net.ipv4.ip_forward" = 1
`;

// ---------------------------------------------------------------------------------------
// A fake kernel: just the `ip` / `sysctl` commands bolt emits, applied to a small model so
// that verify and rollback re-reads see the result. `ip -batch` semantics are kept: lines
// run in order, the first failing one ends the batch with "Command failed -:K" (lines before
// it took effect); with `-force` every line is tried and the exit code reports any failure.
// ---------------------------------------------------------------------------------------
interface Link {
  ifindex: number;
  kind: "loopback" | "bridge" | "veth" | "tun";
  mtu: number;
  up: boolean;
  master?: string;
  alias?: string;
  peer?: { ns: string; name: string };
  addrs: string[];
}
interface NsState {
  links: Map<string, Link>;
  routes: { gateway: string; dev: string }[];
  sysctl: Map<string, string>;
}
type Fault = "fail" | "ignore" | "kill";
/** One write line: `ns` null is the namespace bolt runs in (only netns add/del go there). */
interface Line {
  ns: string | null;
  args: string[];
}
/** forced: the ip batch ran with `-force` (null for an exec'd sysctl); rollback: sent after rollback began */
type Event = { t: "journal"; started: Set<string> } | { t: "clear" } | { t: "write"; forced: boolean | null; rollback: boolean; keys: string[] };

const key = (l: OpLine | Line) => `${l.ns ?? "-"}|${l.args.join(" ")}`;

class FakeKernel {
  readonly ns = new Map<string, NsState>();
  /** forward lines that took effect (the kernel said yes), before any rollback started */
  readonly applied: Line[] = [];
  /** every line written once rollback began: after a failed line, a re-read or a `-force` batch */
  readonly rollback: Line[] = [];
  readonly timeline: Event[] = [];
  fault?: (l: Line) => Fault | undefined;
  rollingBack = false;
  private wrote = false;
  private nextIndex = 2;

  constructor() {
    this.addNs(T);
  }

  respond = (call: ScriptedCall): RunResult | undefined => {
    const a = call.argv;
    if (a[0] !== "ip") return undefined;
    if (a[1] === "netns" && a[2] === "exec" && a[4] === "sysctl") return this.sysctl(a[3]!, a.slice(4));
    const ns = a[1] === "-n" ? a[2]! : null;
    const rest = a.slice(ns === null ? 1 : 3);
    if (rest.includes("-batch")) return this.batch(ns, rest.includes("-force"), call.stdin ?? "");
    if (rest[0] === "-j") {
      this.readSinceWrite();
      return this.read(ns, rest.slice(1).join(" "));
    }
    return undefined;
  };

  snapshot(): unknown {
    return [...this.ns]
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([name, s]) => ({
        name,
        links: [...s.links].sort(([x], [y]) => x.localeCompare(y)).map(([n, l]) => ({ n, ...l, ifindex: undefined, addrs: [...l.addrs].sort() })),
        routes: s.routes,
        sysctl: [...s.sysctl],
      }));
  }

  private addNs(name: string) {
    this.ns.set(name, {
      links: new Map([["lo", { ifindex: 1, kind: "loopback", mtu: 65536, up: false, addrs: [] }]]),
      routes: [],
      sysctl: new Map([["net.ipv4.ip_forward", "0"]]),
    });
  }

  /** `ip -j WHAT` (also a line of an `ip -j -batch`, which prints one JSON document per read) */
  private read(ns: string | null, what: string): RunResult {
    if (what === "netns list") return json([...this.ns.keys()].map((name) => ({ name })));
    const s = ns === null ? undefined : this.ns.get(ns);
    if (!s) return { stdout: "", stderr: `Cannot open network namespace "${ns}": No such file or directory\n`, code: 1 };
    const dev = /^link show dev (\S+)$/.exec(what)?.[1];
    if (dev && !s.links.has(dev)) return { stdout: "", stderr: `Device "${dev}" does not exist.\n`, code: 1 };
    const links = [...s.links].filter(([ifname]) => !dev || ifname === dev);
    if (what === "-d link show" || dev)
      return json(
        links.map(([ifname, l]) => ({
          ifindex: l.ifindex,
          ifname,
          flags: l.kind === "loopback" ? ["LOOPBACK", ...(l.up ? ["UP"] : [])] : ["BROADCAST", "MULTICAST", ...(l.up ? ["UP", "LOWER_UP"] : [])],
          mtu: l.mtu,
          ...(l.master ? { master: l.master } : {}),
          ...(l.alias ? { ifalias: l.alias } : {}),
          ...(l.kind === "loopback" ? {} : { linkinfo: { info_kind: l.kind } }),
        })),
      );
    if (what === "addr show")
      return json(
        links.map(([ifname, l]) => ({
          ifindex: l.ifindex,
          ifname,
          // An address added with `broadcast +` is kept as "A/P brd" and shows its subnet's broadcast address.
          addr_info: l.addrs.map((x) => {
            const [a = "", brd] = x.split(" ");
            const c = parseCidr4(a)!;
            return { family: "inet", local: a.split("/")[0], prefixlen: c.prefix, ...(brd ? { broadcast: formatIp4(broadcastOf(c)) } : {}) };
          }),
        })),
      );
    if (["-4 route show table all", "-4 route show default", "route show default", "route show table all default"].includes(what))
      return json(s.routes.map((r) => ({ dst: "default", gateway: r.gateway, dev: r.dev, protocol: "176" })));
    throw new Error(`fake kernel: unexpected read: ip ${what}`);
  }

  /** apply never reads between its forward writes: the first read after a write starts verify/rollback */
  private readSinceWrite() {
    if (this.wrote) this.rollingBack = true;
  }

  private sysctl(ns: string, args: string[]): RunResult {
    const s = this.ns.get(ns);
    if (!s) return { stdout: "", stderr: `Cannot open network namespace "${ns}"\n`, code: 1 };
    if (!args.includes("-w")) {
      this.readSinceWrite();
      const keys = args.slice(1);
      return {
        stdout: keys
          .filter((k) => s.sysctl.has(k))
          .map((k) => `${k} = ${s.sysctl.get(k)}\n`)
          .join(""),
        stderr: "",
        code: 0,
      };
    }
    this.timeline.push({ t: "write", forced: null, rollback: this.rollingBack, keys: [key({ ns, args })] });
    const err = this.write({ ns, args });
    return err ? { stdout: "", stderr: `${err}\n`, code: 255 } : { stdout: "", stderr: "", code: 0 };
  }

  /** `ip [-j] [-force] -batch -`: writes, optionally followed by reads (apply reads back in the same process). */
  private batch(ns: string | null, force: boolean, stdin: string): RunResult {
    const lines = stdin
      .split("\n")
      .filter(Boolean)
      .map((l) => ({ ns, args: l.split(" ") }));
    const isRead = (l: Line) => l.args.includes("show") || l.args.join(" ") === "netns list";
    const writeLines = lines.filter((l) => !isRead(l));
    if (!writeLines.length) this.readSinceWrite();
    if (force && writeLines.length) this.rollingBack = true;
    if (writeLines.length) this.timeline.push({ t: "write", forced: force, rollback: this.rollingBack, keys: writeLines.map(key) });
    let stdout = "";
    let stderr = "";
    for (const [i, l] of lines.entries()) {
      let err: string | undefined;
      if (isRead(l)) {
        const r = this.read(ns, l.args.join(" "));
        stdout += r.stdout;
        err = r.code ? r.stderr.trim() : undefined;
      } else err = this.write(l);
      if (!err) continue;
      stderr += `${err}\nCommand failed -:${i + 1}\n`;
      if (!force) return { stdout, stderr, code: 1 };
    }
    return { stdout, stderr, code: stderr ? 1 : 0 };
  }

  /** One line through the fault hook and the model; returns the kernel's complaint, if any. */
  private write(l: Line): string | undefined {
    this.wrote = true;
    const fault = this.rollingBack ? undefined : this.fault?.(l);
    if (fault === "kill") throw new Error("killed (simulated kill -9 of bolt)");
    if (fault === "fail") {
      this.rollingBack = true;
      return "RTNETLINK answers: Operation not permitted";
    }
    if (this.rollingBack) this.rollback.push(l);
    else this.applied.push(l);
    if (fault === "ignore") return undefined;
    return l.args[0] === "sysctl" ? this.setSysctl(l.ns!, l.args) : this.exec(l.ns, l.args);
  }

  private setSysctl(ns: string, args: string[]): string | undefined {
    const [k, v] = args[args.length - 1]!.split("=");
    const s = this.ns.get(ns)!;
    if (!s.sysctl.has(k!)) return `sysctl: cannot stat /proc/sys/${k!.replace(/\./g, "/")}: No such file or directory`;
    s.sysctl.set(k!, v!);
    return undefined;
  }

  private exec(ns: string | null, a: string[]): string | undefined {
    const cmd = `${a[0]} ${a[1]}`;
    if (ns === null) {
      if (cmd === "netns add") {
        if (this.ns.has(a[2]!)) return `Cannot create namespace file "/run/netns/${a[2]}": File exists`;
        this.addNs(a[2]!);
        return undefined;
      }
      if (cmd === "netns del") {
        const s = this.ns.get(a[2]!);
        if (!s) return `Cannot remove namespace file "/run/netns/${a[2]}": No such file or directory`;
        // A veth dies with its namespace, and takes its peer with it.
        for (const l of s.links.values()) if (l.peer) this.ns.get(l.peer.ns)?.links.delete(l.peer.name);
        this.ns.delete(a[2]!);
        return undefined;
      }
      throw new Error(`fake kernel: bolt wrote to its own namespace: ${a.join(" ")}`);
    }
    const s = this.ns.get(ns);
    if (!s) return `Cannot open network namespace "${ns}": No such file or directory`;
    const dev = (name: string) => s.links.get(name);
    const noDev = (name: string) => `Cannot find device "${name}"`;
    const exists = "RTNETLINK answers: File exists";
    if (cmd === "link add") {
      // link add name X mtu M type bridge | type veth peer name P mtu M [address MAC] netns NS
      const name = a[3]!;
      if (s.links.has(name)) return exists;
      const link: Link = { ifindex: this.nextIndex++, kind: a[7] === "veth" ? "veth" : "bridge", mtu: Number(a[5]), up: false, addrs: [] };
      if (link.kind === "veth") {
        const peerNs = this.ns.get(a[a.indexOf("netns") + 1]!);
        const peerName = a[a.indexOf("peer") + 2]!;
        if (!peerNs) return `Invalid "netns" value`;
        if (peerNs.links.has(peerName)) return exists;
        peerNs.links.set(peerName, {
          ifindex: this.nextIndex++,
          kind: "veth",
          mtu: Number(a[a.lastIndexOf("mtu") + 1]),
          up: false,
          addrs: [],
          peer: { ns, name },
        });
        link.peer = { ns: a[a.indexOf("netns") + 1]!, name: peerName };
      }
      s.links.set(name, link);
      return undefined;
    }
    if (cmd === "tuntap add") {
      if (s.links.has(a[3]!)) return exists;
      s.links.set(a[3]!, { ifindex: this.nextIndex++, kind: "tun", mtu: 1500, up: false, addrs: [] });
      return undefined;
    }
    if (cmd === "link del") {
      const l = dev(a[3]!);
      if (!l) return noDev(a[3]!);
      s.links.delete(a[3]!);
      if (l.peer) this.ns.get(l.peer.ns)?.links.delete(l.peer.name);
      for (const p of s.links.values()) if (p.master === a[3]) delete p.master; // a bridge's ports are released
      s.routes = s.routes.filter((r) => r.dev !== a[3]);
      return undefined;
    }
    if (cmd === "link set") {
      const l = dev(a[3]!);
      if (!l) return noDev(a[3]!);
      for (let i = 4; i < a.length; i++) {
        const [k, v] = [a[i]!, a[i + 1]];
        if (k === "up" || k === "down") l.up = k === "up";
        else if (k === "mtu") (l.mtu = Number(v)), i++;
        else if (k === "alias") (l.alias = v), i++;
        else if (k === "addrgenmode") i++;
        else if (k === "master") {
          if (dev(v!)?.kind !== "bridge") return noDev(v!);
          l.master = v;
          i++;
        } else throw new Error(`fake kernel: unknown link attribute ${k}`);
      }
      return undefined;
    }
    if (cmd === "address add" || cmd === "address del") {
      // address add A [broadcast +] dev D
      const d = a[a.indexOf("dev") + 1]!;
      const l = dev(d);
      if (!l) return noDev(d);
      const has = l.addrs.some((x) => x.split(" ")[0] === a[2]);
      if (cmd === "address add") {
        if (has) return exists;
        l.addrs.push(a.includes("broadcast") ? `${a[2]} brd` : a[2]!);
      } else {
        if (!has) return "RTNETLINK answers: Cannot assign requested address";
        l.addrs = l.addrs.filter((x) => x.split(" ")[0] !== a[2]);
        s.routes = s.routes.filter((r) => r.dev !== d); // the gateway is no longer reachable
      }
      return undefined;
    }
    if (cmd === "route add" || cmd === "route replace") {
      // route add|replace default via GW dev D proto 176
      const [gateway, d] = [a[4]!, a[6]!];
      if (!dev(d)?.addrs.length) return "Error: Nexthop has invalid gateway.";
      if (cmd === "route add" && s.routes.length) return exists;
      s.routes = [{ gateway, dev: d }];
      return undefined;
    }
    throw new Error(`fake kernel: unknown command: ip ${a.join(" ")}`);
  }
}

const json = (v: unknown): RunResult => ({ stdout: JSON.stringify(v) + "\n", stderr: "", code: 0 });

/** In-memory journal; its writes go on the kernel's timeline to check they precede each wave. */
class MemJournal implements JournalSink {
  current: string | undefined;
  constructor(private readonly k: FakeKernel) {}
  writeJournal(_t: string | null, payload: string) {
    this.current = payload;
    this.k.timeline.push({ t: "journal", started: new Set((JSON.parse(payload) as JournalPayload).started.map(key)) });
  }
  clearJournal() {
    this.current = undefined;
    this.k.timeline.push({ t: "clear" });
  }
}

// ---------------------------------------------------------------------------------------

let dir: string;
let intent: Intent;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "bolt-apply-engine-"));
  writeFileSync(join(dir, "bolt-network.toml"), CONFIG);
  intent = loadIntent([join(dir, "bolt-network.toml")], PREFIX).intent;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The reads `bolt plan` makes of a fresh namespace (recorded from iproute2 6.1, trimmed). */
const EMPTY_LIVE = {
  [`ip -n ${T} -j -d link show`]: { stdout: '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"mtu":65536,"operstate":"DOWN","link_type":"loopback"}]\n' },
  [`ip -n ${T} -j addr show`]: { stdout: '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"mtu":65536,"addr_info":[]}]\n' },
  [`ip -n ${T} -j -4 route show table all`]: { stdout: "[]\n" },
  "ip -j netns list": { stdout: `[{"name":"${T}"}]\n` },
  [`ip netns exec ${T} sysctl net.ipv4.ip_forward`]: { stdout: "net.ipv4.ip_forward = 0\n" },
};

async function plan(): Promise<Plan> {
  const replay = new ReplayRunner(EMPTY_LIVE);
  const p = await makePlan({ intent, runner: replay, target: T, registry: RECONCILERS, leases: new Map(), originals: new Map() });
  expect(replay.writes).toEqual([]); // planning never writes
  expect(p.diagnostics).toEqual([]);
  return p;
}

function setup(fault?: FakeKernel["fault"]) {
  const kernel = new FakeKernel();
  kernel.fault = fault;
  const before = kernel.snapshot();
  const runner = new ScriptedRunner([kernel.respond]);
  const journal = new MemJournal(kernel);
  return { kernel, before, runner, journal };
}

const applyOpts = (s: ReturnType<typeof setup>) => ({
  runner: s.runner,
  registry: RECONCILERS,
  journal: s.journal,
  intent,
  originals: new Map<string, string>(),
  verifyAttempts: 1,
});

/** What an exact rollback writes: the undo of every op that took effect, newest first. */
function expectedUndo(p: Plan, applied: Line[]): string[] {
  const byKey = new Map<string, Op>();
  for (const op of p.steps.flatMap((s) => s.ops)) {
    expect(byKey.has(key(op)), `ambiguous op line ${key(op)}`).toBe(false);
    byKey.set(key(op), op);
  }
  return [...applied].reverse().flatMap((l) => {
    const op = byKey.get(key(l));
    expect(op, `kernel ran a line that is no op of the plan: ${key(l)}`).toBeDefined();
    return op!.undo.map(key);
  });
}

function writes(k: FakeKernel) {
  return k.timeline.filter((e): e is Extract<Event, { t: "write" }> => e.t === "write");
}

describe("the plan the engine is tested with", () => {
  it("has the six steps in dependency order, each with ops that know their undo", async () => {
    const p = await plan();
    expect(p.steps.map((s) => `${s.change.action} ${s.change.id}`)).toEqual([
      "create network:front",
      "create network:lab",
      "create endpoint:web",
      "create endpoint:api",
      "create endpoint:vm",
      "create sysctl:net.ipv4.ip_forward",
    ]);
    // the first op of every step creates something and has an undo that removes it
    for (const s of p.steps) expect(s.ops[0]!.undo.length).toBeGreaterThan(0);
  });
});

/**
 * The rollback each failure must produce, spelled out. Ops run by stage (namespaces, bridges,
 * ports, inside, sysctls), not in step order, so "what ran before step N" includes the
 * endpoint namespaces even when a bridge fails; inside ops need no undo of their own (deleting
 * the host veth takes the peer and its addresses and routes with it).
 */
const ROLLBACK: Record<number, string[]> = {
  1: [`-|netns del ${PREFIX}api`, `-|netns del ${PREFIX}web`],
  2: [`${T}|link del dev bolt-front`, `-|netns del ${PREFIX}api`, `-|netns del ${PREFIX}web`],
  3: [],
  4: [`-|netns del ${PREFIX}web`],
  5: [
    `${T}|link del dev bv-api`,
    `${T}|link del dev bv-web`,
    `${T}|link del dev bolt-lab`,
    `${T}|link del dev bolt-front`,
    `-|netns del ${PREFIX}api`,
    `-|netns del ${PREFIX}web`,
  ],
  6: [
    `${T}|link del dev bt-vm`,
    `${T}|link del dev bv-api`,
    `${T}|link del dev bv-web`,
    `${T}|link del dev bolt-lab`,
    `${T}|link del dev bolt-front`,
    `-|netns del ${PREFIX}api`,
    `-|netns del ${PREFIX}web`,
  ],
};

describe("a failure at step N rolls back exactly what ran before it", () => {
  it.each([1, 2, 3, 4, 5, 6])("step %i fails on its first op", async (n) => {
    const p = await plan();
    const failing = p.steps[n - 1]!.ops[0]!;
    const s = setup((l) => (key(l) === key(failing) ? "fail" : undefined));

    const err = await applyPlan(p, applyOpts(s)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyError);
    const ae = err as ApplyError;
    const ch = p.steps[n - 1]!.change;
    expect(ae.message).toContain(`apply failed at step ${n}/6 (create ${ch.kind} "${ch.name}")`);
    expect(ae.message).toContain(`"${failing.args.join(" ")}"`);
    expect(ae.message).toContain("Operation not permitted");
    expect(ae.message).toContain("rolled back, the kernel is as it was");
    expect(ae.rolledBack).toBe(true);
    expect(ae.rollbackProblems).toEqual([]);

    // Exactly the undo lines of what took effect, newest first, and nothing else.
    const undo = expectedUndo(p, s.kernel.applied);
    expect(s.kernel.rollback.map(key)).toEqual(undo);
    expect(undo).toEqual(ROLLBACK[n]);
    // Rollback ip batches run with -force; forward ones never do.
    for (const e of writes(s.kernel)) if (e.forced !== null) expect(e.forced).toBe(e.rollback);
    // Forward writes: what took effect, then the failing line and the rest of its batch (sent
    // but never reached); no later stage was started.
    const forward = writes(s.kernel).filter((e) => !e.rollback);
    const failingBatch = forward.find((e) => e.keys.includes(key(failing)))!;
    const applied = new Set(s.kernel.applied.map(key));
    const sent = forward.flatMap((e) => e.keys);
    expect(sent.filter((k) => !applied.has(k))).toEqual(failingBatch.keys.slice(failingBatch.keys.indexOf(key(failing))));
    const laterStages = new Set(
      p.steps
        .flatMap((st) => st.ops)
        .filter((o) => o.stage > failing.stage)
        .map(key),
    );
    expect(sent.filter((k) => laterStages.has(k))).toEqual([]);

    expect(s.kernel.snapshot()).toEqual(s.before);
  });

  it("the failing line's predecessors in the same ip batch count as done (ip -batch is not atomic)", async () => {
    // Both endpoint namespaces are made in one host batch: failing api's (line 2) keeps web's (line 1).
    const p = await plan();
    const webNs = p.steps[2]!.ops[0]!;
    const apiNs = p.steps[3]!.ops[0]!;
    expect([webNs.args.join(" "), apiNs.args.join(" ")]).toEqual([`netns add ${PREFIX}web`, `netns add ${PREFIX}api`]);
    const s = setup((l) => (key(l) === key(apiNs) ? "fail" : undefined));
    await expect(applyPlan(p, applyOpts(s))).rejects.toThrow(/step 4\/6 \(create endpoint "api"\): "netns add bolt-t-ae-api"/);
    expect(s.kernel.applied.map(key)).toEqual([key(webNs)]);
    expect(s.kernel.rollback.map(key)).toEqual([`-|netns del ${PREFIX}web`]);
    expect(s.kernel.snapshot()).toEqual(s.before);
  });
});

describe("verify", () => {
  it("a kernel that still differs after apply triggers a full rollback", async () => {
    const p = await plan();
    // The kernel accepts "link set dev bolt-lab up" but the bridge stays down.
    const s = setup((l) => (l.ns === T && l.args.join(" ") === "link set dev bolt-lab up" ? "ignore" : undefined));
    const events: [string, Record<string, unknown>][] = [];
    const log = (e: string, f: Record<string, unknown>) => void events.push([e, f]);
    await expect(applyPlan(p, { ...applyOpts(s), log })).rejects.toThrow(/did not converge.*update network "lab" \(state: want up, have down\).*rolled back/);
    // each read that still differed is logged (a slow apply shows whether verify waited on the kernel)
    expect(events.filter(([e]) => e === "apply.verify.again")).toEqual([["apply.verify.again", { attempt: 1, differs: ["network:lab (state)"] }]]);
    const all = p.steps.flatMap((st) => st.ops);
    expect(s.kernel.applied).toHaveLength(all.length);
    expect(s.kernel.rollback.map(key)).toEqual(expectedUndo(p, s.kernel.applied));
    expect(s.kernel.snapshot()).toEqual(s.before);
  });
});

describe("a journal that cannot be written (disk full, store gone read-only)", () => {
  it.each([1, 2, 3])("before wave %i: that wave never starts, earlier waves are undone, the kernel is as it was", async (k) => {
    const p = await plan();
    const s = setup();
    let writes = 0;
    const real = s.journal.writeJournal.bind(s.journal);
    s.journal.writeJournal = (t, payload) => {
      if (++writes === k) throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
      real(t, payload);
    };
    const err = await applyPlan(p, applyOpts(s)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^apply stopped before wave ${k}/\\d+: the journal could not be written \\(database or disk is full\\); ${k === 1 ? "nothing was changed" : "rolled back, the kernel is as it was"}$`,
      ),
    );
    expect(s.kernel.snapshot()).toEqual(s.before);
    // Nothing of the refused wave reached the kernel.
    const wavesRun = s.kernel.timeline.filter((e) => e.t === "write" && !e.rollback).length;
    if (k === 1) expect(wavesRun).toBe(0);
  });
});

describe("journal", () => {
  it("is written before each wave, covers every op the wave sends, and is cleared on success", async () => {
    const p = await plan();
    const s = setup();
    const r = await applyPlan(p, applyOpts(s));
    expect(r.applied).toBe(6);
    let latest: Set<string> | undefined;
    let journals = 0;
    for (const e of s.kernel.timeline) {
      if (e.t === "journal") (latest = e.started), journals++;
      if (e.t === "write") for (const k of e.keys) expect(latest?.has(k), `${k} written before the journal named it`).toBe(true);
    }
    // netns, link, mark, port, inside, sysctl: one wave each, one journal write each
    expect(journals).toBe(6);
    expect(s.kernel.timeline.at(-1)).toEqual({ t: "clear" });
    expect(s.journal.current).toBeUndefined();

    // The apply converged: a fresh plan over the same kernel is empty.
    const again = await makePlan({
      intent,
      runner: s.runner,
      target: T,
      registry: RECONCILERS,
      leases: new Map([["api", "10.81.0.2"]]),
      originals: new Map([["net.ipv4.ip_forward", "0"]]),
    });
    expect(again.changes.map((c) => c.id)).toEqual([]);
    expect(s.kernel.ns.get(`${PREFIX}web`)!.links.get("eth0")!.addrs).toEqual(["10.81.0.10/24 brd"]);
  });

  it("recoverJournal undoes every started op of a killed apply, newest first", async () => {
    const p = await plan();
    // Killed in the middle of the port wave: after bv-web's first line, before the rest.
    const killAt = p.steps[2]!.ops.find((o) => o.args[0] === "link" && o.args[1] === "set")!;
    const s = setup((l) => (key(l) === key(killAt) ? "kill" : undefined));
    const stateDir = mkdtempSync(join(tmpdir(), "bolt-apply-engine-state-"));
    const store = new StateStore(stateDir);
    try {
      await expect(applyPlan(p, { ...applyOpts(s), journal: store })).rejects.toThrow(/killed/);
      const row = store.journal(T);
      expect(row).toBeDefined();
      const payload = JSON.parse(row!.payload) as JournalPayload;
      expect(s.kernel.snapshot()).not.toEqual(s.before);

      // A new bolt process: everything it writes now is the repair.
      s.kernel.fault = undefined;
      s.kernel.rollingBack = true;
      const rec = await recoverJournal(store, new ScriptedRunner([s.kernel.respond]), RECONCILERS, T);
      expect(rec?.problems).toEqual([]);
      expect(rec?.undone).toBe(payload.started.length);
      // Every started op's undo (ops that never ran included), newest first, each once.
      expect(s.kernel.rollback.map(key)).toEqual([...payload.started].reverse().flatMap((o) => o.undo.map(key)));
      expect(payload.started.map(key)).toContain(key(killAt));
      expect(s.kernel.snapshot()).toEqual(s.before);
      expect(store.journal(T)).toBeUndefined();
    } finally {
      store.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
