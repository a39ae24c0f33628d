// A shared, stateful fake kernel for unit tests: a CommandRunner that understands the commands
// bolt runs (reads and writes) and applies them to an in-memory model of network namespaces,
// so that plan → apply → verify → rollback see the effect of every write, exactly as they would
// on a host. Nothing here touches the real system (key files named in `wg set` are only read).
//
// Modelled per network namespace (null = the namespace bolt runs in; named ones made by
// `ip netns add`): links (loopback, bridge, veth pairs across namespaces, dummy, tun/tap from
// `ip tuntap`, tun devices of `wireguard-go`), link attributes (mtu, up/down, master/nomaster,
// alias, addrgenmode, MAC), IPv4 addresses (primary/secondary, promote_secondaries), routes
// (static ones stored; the kernel's own prefix/local/broadcast routes derived from addresses and
// link state; flushed like IPv4 does on link down, link delete and last-address delete), policy
// rules, sysctls, WireGuard devices with peers, nftables tables, the iptables filter table, and
// one machine-wide file system (/etc/netns/NS/* bind-mounted over /etc/* under `ip netns exec`).
//
// Commands (argv; `ip netns exec NS …` runs any of them inside NS, `ip -n NS …` runs ip there):
//   ip [-n NS] [-j] [-d] [-4] [-force] -batch -       lines on stdin; "Command failed -:N"
//   ip [-n NS] [-j] [-d] [-4] OBJECT …                  the same objects without -batch:
//     link show [dev X] | link add [name] X [mtu N] [address MAC] [netns NS] type bridge|dummy|veth
//          [peer [name] P [mtu N] [address MAC] [netns NS]] | link del|delete [dev] X |
//          link set [dev] X {up|down|mtu N|alias S|addrgenmode M|master BR|nomaster|address MAC|netns NS}…
//     tuntap add|del [dev] X mode tap|tun
//     address|addr add|del A[/P] dev X | address show [dev X]
//     route add|replace|del DST [via GW] [dev X] [table T] [proto P] [metric 0] |
//          route show [table T|all] [default]
//     rule add|del [priority P] [not] [fwmark M[/MASK]] [table|lookup T] [suppress_prefixlength N]
//          [protocol P] | rule show
//     route get ADDR [mark M] (longest match in table main) |
//     netns add|del|delete NAME (outside any namespace) | netns list
//   sysctl [-q] [-n] KEY… (read, "key = value") | sysctl [-q] -w KEY=VALUE…
//   wireguard-go IF | wg set IF [private-key F] [listen-port N] [fwmark M|off]
//     [peer PUB [remove] [endpoint H:P] [allowed-ips L] [persistent-keepalive N|off]
//     [preshared-key F]]… | wg show IF dump|listen-port|public-key|fwmark  (also under `timeout N`)
//   nft -f - | nft -c -f - (stdin: tables in the grammar bolt writes and `nft list` prints) |
//     nft [-j] [-s] list table FAMILY NAME | nft -j list tables | nft [-j] [-s] list ruleset
//   iptables [-t filter] -I CHAIN [POS] SPEC | -A CHAIN SPEC | -D CHAIN SPEC|POS | -N CHAIN | -P CHAIN POLICY
//   iptables-save [-t filter] | iptables-restore --noflush (the filter table)
//   cat PATH | tee [-a] PATH (stdin) | rm -f PATH | mkdir -p DIR | rmdir [--ignore-fail-on-non-empty] DIR |
//     test -S|-e|-f|-d PATH (sockets: /var/run/wireguard/IF.sock and /run/wireguard/IF.sock while IF exists)
//   find /etc/netns … -exec tail -v -n +1 -- {} + (the resolver kind's read) | the files tool's
//     helper (node -e … bolt-files, JSON ops on stdin: write/remove, one write op each) |
//   timeout N CMD… | modprobe -n -q MODULE (no module is loadable)
//   WireGuard's per-target control sockets (src/exec/wg-runtime.ts), kept apart from the
//   compared state (they are bolt's runtime, not network state): cat /proc/self/mountinfo,
//   mkdir/rmdir/rm/touch under the run dir, unshare --mount=F … mount --bind D /run/wireguard,
//   umount F, and `nsenter --net=/run/netns/NS --mount=F -- CMD…` (wg and wireguard-go there
//   see only the devices started through F; everywhere else they share the host's sockets)
//
// A write op is one `ip -batch` line (or one non-batch ip write), one `wg set` clause (the
// interface part counts as one, each `peer …` as one) or one other exec'd write. Faults: the K-th
// write op of the forward phase fails as the real tool fails (ip: its RTNETLINK error, then
// "Command failed -:K" with the lines before it applied; wg: the clauses before it applied;
// nft: the whole transaction refused; others: nothing done, exit 1), or is accepted and silently
// not applied ("ignore", to exercise verify), or bolt is killed right there ("kill": run() throws,
// for journal recovery). Like ip, an argument ip cannot resolve (a master or netns that does not
// exist, a bad prefix) ends the whole process with exit 255, `-force` or not, without "Command
// failed". `markRollback()` starts the rollback phase: writes are recorded apart and never
// faulted. Modes: strict (the default) throws on any command or syntax the fake does not
// understand; permissive answers it like a host without that tool (127) or like ip's usage error.
//
// Simplifications: IPv4 only (IPv6 shows as the link-local address of addrgenmode eui64 links);
// a WireGuard interface without listen-port reports port 0 (wireguard-go would pick one);
// endpoints are kept as given (no DNS); sysctl knows a fixed set of keys (setSysctl adds more),
// and ip_forward / conf.all.forwarding are one value that also sets conf.default.forwarding;
// nft scripts are parsed in the grammar bolt writes and nft lists (rule text kept verbatim);
// iptables models the filter table only.
//
// `expect()` scripts expected commands (optionally ordered, optionally with a canned answer) and
// `assertDone()` checks they all came. `snapshot()` is the canonical, comparable state (no
// ifindexes, handles, counters or kernel-chosen MACs); `diffSnapshots()` says what differs.
import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import type { CommandRunner, RunResult } from "../../../src/exec/runner.js";
import { WG_DIR } from "../../../src/exec/run-dir.js";
import { FILES_LABEL } from "../../../src/exec/files-tool.js";
import type { FileOp } from "../../../src/exec/files-tool.js";
import { READ_ARGV as RESOLVER_READ } from "../../../reconcilers/resolver/files.js";
import { parseRate, tcRate } from "../../../reconcilers/tc/rate.js";

export type NsName = string | null;

type LinkKind = "loopback" | "bridge" | "veth" | "dummy" | "tun" | "ifb";

/** Traffic control on a link, in the shapes bolt writes: one HTB tree, a clsact with u32 redirects. */
export interface TcLinkState {
  htb?: { handle: string; defaultMinor: string; classes: Record<string, { parent: string; prio: number; rate: string; ceil: string; leaf?: string }> };
  clsact?: boolean;
  /** ingress filters by preference: the ifb a u32 mirred redirect sends to */
  redirects?: Record<string, string>;
}

export interface WgPeerState {
  publicKey: string;
  psk: string;
  endpoint: string;
  allowedIps: string[];
  keepalive: number;
}

export interface WgDeviceState {
  privateKey: string;
  listenPort: number;
  fwmark: number;
  peers: WgPeerState[];
  /** the mount namespace file whose /run/wireguard serves it (started under `nsenter --mount=F`); none: the host's */
  socketScope?: string;
}

export interface LinkState {
  ifindex: number;
  name: string;
  kind: LinkKind;
  /** tun devices: tun (wireguard-go, `tuntap … mode tun`) or tap */
  tunType?: "tun" | "tap";
  mtu: number;
  up: boolean;
  master?: string;
  alias?: string;
  addrgenmode: string;
  mac: string;
  /** the MAC was given explicitly (a kernel-chosen one is not part of the snapshot) */
  macSet: boolean;
  /** IPv4 addresses, "a.b.c.d/len", in the order the kernel keeps them (primaries first per subnet) */
  addrs: string[];
  /** the IPv4 addresses added with a broadcast address (`broadcast +`: the subnet's last address) */
  brd?: string[];
  peer?: { ns: NsName; name: string };
  /** link group (IFLA_GROUP), when not the default 0 */
  group?: number;
  /** a tun device served by wireguard-go */
  wg?: WgDeviceState;
  /** qdiscs, classes and filters (none: the kernel's default root qdisc) */
  tc?: TcLinkState;
  txqlen?: number;
}

export interface RouteState {
  dst: string; // "0.0.0.0/0" or "a.b.c.d/len" (network address)
  gateway?: string;
  dev: string;
  table: number;
  protocol: string;
  type: string;
  metric: number;
}

export interface RuleState {
  priority: number;
  not: boolean;
  fwmark?: number;
  fwmask?: number;
  table: number;
  suppressPrefixlen?: number;
  protocol: string;
}

export interface NftSetState {
  name: string;
  decl: string[];
  comment?: string;
  elements: string[];
}

export interface NftChainState {
  name: string;
  base?: { type: string; hook: string; prio: number; policy: string };
  rules: { text: string; comment?: string }[];
}

export interface NftTableState {
  family: string;
  name: string;
  sets: NftSetState[];
  chains: NftChainState[];
}

export interface IptChainState {
  name: string;
  /** builtin chains have a policy, user chains null */
  policy: string | null;
  rules: string[];
}

export interface NsState {
  links: LinkState[];
  routes: RouteState[];
  rules: RuleState[];
  sysctl: Record<string, string>;
  nft: NftTableState[];
  /** the iptables filter table; null when iptables has no ruleset here */
  iptables: IptChainState[] | null;
}

export interface KernelState {
  host: NsState;
  netns: Record<string, NsState>;
  files: Record<string, string>;
  dirs: string[];
  nextIfindex: number;
  nextMac: number;
  /** sysctl values a new namespace starts with, over the defaults (a host's devconf inheritance) */
  netnsSysctl: Record<string, string>;
}

/** One write op as the fake saw it. `args` are what the plan's OpLine carries for it. */
export interface WriteOp {
  seq: number;
  /** index among the forward-phase writes (1-based); undefined for rollback writes */
  index?: number;
  phase: "forward" | "rollback";
  tool: "ip" | "wg" | "exec" | "tc" | "files";
  ns: NsName;
  args: string[];
  stdin?: string;
  ok: boolean;
  error?: string;
  /** ip rejected an argument (invarg): the whole `ip` process exits 255, `-force` or not */
  fatal?: boolean;
  /** what the fault did to this op */
  injected?: "fail" | "ignore" | "kill";
}

export interface CallRecord {
  argv: string[];
  stdin?: string;
  result: RunResult;
}

export interface Fault {
  /** the K-th forward write op (1-based) */
  at?: number;
  /** or the first forward write op this matches */
  when?: (op: WriteOp) => boolean;
  /**
   * fail like the tool (default); accept and not apply ("ignore"); or "kill": bolt dies right
   * there (run() throws; the op and everything after it in that process never happen)
   */
  effect?: "fail" | "ignore" | "kill";
  /** the tool's complaint (default: a plausible one per tool) */
  message?: string;
}

export interface Expectation {
  /** the argv joined by single spaces, or a pattern over it */
  argv: string | RegExp;
  stdin?: string | RegExp;
  /** answer with this instead of simulating */
  respond?: RunResult;
}

export interface FakeKernelOptions {
  mode?: "strict" | "permissive";
}

/** Thrown by run() where a "kill" fault hits: bolt was killed (kill -9) at that op. */
export class FakeKernelKilled extends Error {
  constructor(readonly op: WriteOp) {
    super(`killed (simulated kill -9 of bolt) at write op ${op.index}: ${op.args.join(" ")}`);
    this.name = "FakeKernelKilled";
  }
}

/** Thrown (strict mode) for any command or syntax the fake does not understand. */
export class FakeKernelError extends Error {
  constructor(message: string) {
    super(`fake kernel: ${message}`);
    this.name = "FakeKernelError";
  }
}

/** Comparable identity of an op line: tool, namespace, args (and stdin). */
export function opKey(o: { tool: string; ns: NsName; args: string[]; stdin?: string }): string {
  return `${o.tool}|${o.ns ?? "-"}|${o.args.join(" ")}${o.stdin !== undefined ? `\n${o.stdin}` : ""}`;
}

export const HOST_NS = "(host)";

const SYSCTL_DEFAULTS: Record<string, string> = {
  "net.core.somaxconn": "4096",
  "net.ipv4.conf.all.forwarding": "0",
  "net.ipv4.conf.all.promote_secondaries": "1",
  "net.ipv4.conf.all.rp_filter": "0",
  "net.ipv4.conf.all.src_valid_mark": "0",
  "net.ipv4.conf.default.forwarding": "0",
  "net.ipv4.conf.default.promote_secondaries": "1",
  "net.ipv4.conf.default.rp_filter": "0",
  "net.ipv4.ip_default_ttl": "64",
  "net.ipv4.ip_forward": "0",
  "net.ipv4.ip_local_port_range": "32768\t60999",
  "net.ipv4.ping_group_range": "1\t0",
  "net.ipv4.tcp_syncookies": "1",
  "net.ipv6.conf.all.disable_ipv6": "0",
  "net.ipv6.conf.all.forwarding": "0",
  "net.ipv6.conf.default.disable_ipv6": "0",
};

/**
 * ip's argument errors (invarg and friends) end the process with exit 255 on the spot: a batch
 * stops there even with -force, and no "Command failed -:N" line is printed.
 */
const IP_FATAL = /^(Error: argument "|Error: any valid prefix|Error: inet address is expected|Not enough information)/;

const TABLE_NAMES: Record<number, string> = { 253: "default", 254: "main", 255: "local" };
const NFT_PRIO_NAMES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

type Res = { ok: true; out: string } | { ok: false; err: string };

/** A link's tc state as the snapshot compares it: key order (the order of writes) does not count. */
function canonTc(t: TcLinkState | undefined): unknown {
  if (!t || (!t.htb && !t.clsact)) return undefined;
  const sorted = <V>(r: Record<string, V> | undefined) => (r ? Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1))) : undefined);
  return {
    ...(t.htb ? { htb: { ...t.htb, classes: sorted(t.htb.classes) } } : {}),
    ...(t.clsact ? { clsact: true, redirects: sorted(t.redirects) } : {}),
  };
}
const ok = (out = ""): Res => ({ ok: true, out });
const fail = (err: string): Res => ({ ok: false, err });
const done = (stdout = "", stderr = "", code = 0): RunResult => ({ stdout, stderr, code });

// ---------------------------------------------------------------------------------------
// IPv4 helpers

function ip4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
}

function fmt4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function parsePrefix(s: string, defaultLen = 32): { addr: number; len: number } | undefined {
  const [a, l] = s.split("/");
  const addr = ip4(a ?? "");
  const len = l === undefined ? defaultLen : Number(l);
  if (addr === undefined || !Number.isInteger(len) || len < 0 || len > 32 || (l !== undefined && !/^\d+$/.test(l))) return undefined;
  return { addr, len };
}

function inSubnet(ip: number, net: number, len: number): boolean {
  return (ip & mask(len)) >>> 0 === (net & mask(len)) >>> 0;
}

// ---------------------------------------------------------------------------------------

export class FakeKernel implements CommandRunner {
  state: KernelState;
  readonly mode: "strict" | "permissive";
  readonly calls: CallRecord[] = [];
  readonly writes: WriteOp[] = [];
  /** commands or syntax the fake did not understand (permissive mode answers them; strict throws) */
  readonly unknown: string[] = [];
  phase: "forward" | "rollback" = "forward";
  private fault?: Fault & { fired?: boolean };
  private rollbackFault?: string;
  private forwardCount = 0;
  private expectations: (Expectation & { used?: boolean })[] = [];
  private ordered = false;
  /** mount namespace files made by `unshare --mount=F` (bolt's WireGuard runtime) */
  readonly wgMounts = new Set<string>();
  /** the mount namespace a command runs in (`nsenter --mount=F`), undefined: the host's */
  private scope?: string;

  constructor(opts: FakeKernelOptions = {}, state?: KernelState) {
    this.mode = opts.mode ?? "strict";
    this.state = state ?? {
      host: FakeKernel.freshNs(),
      netns: {},
      files: { "/etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" },
      dirs: ["/", "/etc", "/run", "/tmp", "/var", "/var/run"],
      nextIfindex: 2,
      nextMac: 1,
      netnsSysctl: {},
    };
  }

  static freshNs(): NsState {
    return {
      links: [{ ifindex: 1, name: "lo", kind: "loopback", mtu: 65536, up: false, addrgenmode: "eui64", mac: "00:00:00:00:00:00", macSet: false, addrs: [] }],
      routes: [],
      rules: [
        { priority: 0, not: false, table: 255, protocol: "kernel" },
        { priority: 32766, not: false, table: 254, protocol: "kernel" },
        { priority: 32767, not: false, table: 253, protocol: "kernel" },
      ],
      sysctl: { ...SYSCTL_DEFAULTS },
      nft: [],
      iptables: null,
    };
  }

  /** A new fake with a deep copy of this one's state (no calls, writes, fault or expectations). */
  clone(): FakeKernel {
    const k = new FakeKernel({ mode: this.mode }, structuredClone(this.state));
    for (const m of this.wgMounts) k.wgMounts.add(m);
    return k;
  }

  // ---- setup and inspection -------------------------------------------------------------

  addNetns(name: string): this {
    if (this.state.netns[name]) throw new FakeKernelError(`netns ${name} exists`);
    this.state.netns[name] = this.freshNetns();
    return this;
  }

  private freshNetns(): NsState {
    const s = FakeKernel.freshNs();
    Object.assign(s.sysctl, this.state.netnsSysctl);
    return s;
  }

  /** The state of a namespace (null: bolt's own); throws when it does not exist. */
  ns(name: NsName): NsState {
    const s = name === null ? this.state.host : this.state.netns[name];
    if (!s) throw new FakeKernelError(`no netns ${name}`);
    return s;
  }

  hasNetns(name: string): boolean {
    return !!this.state.netns[name];
  }

  link(ns: NsName, name: string): LinkState | undefined {
    return this.ns(ns).links.find((l) => l.name === name);
  }

  setSysctl(ns: NsName, key: string, value: string): this {
    this.ns(ns).sysctl[key] = value.trim().split(/\s+/).join("\t");
    return this;
  }

  writeFile(path: string, content: string): this {
    this.mkdirp(parentOf(path));
    this.state.files[path] = content;
    return this;
  }

  /** iptables as Docker leaves it: FORWARD policy DROP, an empty DOCKER-USER chain jumped to first. */
  dockerHost(ns: NsName): this {
    this.ns(ns).iptables = [
      { name: "INPUT", policy: "ACCEPT", rules: [] },
      { name: "FORWARD", policy: "DROP", rules: ["-j DOCKER-USER", "-j DOCKER-FORWARD"] },
      { name: "OUTPUT", policy: "ACCEPT", rules: [] },
      { name: "DOCKER", policy: null, rules: [] },
      { name: "DOCKER-FORWARD", policy: null, rules: ["-o docker0 -j DOCKER", "-i docker0 -j ACCEPT"] },
      { name: "DOCKER-USER", policy: null, rules: ["-j RETURN"] },
    ];
    return this;
  }

  nftTable(ns: NsName, family: string, name: string): NftTableState | undefined {
    return this.ns(ns).nft.find((t) => t.family === family && t.name === name);
  }

  // ---- faults, phases, scripting --------------------------------------------------------

  setFault(f: Fault | undefined): this {
    this.fault = f ? { ...f } : undefined;
    return this;
  }

  failAt(k: number, message?: string): this {
    return this.setFault({ at: k, message });
  }

  /** Every rollback write fails with MESSAGE (an undo that cannot run: a hung or broken tool); undefined: they work again. */
  failRollback(message: string | undefined): this {
    this.rollbackFault = message;
    return this;
  }

  /** From now on writes are rollback writes: recorded apart, never faulted (unless failRollback). */
  markRollback(): void {
    this.phase = "rollback";
  }

  forwardWrites(): WriteOp[] {
    return this.writes.filter((w) => w.phase === "forward");
  }

  rollbackWrites(): WriteOp[] {
    return this.writes.filter((w) => w.phase === "rollback");
  }

  /** Expected commands; `ordered`: every call must be the next expected one until all came. */
  expect(list: Expectation[], opts: { ordered?: boolean } = {}): this {
    this.expectations.push(...list);
    this.ordered = !!opts.ordered;
    return this;
  }

  assertDone(): void {
    const left = this.expectations.filter((e) => !e.used);
    if (left.length) throw new FakeKernelError(`expected commands that never came: ${left.map((e) => String(e.argv)).join(" | ")}`);
  }

  // ---- the runner -------------------------------------------------------------------------

  async run(argv: string[], stdin?: string, ..._rest: unknown[]): Promise<RunResult> {
    const result = this.runNow(argv, stdin);
    this.calls.push({ argv: [...argv], stdin, result });
    return result;
  }

  private runNow(argv: string[], stdin?: string): RunResult {
    const scripted = this.matchExpectation(argv, stdin);
    if (scripted) return scripted;
    return this.exec(null, argv, stdin);
  }

  private matchExpectation(argv: string[], stdin?: string): RunResult | undefined {
    if (!this.expectations.length) return undefined;
    const line = argv.join(" ");
    const matches = (e: Expectation) =>
      (typeof e.argv === "string" ? e.argv === line : e.argv.test(line)) &&
      (e.stdin === undefined || (typeof e.stdin === "string" ? e.stdin === stdin : e.stdin.test(stdin ?? "")));
    if (this.ordered) {
      const next = this.expectations.find((e) => !e.used);
      if (!next) return undefined;
      if (!matches(next)) throw new FakeKernelError(`out of order: got "${line}", expected ${String(next.argv)}`);
      next.used = true;
      return next.respond;
    }
    const e = this.expectations.find((x) => !x.used && matches(x));
    if (!e) return undefined;
    e.used = true;
    return e.respond;
  }

  private unsupported(what: string): string {
    this.unknown.push(what);
    if (this.mode === "strict") throw new FakeKernelError(`unsupported: ${what}`);
    return what;
  }

  private exec(ns: NsName, argv: string[], stdin?: string): RunResult {
    const [cmd, ...a] = argv;
    switch (cmd) {
      case "ip":
        return this.ipMain(ns, a, stdin);
      case "sysctl":
        return this.sysctlCmd(ns, a);
      case "wireguard-go":
        return this.wireguardGo(ns, argv);
      case "wg":
        return this.wgCmd(ns, argv);
      case "nft":
        return this.nftCmd(ns, argv, stdin);
      case "iptables":
        return this.iptablesCmd(ns, argv);
      case "iptables-save":
        return this.iptablesSave(ns, a);
      case "iptables-restore":
        return this.iptablesRestore(ns, argv, stdin);
      case "cat":
      case "tee":
      case "rm":
      case "mkdir":
      case "rmdir":
      case "test":
        if (this.isRuntimePath(argv)) return this.runtimeCmd(argv);
        return this.fileCmd(ns, argv, stdin);
      case "find":
        return this.findTail(argv);
      case process.execPath:
        if (argv[3] === FILES_LABEL) return this.filesHelper(argv, stdin);
        this.unsupported(`command ${argv.join(" ")}`);
        return done("", "node: unsupported\n", 127);
      case "nsenter":
        return this.nsenter(argv, stdin);
      case "unshare":
      case "mount":
      case "umount":
      case "touch":
        return this.runtimeCmd(argv);
      case "modprobe":
        return done("", "", 1);
      case "tc":
        return this.tcMain(ns, a, stdin);
      // The kernel config read for fq_codel: this fake kernel, like the machine it models, has none.
      case "zgrep":
        return done("", "", 1);
      case "timeout": {
        let i = 0;
        while (a[i]?.startsWith("-")) i += a[i] === "-k" || a[i] === "-s" ? 2 : 1;
        return this.exec(ns, a.slice(i + 1), stdin);
      }
      default:
        this.unsupported(`command ${argv.join(" ")}`);
        return done("", `${cmd}: command not found\n`, 127);
    }
  }

  /** Records a write op, applies the fault, else runs `apply` (which returns an error message or nothing). */
  private write(
    tool: WriteOp["tool"],
    ns: NsName,
    args: string[],
    stdin: string | undefined,
    failMsg: string,
    apply: () => string | undefined,
  ): string | undefined {
    const rec: WriteOp = { seq: this.writes.length + 1, phase: this.phase, tool, ns, args: [...args], ...(stdin !== undefined ? { stdin } : {}), ok: false };
    this.writes.push(rec);
    if (this.phase === "forward") {
      rec.index = ++this.forwardCount;
      const f = this.fault;
      if (f && !f.fired && (f.at === rec.index || (f.when?.(rec) ?? false))) {
        f.fired = true;
        rec.injected = f.effect ?? "fail";
        if (rec.injected === "kill") throw new FakeKernelKilled(rec);
        if (rec.injected === "ignore") {
          rec.ok = true;
          return undefined;
        }
        rec.error = f.message ?? failMsg;
        return rec.error;
      }
    } else if (this.rollbackFault !== undefined) {
      rec.error = this.rollbackFault;
      return rec.error;
    }
    const err = apply();
    rec.ok = err === undefined;
    if (err !== undefined) rec.error = err;
    if (err !== undefined && tool === "ip" && IP_FATAL.test(err)) rec.fatal = true;
    return err;
  }

  private nsOr(ns: NsName): NsState | undefined {
    return ns === null ? this.state.host : this.state.netns[ns];
  }

  private noNs(ns: string): RunResult {
    return done("", `Cannot open network namespace "${ns}": No such file or directory\n`, 255);
  }

  // ---- tc ---------------------------------------------------------------------------------
  // The lines bolt's tc kind writes and reads: an HTB root (`qdisc add dev D root handle H: htb
  // default N`), its classes (add/replace/change/del), leaf qdiscs (pfifo/fq_codel), clsact and
  // u32 mirred redirects; `tc -j qdisc show`, `class show dev D [classid C]` (text, as iproute2
  // 6.1 prints HTB classes even with -j) and `filter show dev D ingress` (JSON).

  private tcMain(ns: NsName, a: string[], stdin?: string): RunResult {
    const o = { json: false, force: false, batch: undefined as string | undefined };
    let i = 0;
    for (; i < a.length && a[i]!.startsWith("-"); i++) {
      const f = a[i]!;
      if (f === "-j" || f === "-json") o.json = true;
      else if (f === "-s" || f === "-stats") continue;
      else if (f === "-force") o.force = true;
      else if (f === "-batch" || f === "-b") o.batch = a[++i];
      else {
        this.unsupported(`tc option ${f}`);
        return done("", `Option "${f}" is unknown, try "tc -help".\n`, 255);
      }
    }
    if (ns !== null && !this.state.netns[ns]) return this.noNs(ns);
    if (o.batch === undefined) {
      const r = this.tcCmd(ns, a.slice(i), o.json);
      return r.ok ? done(r.out) : done("", `${r.err}\n`, 2);
    }
    let stdout = "";
    let stderr = "";
    for (const [k, raw] of (stdin ?? "").split("\n").entries()) {
      const line = raw.trim();
      if (!line) continue;
      const r = this.tcCmd(ns, line.split(/\s+/), o.json);
      if (r.ok) stdout += r.out;
      else {
        stderr += `${r.err}\nCommand failed -:${k + 1}\n`;
        if (!o.force) return done(stdout, stderr, 1);
      }
    }
    return done(stdout, stderr, stderr ? 1 : 0);
  }

  private tcCmd(ns: NsName, a: string[], json: boolean): Res {
    const [obj, verb] = [a[0] ?? "", a[1] ?? ""];
    const rest = a.slice(2);
    const at = (k: string) => {
      const i = rest.indexOf(k);
      return i >= 0 ? rest[i + 1] : undefined;
    };
    const dev = at("dev");
    const link = dev !== undefined ? this.ns(ns).links.find((l) => l.name === dev) : undefined;
    if (obj === "qdisc" && verb === "show") return ok(JSON.stringify(this.qdiscJson(ns)) + "\n");
    if (dev !== undefined && !link) return fail(`Cannot find device "${dev}"`);
    if (obj === "class" && verb === "show") return ok(this.classText(link!, at("classid")));
    if (obj === "filter" && verb === "show") {
      const out = Object.entries(link!.tc?.redirects ?? {}).map(([pref, to]) => ({
        protocol: "all",
        pref: Number(pref),
        kind: "u32",
        chain: 0,
        options: { fh: "800::800", actions: [{ order: 1, kind: "mirred", mirred_action: "redirect", direction: "egress", to_dev: to }] },
      }));
      return ok(JSON.stringify(out) + "\n");
    }
    if (!link) return fail(this.unsupported(`tc ${a.join(" ")}`));
    const write = (fn: (t: TcLinkState) => string | undefined): Res => {
      const err = this.write("tc", ns, a, undefined, "RTNETLINK answers: Operation not permitted", () => fn((link.tc ??= {})));
      return err === undefined ? ok() : fail(err);
    };
    if (obj === "qdisc") {
      if (rest.includes("clsact")) {
        if (verb === "add") return write((t) => (t.clsact ? "Error: Exclusivity flag on, cannot modify." : ((t.clsact = true), undefined)));
        if (verb === "del")
          return write((t) => {
            if (!t.clsact) return "Error: Cannot find specified qdisc on specified device.";
            t.clsact = false;
            t.redirects = {};
            return undefined;
          });
      }
      if (rest.includes("root")) {
        if (verb === "add" && rest.includes("htb"))
          return write((t) => {
            if (t.htb) return "Error: Exclusivity flag on, cannot modify.";
            t.htb = { handle: at("handle")!, defaultMinor: at("default") ?? "0", classes: {} };
            return undefined;
          });
        if (verb === "del") return write((t) => (t.htb ? ((t.htb = undefined), undefined) : "Error: Cannot delete qdisc with handle of zero."));
      }
      const parent = at("parent");
      if (parent && (verb === "add" || verb === "replace"))
        return write((t) => {
          const c = t.htb?.classes[parent];
          if (!c) return "Error: Failed to find specified class.";
          if (verb === "add" && c.leaf) return "Error: Exclusivity flag on, cannot modify.";
          c.leaf = rest.includes("fq_codel") ? "fq_codel" : `pfifo limit ${at("limit") ?? "1000"}`;
          return undefined;
        });
    }
    if (obj === "class") {
      const id = at("classid")!;
      if (verb === "del") return write((t) => (t.htb?.classes[id] ? (delete t.htb.classes[id], undefined) : "Error: Cannot find specified class."));
      if (verb === "add" || verb === "replace" || verb === "change")
        return write((t) => {
          if (!t.htb) return "Error: Cannot find specified qdisc on specified device.";
          const had = t.htb.classes[id];
          if (verb === "add" && had) return "RTNETLINK answers: File exists";
          if (verb === "change" && !had) return "Error: Cannot find specified class.";
          const parent = at("parent")!;
          if (parent !== `${t.htb.handle}` && !t.htb.classes[parent]) return "Error: Failed to find specified class.";
          const rate = parseRate(at("rate") ?? "");
          if (rate === undefined) return `Illegal "rate"`;
          const ceil = parseRate(at("ceil") ?? at("rate")!)!;
          t.htb.classes[id] = { parent, prio: Number(at("prio") ?? 0), rate: tcRate(rate), ceil: tcRate(ceil), ...(had?.leaf ? { leaf: had.leaf } : {}) };
          return undefined;
        });
    }
    if (obj === "filter" && rest.includes("ingress")) {
      const pref = at("pref")!;
      if (verb === "add")
        return write((t) => {
          if (!t.clsact) return "Error: Parent Qdisc doesn't exists.";
          const r = rest.indexOf("redirect");
          const to = rest[r + 1] === "dev" ? rest[r + 2] : undefined;
          if (!to || !this.ns(ns).links.some((l) => l.name === to)) return `Cannot find device "${to}"`;
          (t.redirects ??= {})[pref] = to;
          return undefined;
        });
      if (verb === "del")
        return write((t) => (t.redirects?.[pref] ? (delete t.redirects[pref], undefined) : "Error: Filter with specified priority/protocol not found."));
    }
    return fail(this.unsupported(`tc ${a.join(" ")}`));
  }

  private qdiscJson(ns: NsName): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    let handle = 0x8001;
    for (const l of [...this.ns(ns).links].sort((x, y) => x.ifindex - y.ifindex)) {
      const h = l.tc?.htb;
      if (h) {
        out.push({ kind: "htb", handle: h.handle, dev: l.name, root: true, refcnt: 2, options: { r2q: 10, default: `0x${h.defaultMinor}` } });
        for (const [id, c] of Object.entries(h.classes))
          if (c.leaf)
            out.push({
              kind: c.leaf.split(" ")[0],
              handle: `${(handle++).toString(16)}:`,
              dev: l.name,
              parent: id,
              options: c.leaf.startsWith("pfifo") ? { limit: Number(c.leaf.split(" ")[2]) } : {},
            });
      } else out.push({ kind: l.kind === "tun" ? "fq_codel" : "noqueue", handle: "0:", dev: l.name, root: true, refcnt: 2, options: {} });
      if (l.tc?.clsact) out.push({ kind: "clsact", handle: "ffff:", dev: l.name, parent: "ffff:fff1", options: {} });
    }
    return out;
  }

  private classText(l: LinkState, only?: string): string {
    const h = l.tc?.htb;
    if (!h) return "";
    const lines: string[] = [];
    for (const [id, c] of Object.entries(h.classes)) {
      if (only && id !== only) continue;
      const root = c.parent === h.handle;
      lines.push(
        `class htb ${id} ${root ? "root" : `parent ${c.parent}`}${c.leaf ? " leaf 8001:" : ""}${root ? "" : ` prio ${c.prio}`} rate ${c.rate} ceil ${c.ceil} burst 1600b cburst 1600b \n Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) \n backlog 0b 0p requeues 0\n\n`,
      );
    }
    return lines.join("");
  }

  // ---- ip ---------------------------------------------------------------------------------

  private ipMain(ctx: NsName, a: string[], stdin?: string): RunResult {
    let ns = ctx;
    const o = { json: false, details: false, force: false, batch: undefined as string | undefined };
    let i = 0;
    for (; i < a.length && a[i]!.startsWith("-"); i++) {
      const f = a[i]!;
      if (f === "-n" || f === "-netns") ns = a[++i]!;
      else if (f === "-j" || f === "-json") o.json = true;
      else if (f === "-d" || f === "-details") o.details = true;
      else if (f === "-4") continue;
      else if (f === "-6") {
        // IPv4-only model: the IPv6 route table is empty (link-local routes are the kernel's own).
        if (a.slice(i + 1).join(" ") === "route show table all" || a.slice(i + 1).join(" ") === "route show") return done(o.json ? "[]\n" : "");
        // …and its IPv6 rule list has only the kernel's default rules (bolt adds some for an IPv6 full tunnel only).
        if (a.slice(i + 1).join(" ") === "rule show")
          return done(o.json ? '[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]\n' : "");
        this.unsupported(`ip -6 ${a.slice(i + 1).join(" ")}`);
        return done("", "fake kernel: IPv4 only\n", 2);
      } else if (f === "-force") o.force = true;
      else if (f === "-batch" || f === "-b") o.batch = a[++i];
      else {
        this.unsupported(`ip option ${f}`);
        return done("", `Option "${f}" is unknown, try "ip -help".\n`, 255);
      }
    }
    const rest = a.slice(i);
    if (ns !== null && !this.state.netns[ns]) return this.noNs(ns);
    if (o.batch !== undefined) {
      if (o.batch !== "-") {
        this.unsupported(`ip -batch ${o.batch}`);
        return done("", `Cannot open file "${o.batch}"\n`, 1);
      }
      let stdout = "";
      let stderr = "";
      const lines = (stdin ?? "").split("\n");
      for (const [k, raw] of lines.entries()) {
        const line = raw.trim();
        if (!line || line.startsWith("#")) continue;
        const r = this.ipCmd(ns, line.split(/\s+/), o, true);
        if (r.ok) stdout += r.out;
        else if (IP_FATAL.test(r.err)) return done(stdout, `${stderr}${r.err}\n`, 255);
        else {
          stderr += `${r.err}\nCommand failed -:${k + 1}\n`;
          if (!o.force) return done(stdout, stderr, 1);
        }
      }
      return done(stdout, stderr, stderr ? 1 : 0);
    }
    if (rest[0] === "netns" && rest[1] === "exec") {
      const target = rest[2];
      if (!target || !this.state.netns[target]) return this.noNs(target ?? "");
      return this.exec(target, rest.slice(3), stdin);
    }
    const r = this.ipCmd(ns, rest, o, false);
    return r.ok ? done(r.out) : done("", `${r.err}\n`, IP_FATAL.test(r.err) ? 255 : 2);
  }

  private ipCmd(ns: NsName, a: string[], o: { json: boolean; details: boolean }, inBatch: boolean): Res {
    const obj = a[0] ?? "";
    const verb = a[1] ?? "show";
    const rest = a.slice(2);
    const is = (...names: string[]) => names.includes(obj);
    const isRead = ["show", "list", "lst"].includes(verb);
    if (is("route", "r", "ro") && verb === "get") {
      if (!o.json) return fail(this.unsupported(`ip ${a.join(" ")} without -j`));
      return this.routeGet(ns, rest);
    }
    if (isRead) {
      if (!o.json) return fail(this.unsupported(`ip ${a.join(" ")} without -j`));
      if (is("link", "l")) return this.linkShow(ns, rest, o.details);
      if (is("address", "addr", "a")) return this.addrShow(ns, rest);
      if (is("route", "r", "ro")) return this.routeShow(ns, rest);
      if (is("rule", "ru")) return ok(JSON.stringify(this.ruleJson(ns)) + "\n");
      if (is("netns") && ns === null)
        return ok(
          JSON.stringify(
            Object.keys(this.state.netns)
              .reverse()
              .map((name) => ({ name })),
          ) + "\n",
        );
      return fail(this.unsupported(`ip ${a.join(" ")}`));
    }
    const args = a;
    const write = (msg: string, fn: () => string | undefined): Res => {
      const err = this.write("ip", ns, args, undefined, msg, fn);
      return err === undefined ? ok() : fail(err);
    };
    const eperm = "RTNETLINK answers: Operation not permitted";
    if (is("link", "l")) {
      if (verb === "add") return write(eperm, () => this.linkAdd(ns, rest));
      if ((verb === "del" || verb === "delete") && rest[0] === "group") return write(eperm, () => this.groupDel(ns, rest[1]));
      if (verb === "del" || verb === "delete") return write(eperm, () => this.linkDel(ns, rest[0] === "dev" ? rest[1]! : rest[0]!));
      if (verb === "set" || verb === "change") return write(eperm, () => this.linkSet(ns, rest));
    } else if (is("tuntap", "tap")) {
      if (verb === "add") return write("ioctl(TUNSETIFF): Operation not permitted", () => this.tuntapAdd(ns, rest));
      if (verb === "del" || verb === "delete") return write("ioctl(TUNSETIFF): Operation not permitted", () => this.tuntapDel(ns, rest));
    } else if (is("address", "addr", "a")) {
      if (verb === "add" || verb === "del" || verb === "delete") return write(eperm, () => this.addrChange(ns, verb === "add", rest));
    } else if (is("route", "r", "ro")) {
      if (["add", "replace", "del", "delete", "append"].includes(verb)) return write(eperm, () => this.routeChange(ns, verb, rest));
    } else if (is("rule", "ru")) {
      if (verb === "add" || verb === "del" || verb === "delete") return write(eperm, () => this.ruleChange(ns, verb === "add", rest));
    } else if (is("netns")) {
      if (ns !== null && inBatch) return fail(this.unsupported(`ip -n ${ns} netns ${verb}`));
      const name = rest[0] ?? "";
      if (verb === "add") return write("mount --make-shared /run/netns failed: Operation not permitted", () => this.netnsAdd(name));
      if (verb === "del" || verb === "delete")
        return write(`Cannot remove namespace file "/run/netns/${name}": Operation not permitted`, () => this.netnsDel(name));
    }
    return fail(this.unsupported(`ip ${a.join(" ")}`));
  }

  private netnsAdd(name: string): string | undefined {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) return `Invalid netns name "${name}"`;
    if (this.state.netns[name]) return `Cannot create namespace file "/run/netns/${name}": File exists`;
    this.state.netns[name] = this.freshNetns();
    return undefined;
  }

  private netnsDel(name: string): string | undefined {
    const s = this.state.netns[name];
    if (!s) return `Cannot remove namespace file "/run/netns/${name}": No such file or directory`;
    // Its links die with it; a veth takes its peer (in another namespace) along.
    for (const l of [...s.links]) if (l.peer && l.peer.ns !== name) this.removeLink(l.peer.ns, l.peer.name);
    delete this.state.netns[name];
    return undefined;
  }

  private newMac(): string {
    const n = this.state.nextMac++;
    return `02:fa:00:${((n >> 16) & 255).toString(16).padStart(2, "0")}:${((n >> 8) & 255).toString(16).padStart(2, "0")}:${(n & 255).toString(16).padStart(2, "0")}`;
  }

  private newLink(name: string, kind: LinkKind, mtu: number, extra: Partial<LinkState> = {}): LinkState {
    return {
      ifindex: this.state.nextIfindex++,
      name,
      kind,
      mtu,
      up: false,
      addrgenmode: "eui64",
      mac: kind === "tun" && extra.tunType === "tun" ? "" : this.newMac(),
      macSet: false,
      addrs: [],
      ...extra,
    };
  }

  private linkAdd(ns: NsName, a: string[]): string | undefined {
    type Attrs = { name?: string; mtu?: number; mac?: string; netns?: string };
    const main: Attrs = {};
    const peer: Attrs = {};
    let kind: string | undefined;
    let txqlen: number | undefined;
    let cur = main;
    for (let i = 0; i < a.length; i++) {
      const t = a[i]!;
      const v = a[i + 1];
      if (t === "name") (cur.name = v), i++;
      else if (t === "mtu") (cur.mtu = Number(v)), i++;
      else if (t === "address") (cur.mac = v), i++;
      else if (t === "netns") (cur.netns = v), i++;
      else if (t === "type") (kind = v), i++;
      else if (t === "txqueuelen") (txqlen = Number(v)), i++;
      else if (t === "peer" && kind === "veth") cur = peer;
      else if (cur.name === undefined && i === 0) cur.name = t;
      else if (cur === peer && peer.name === undefined) peer.name = t;
      else return this.unsupported(`ip link add … ${t}`);
    }
    if (!main.name) return 'Not enough information: "dev" argument is required.';
    if (kind !== "bridge" && kind !== "veth" && kind !== "dummy" && kind !== "ifb") return this.unsupported(`ip link add type ${kind}`);
    for (const at of [main, peer]) {
      if (at.mtu !== undefined && (!Number.isInteger(at.mtu) || at.mtu < 68 || at.mtu > 65535)) return `Error: mtu ${at.mtu} is out of range.`;
      if (at.mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(at.mac)) return `Error: "${at.mac}" is not a valid link layer address.`;
      if (at.netns !== undefined && !this.state.netns[at.netns]) return `Error: argument "${at.netns}" is wrong: Invalid "netns" value`;
    }
    const mainNs = main.netns ?? ns;
    const home = this.nsOr(mainNs)!;
    if (home.links.some((l) => l.name === main.name)) return "RTNETLINK answers: File exists";
    const linkOf = (at: Attrs, name: string) => this.newLink(name, kind as LinkKind, at.mtu ?? 1500, at.mac ? { mac: at.mac.toLowerCase(), macSet: true } : {});
    const l = linkOf(main, main.name);
    if (txqlen !== undefined) l.txqlen = txqlen;
    if (kind === "veth") {
      const peerNs = peer.netns ?? ns;
      const pname = peer.name ?? `veth${this.state.nextIfindex}`;
      const ps = this.nsOr(peerNs)!;
      if (ps.links.some((x) => x.name === pname) || (peerNs === mainNs && pname === main.name)) return "RTNETLINK answers: File exists";
      const p = linkOf(peer, pname);
      p.peer = { ns: mainNs, name: main.name };
      l.peer = { ns: peerNs, name: pname };
      home.links.push(l);
      ps.links.push(p);
    } else home.links.push(l);
    return undefined;
  }

  /** Removes a link and what goes with it: its veth peer, its ports' master, routes through it, wireguard-go. */
  private removeLink(ns: NsName, name: string): void {
    const s = this.nsOr(ns);
    const l = s?.links.find((x) => x.name === name);
    if (!s || !l) return;
    s.links = s.links.filter((x) => x !== l);
    for (const p of s.links) if (p.master === name) delete p.master;
    s.routes = s.routes.filter((r) => r.dev !== name);
    if (l.peer) {
      const peer = l.peer;
      delete l.peer;
      const ps = this.nsOr(peer.ns);
      const p = ps?.links.find((x) => x.name === peer.name);
      if (p) {
        delete p.peer;
        this.removeLink(peer.ns, peer.name);
      }
    }
  }

  private linkDel(ns: NsName, name: string): string | undefined {
    if (!name) return 'Not enough information: "dev" argument is required.';
    if (!this.ns(ns).links.some((l) => l.name === name)) return `Cannot find device "${name}"`;
    if (name === "lo") return "RTNETLINK answers: Operation not supported";
    this.removeLink(ns, name);
    return undefined;
  }

  /** `ip link del group G`: every device of the group at once; an unknown or empty group deletes nothing and is no error. */
  private groupDel(ns: NsName, g: string | undefined): string | undefined {
    const group = g === "default" ? 0 : Number(g);
    if (!Number.isInteger(group) || group < 0) return `Error: argument "${g}" is wrong: Invalid "group" value`;
    for (const l of this.ns(ns).links.filter((x) => (x.group ?? 0) === group && x.kind !== "loopback")) this.removeLink(ns, l.name);
    return undefined;
  }

  private setUp(ns: NsName, l: LinkState, up: boolean): void {
    if (l.up === up) return;
    l.up = up;
    const s = this.ns(ns);
    if (up && l.kind === "loopback" && !l.addrs.length) l.addrs.push("127.0.0.1/8");
    // IPv4 flushes the routes through a device that goes down.
    if (!up) s.routes = s.routes.filter((r) => r.dev !== l.name);
  }

  private linkSet(ns: NsName, a: string[]): string | undefined {
    let i = 0;
    if (a[0] === "dev") i = 1;
    const name = a[i++];
    const s = this.ns(ns);
    const l = s.links.find((x) => x.name === name);
    if (!name) return 'Not enough information: "dev" argument is required.';
    if (!l) return `Cannot find device "${name}"`;
    // Parsed and checked first: one RTM_NEWLINK either changes everything or nothing.
    const changes: (() => void)[] = [];
    for (; i < a.length; i++) {
      const t = a[i]!;
      const v = a[i + 1];
      if (t === "up" || t === "down") changes.push(() => this.setUp(ns, l, t === "up"));
      else if (t === "mtu") {
        const m = Number(v);
        i++;
        if (!Number.isInteger(m) || m < 68 || m > 65535) return `Error: mtu ${v} is out of range.`;
        changes.push(() => void (l.mtu = m));
      } else if (t === "alias") {
        i++;
        if (v === undefined) return 'Error: argument "alias" requires a value';
        if (v.length > 255) return "Error: alias too long";
        changes.push(() => void (v === "" ? delete l.alias : (l.alias = v)));
      } else if (t === "addrgenmode") {
        i++;
        if (!["eui64", "none", "stable_secret", "random"].includes(v ?? "")) return `Error: argument "${v}" is wrong: Invalid address generation mode`;
        changes.push(() => void (l.addrgenmode = v!));
      } else if (t === "master") {
        i++;
        const m = s.links.find((x) => x.name === v);
        if (!m) return `Error: argument "${v}" is wrong: Device does not exist`;
        if (m.kind !== "bridge") return "RTNETLINK answers: Operation not supported";
        if (m === l) return "RTNETLINK answers: Invalid argument";
        changes.push(() => void (l.master = v));
      } else if (t === "nomaster") changes.push(() => void delete l.master);
      else if (t === "group") {
        i++;
        const g = v === "default" ? 0 : Number(v);
        if (!Number.isInteger(g) || g < 0 || g > 0xffffffff) return `Error: argument "${v}" is wrong: Invalid "group" value`;
        changes.push(() => void (g === 0 ? delete l.group : (l.group = g)));
      } else if (t === "address") {
        i++;
        if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(v ?? "")) return `Error: "${v}" is not a valid link layer address.`;
        changes.push(() => {
          l.mac = v!.toLowerCase();
          l.macSet = true;
        });
      } else if (t === "netns") {
        i++;
        if (!v || !this.state.netns[v]) return `Error: argument "${v}" is wrong: Invalid "netns" value`;
        const to = this.state.netns[v]!;
        if (to.links.some((x) => x.name === l.name)) return "RTNETLINK answers: File exists";
        if (l.kind === "loopback") return "RTNETLINK answers: Invalid argument";
        changes.push(() => this.moveLink(ns, l, v));
      } else return this.unsupported(`ip link set … ${t}`);
    }
    for (const c of changes) c();
    return undefined;
  }

  private moveLink(from: NsName, l: LinkState, to: string): void {
    const s = this.ns(from);
    // A moved link goes down and loses its addresses, master and routes.
    this.setUp(from, l, false);
    s.links = s.links.filter((x) => x !== l);
    for (const p of s.links) if (p.master === l.name) delete p.master;
    delete l.master;
    l.addrs = [];
    this.ns(to).links.push(l);
    if (l.peer) {
      const p = this.nsOr(l.peer.ns)?.links.find((x) => x.name === l.peer!.name);
      if (p) p.peer = { ns: to, name: l.name };
    }
  }

  private tuntapAdd(ns: NsName, a: string[]): string | undefined {
    const { name, mode } = this.tuntapArgs(a);
    if (!name || (mode !== "tap" && mode !== "tun")) return this.unsupported(`ip tuntap add ${a.join(" ")}`);
    const s = this.ns(ns);
    if (s.links.some((l) => l.name === name)) return "ioctl(TUNSETIFF): Device or resource busy";
    s.links.push(this.newLink(name, "tun", 1500, { tunType: mode, ...(mode === "tun" ? { mac: "" } : {}) }));
    return undefined;
  }

  private tuntapDel(ns: NsName, a: string[]): string | undefined {
    const { name, mode } = this.tuntapArgs(a);
    const l = this.link(ns, name ?? "");
    if (!l || l.kind !== "tun" || (mode && l.tunType !== mode)) return "ioctl(TUNSETIFF): Invalid argument";
    this.removeLink(ns, l.name);
    return undefined;
  }

  private tuntapArgs(a: string[]): { name?: string; mode?: string } {
    const out: { name?: string; mode?: string } = {};
    for (let i = 0; i < a.length; i++) {
      if (a[i] === "dev" || a[i] === "name") out.name = a[++i];
      else if (a[i] === "mode") out.mode = a[++i];
      else if (out.name === undefined) out.name = a[i];
    }
    return out;
  }

  private addrChange(ns: NsName, add: boolean, a: string[]): string | undefined {
    const addrTok = a[0] ?? "";
    let dev: string | undefined;
    let brd = false;
    for (let i = 1; i < a.length; i++) {
      if (a[i] === "dev") dev = a[++i];
      else if (a[i] === "broadcast" || a[i] === "brd") {
        if (a[++i] !== "+") return this.unsupported(`ip address … broadcast ${a[i]}`);
        brd = true;
      } else return this.unsupported(`ip address ${add ? "add" : "del"} … ${a[i]}`);
    }
    const p = parsePrefix(addrTok);
    if (!p) return `Error: any valid prefix is expected rather than "${addrTok}".`;
    if (!dev) return 'Not enough information: "dev" argument is required.';
    const s = this.ns(ns);
    const l = s.links.find((x) => x.name === dev);
    if (!l) return `Cannot find device "${dev}"`;
    const text = `${fmt4(p.addr)}/${p.len}`;
    if (add) {
      if (l.addrs.includes(text)) return "RTNETLINK answers: File exists";
      l.addrs.push(text);
      if (brd) l.brd = [...(l.brd ?? []), text];
      return undefined;
    }
    const hit = addrTok.includes("/") ? l.addrs.find((x) => x === text) : l.addrs.find((x) => x.split("/")[0] === fmt4(p.addr));
    if (!hit) return "RTNETLINK answers: Cannot assign requested address";
    const [hAddr, hLen] = [ip4(hit.split("/")[0]!)!, Number(hit.split("/")[1])];
    const primary = this.isPrimary(l, hit);
    l.addrs = l.addrs.filter((x) => x !== hit);
    if (primary) {
      // Deleting a primary address takes its subnet's secondaries along, unless they are promoted.
      const promote = s.sysctl["net.ipv4.conf.all.promote_secondaries"] === "1" || s.sysctl["net.ipv4.conf.default.promote_secondaries"] === "1";
      if (!promote) l.addrs = l.addrs.filter((x) => !(Number(x.split("/")[1]) === hLen && inSubnet(ip4(x.split("/")[0]!)!, hAddr, hLen)));
    }
    if (l.brd) l.brd = l.brd.filter((x) => l.addrs.includes(x));
    if (!l.brd?.length) delete l.brd;
    // The last IPv4 address gone: IPv4 is disabled on the device, its routes flushed.
    if (!l.addrs.length) s.routes = s.routes.filter((r) => r.dev !== l.name);
    return undefined;
  }

  private isPrimary(l: LinkState, addr: string): boolean {
    const [a, len] = [ip4(addr.split("/")[0]!)!, Number(addr.split("/")[1])];
    const first = l.addrs.find((x) => Number(x.split("/")[1]) === len && inSubnet(ip4(x.split("/")[0]!)!, a, len));
    return first === addr;
  }

  /** The routes the kernel makes itself from addresses on up links (prefix, local, broadcast). */
  private kernelRoutes(s: NsState): (RouteState & { scope: string; prefsrc: string })[] {
    const out: (RouteState & { scope: string; prefsrc: string })[] = [];
    for (const l of s.links) {
      if (!l.up) continue;
      for (const addr of l.addrs) {
        const [a, len] = [ip4(addr.split("/")[0]!)!, Number(addr.split("/")[1])];
        const net = (a & mask(len)) >>> 0;
        const src = fmt4(a);
        const base = { dev: l.name, protocol: "kernel", metric: 0, prefsrc: src };
        if (l.kind === "loopback") out.push({ ...base, dst: `${fmt4(net)}/${len}`, table: 255, type: "local", scope: "host" });
        else if (len < 32 && this.isPrimary(l, addr)) out.push({ ...base, dst: `${fmt4(net)}/${len}`, table: 254, type: "unicast", scope: "link" });
        out.push({ ...base, dst: `${src}/32`, table: 255, type: "local", scope: "host" });
        if (len < 31) out.push({ ...base, dst: `${fmt4((net | ~mask(len)) >>> 0)}/32`, table: 255, type: "broadcast", scope: "link" });
      }
    }
    return out;
  }

  private tableOf(t: string | undefined): number | undefined {
    if (t === undefined) return 254;
    const byName = Object.entries(TABLE_NAMES).find(([, n]) => n === t);
    if (byName) return Number(byName[0]);
    return /^\d+$/.test(t) && Number(t) < 2 ** 32 ? Number(t) : undefined;
  }

  private routeChange(ns: NsName, verb: string, a: string[]): string | undefined {
    const s = this.ns(ns);
    let i = 0;
    let type = "unicast";
    if (["unicast", "blackhole", "unreachable", "prohibit", "local"].includes(a[0] ?? "")) type = a[i++]!;
    const dstTok = a[i++] ?? "";
    const o: { via?: string; dev?: string; table?: string; proto?: string; metric?: string } = {};
    for (; i < a.length; i++) {
      const t = a[i]!;
      const v = a[i + 1];
      if (t === "via") (o.via = v), i++;
      else if (t === "dev" || t === "oif") (o.dev = v), i++;
      else if (t === "table") (o.table = v), i++;
      else if (t === "proto" || t === "protocol") (o.proto = v), i++;
      else if (t === "metric" || t === "priority" || t === "preference") (o.metric = v), i++;
      else return this.unsupported(`ip route ${verb} … ${t}`);
    }
    const p = dstTok === "default" ? { addr: 0, len: 0 } : parsePrefix(dstTok);
    if (!p) return `Error: any valid prefix is expected rather than "${dstTok}".`;
    if ((p.addr & mask(p.len)) >>> 0 !== p.addr) return "Error: Invalid prefix for given prefix length.";
    const dst = `${fmt4(p.addr)}/${p.len}`;
    const table = this.tableOf(o.table);
    if (table === undefined) return `Error: argument "${o.table}" is wrong: "table" value is invalid`;
    const metric = Number(o.metric ?? 0);
    const protocol = o.proto === undefined ? "boot" : o.proto === "3" ? "boot" : o.proto;
    if (verb === "del" || verb === "delete") {
      const idx = s.routes.findIndex(
        (r) =>
          r.dst === dst &&
          r.table === table &&
          (o.metric === undefined || r.metric === metric) &&
          (o.proto === undefined || r.protocol === protocol) &&
          (o.dev === undefined || r.dev === o.dev) &&
          (o.via === undefined || r.gateway === o.via) &&
          (type === "unicast" || r.type === type),
      );
      if (idx < 0) return "RTNETLINK answers: No such process";
      s.routes.splice(idx, 1);
      return undefined;
    }
    let dev = o.dev;
    if (dev !== undefined) {
      const l = s.links.find((x) => x.name === dev);
      if (!l) return `Cannot find device "${dev}"`;
      if (!l.up) return "Error: Nexthop device is not up.";
    }
    if (o.via !== undefined) {
      const gw = ip4(o.via);
      if (gw === undefined) return `Error: inet address is expected rather than "${o.via}".`;
      const hit = this.kernelRoutes(s).find(
        (r) =>
          r.table === 254 &&
          r.type === "unicast" &&
          (dev === undefined || r.dev === dev) &&
          inSubnet(gw, ip4(r.dst.split("/")[0]!)!, Number(r.dst.split("/")[1])),
      );
      if (!hit) return "Error: Nexthop has invalid gateway.";
      dev ??= hit.dev;
    }
    if (dev === undefined && type === "unicast") return "Error: Device for nexthop is not up.";
    const route: RouteState = { dst, ...(o.via !== undefined ? { gateway: o.via } : {}), dev: dev ?? "", table, protocol, type, metric };
    const idx = s.routes.findIndex((r) => r.dst === dst && r.table === table && r.metric === metric);
    if (verb === "replace") {
      if (idx >= 0) s.routes[idx] = route;
      else s.routes.push(route);
      return undefined;
    }
    if (idx >= 0 && verb === "add") return "RTNETLINK answers: File exists";
    s.routes.push(route);
    return undefined;
  }

  private routeJson(r: RouteState & { scope?: string; prefsrc?: string }): Record<string, unknown> {
    const [a, len] = r.dst.split("/");
    return {
      ...(r.type !== "unicast" ? { type: r.type } : {}),
      dst: r.dst === "0.0.0.0/0" ? "default" : len === "32" ? a : r.dst,
      ...(r.gateway ? { gateway: r.gateway } : {}),
      ...(r.dev ? { dev: r.dev } : {}),
      ...(r.table !== 254 ? { table: TABLE_NAMES[r.table] ?? String(r.table) } : {}),
      ...(r.protocol !== "boot" ? { protocol: r.protocol } : {}),
      ...(r.metric ? { metric: r.metric } : {}),
      ...(r.scope ? { scope: r.scope } : !r.gateway && r.type === "unicast" ? { scope: "link" } : {}),
      ...(r.prefsrc ? { prefsrc: r.prefsrc } : {}),
      flags: [],
    };
  }

  private routeShow(ns: NsName, a: string[]): Res {
    let table: number | "all" = 254;
    let onlyDefault = false;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === "table") {
        const t = a[++i];
        if (t === "all") table = "all";
        else {
          const n = this.tableOf(t);
          if (n === undefined) return fail(`Error: argument "${t}" is wrong: table id value is invalid`);
          table = n;
        }
      } else if (a[i] === "default") onlyDefault = true;
      else return fail(this.unsupported(`ip route show … ${a[i]}`));
    }
    const s = this.ns(ns);
    const all = [...s.routes, ...this.kernelRoutes(s)]
      .filter((r) => (table === "all" ? true : r.table === table) && (!onlyDefault || r.dst === "0.0.0.0/0"))
      .sort(
        (x, y) => x.table - y.table || ip4(x.dst.split("/")[0]!)! - ip4(y.dst.split("/")[0]!)! || Number(x.dst.split("/")[1]) - Number(y.dst.split("/")[1]),
      );
    const shown =
      table === "all" ? all.map((r) => this.routeJson(r)) : all.map((r) => ({ ...this.routeJson(r), table: undefined })).map(({ table: _t, ...r }) => r);
    return ok(JSON.stringify(shown) + "\n");
  }

  /** `route get ADDR [mark M]`: the longest match in table main (policy rules are not consulted). */
  private routeGet(ns: NsName, a: string[]): Res {
    const addr = ip4(a[0] ?? "");
    if (addr === undefined || (a.length !== 1 && !(a.length === 3 && a[1] === "mark"))) return fail(this.unsupported(`ip route get ${a.join(" ")}`));
    const s = this.ns(ns);
    const hit = [...s.routes, ...this.kernelRoutes(s)]
      .filter((r) => r.table === 254 && r.type === "unicast")
      .filter((r) => {
        const [net, len] = r.dst.split("/");
        const bits = Number(len);
        const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
        return (addr & mask) >>> 0 === (ip4(net!)! & mask) >>> 0;
      })
      .sort((x, y) => Number(y.dst.split("/")[1]) - Number(x.dst.split("/")[1]))[0];
    if (!hit) return fail("RTNETLINK answers: Network is unreachable");
    return ok(JSON.stringify([{ dst: a[0], ...(hit.gateway ? { gateway: hit.gateway } : {}), dev: hit.dev, flags: [], uid: 0, cache: [] }]) + "\n");
  }

  private ruleChange(ns: NsName, add: boolean, a: string[]): string | undefined {
    const s = this.ns(ns);
    const want: Partial<RuleState> & { not?: boolean } = {};
    for (let i = 0; i < a.length; i++) {
      const t = a[i]!;
      const v = a[i + 1];
      if (t === "priority" || t === "pref" || t === "prio" || t === "preference") {
        if (!/^\d+$/.test(v ?? "")) return `Error: argument "${v}" is wrong: preference value is invalid`;
        want.priority = Number(v);
        i++;
      } else if (t === "not") want.not = true;
      else if (t === "fwmark") {
        const [m, k] = (v ?? "").split("/");
        const mark = Number(m);
        const msk = k === undefined ? 0xffffffff : Number(k);
        if (!Number.isInteger(mark) || !Number.isInteger(msk)) return `Error: argument "${v}" is wrong: fwmark value is invalid`;
        want.fwmark = mark >>> 0;
        want.fwmask = msk >>> 0;
        i++;
      } else if (t === "table" || t === "lookup") {
        const n = this.tableOf(v);
        if (n === undefined) return `Error: argument "${v}" is wrong: invalid table ID`;
        want.table = n;
        i++;
      } else if (t === "suppress_prefixlength" || t === "sup_pl") {
        want.suppressPrefixlen = Number(v);
        i++;
      } else if (t === "protocol" || t === "proto") {
        want.protocol = v === "3" ? "boot" : v;
        i++;
      } else if (t === "from" && v === "all") i++;
      else return this.unsupported(`ip rule ${add ? "add" : "del"} … ${t}`);
    }
    if (add) {
      const rule: RuleState = {
        priority:
          want.priority ??
          Math.max(
            0,
            (s.rules
              .filter((r) => r.priority > 0)
              .map((r) => r.priority)
              .sort((x, y) => x - y)[0] ?? 32766) - 1,
          ),
        not: !!want.not,
        ...(want.fwmark !== undefined ? { fwmark: want.fwmark, fwmask: want.fwmask } : {}),
        table: want.table ?? 254,
        ...(want.suppressPrefixlen !== undefined ? { suppressPrefixlen: want.suppressPrefixlen } : {}),
        protocol: want.protocol ?? "boot",
      };
      const same = (r: RuleState) =>
        r.priority === rule.priority &&
        r.not === rule.not &&
        r.fwmark === rule.fwmark &&
        r.fwmask === rule.fwmask &&
        r.table === rule.table &&
        r.suppressPrefixlen === rule.suppressPrefixlen;
      if (s.rules.some(same)) return "RTNETLINK answers: File exists";
      // Kept ordered by priority; a new rule goes after the others of the same priority.
      const at = s.rules.findIndex((r) => r.priority > rule.priority);
      if (at < 0) s.rules.push(rule);
      else s.rules.splice(at, 0, rule);
      return undefined;
    }
    const idx = s.rules.findIndex(
      (r) =>
        (want.priority === undefined || r.priority === want.priority) &&
        (want.table === undefined || r.table === want.table) &&
        (want.protocol === undefined || r.protocol === want.protocol) &&
        (want.fwmark === undefined || (r.fwmark === want.fwmark && r.fwmask === want.fwmask)) &&
        (want.not === undefined || r.not === want.not) &&
        (want.suppressPrefixlen === undefined || r.suppressPrefixlen === want.suppressPrefixlen),
    );
    if (idx < 0) return "RTNETLINK answers: No such file or directory";
    s.rules.splice(idx, 1);
    return undefined;
  }

  private ruleJson(ns: NsName): Record<string, unknown>[] {
    return this.ns(ns).rules.map((r) => ({
      priority: r.priority,
      ...(r.not ? { not: null } : {}),
      src: "all",
      ...(r.fwmark !== undefined || r.fwmask !== undefined
        ? { fwmark: `0x${(r.fwmark ?? 0).toString(16)}`, ...(r.fwmask !== 0xffffffff ? { fwmask: `0x${(r.fwmask ?? 0).toString(16)}` } : {}) }
        : {}),
      table: TABLE_NAMES[r.table] ?? String(r.table),
      ...(r.suppressPrefixlen !== undefined ? { suppress_prefixlen: r.suppressPrefixlen } : {}),
      ...(r.protocol !== "kernel" && r.protocol !== "boot" ? { protocol: r.protocol } : {}),
    }));
  }

  private flags(ns: NsName, l: LinkState): string[] {
    const up = l.up ? ["UP"] : [];
    const carrier = this.carrier(ns, l);
    const lower = l.up && carrier ? ["LOWER_UP"] : [];
    const noCarrier = l.up && !carrier ? ["NO-CARRIER"] : [];
    if (l.kind === "loopback") return ["LOOPBACK", ...up, ...lower];
    if (l.kind === "tun" && l.tunType === "tun") return [...noCarrier, "POINTOPOINT", "MULTICAST", "NOARP", ...up, ...lower];
    if (l.kind === "dummy") return ["BROADCAST", "NOARP", ...up, ...lower];
    return [...noCarrier, "BROADCAST", "MULTICAST", ...up, ...lower];
  }

  private carrier(ns: NsName, l: LinkState): boolean {
    if (l.kind === "loopback" || l.kind === "dummy") return true;
    if (l.kind === "tun") return !!l.wg;
    if (l.kind === "veth") {
      const p = l.peer && this.nsOr(l.peer.ns)?.links.find((x) => x.name === l.peer!.name);
      return !!p?.up;
    }
    // a bridge has carrier when it has no ports (operstate UNKNOWN) or one of its ports has
    const ports = this.ns(ns).links.filter((p) => p.master === l.name);
    return !ports.length || ports.some((p) => p.up && this.carrier(ns, p));
  }

  private linkBase(ns: NsName, l: LinkState): Record<string, unknown> {
    const flags = this.flags(ns, l);
    const portless = l.kind === "bridge" && !this.ns(ns).links.some((p) => p.master === l.name);
    const operstate =
      l.kind === "loopback" || (l.kind === "tun" && l.tunType === "tun") || portless ? (l.up ? "UNKNOWN" : "DOWN") : flags.includes("LOWER_UP") ? "UP" : "DOWN";
    const peer = l.peer ? this.nsOr(l.peer.ns)?.links.find((x) => x.name === l.peer!.name) : undefined;
    return {
      ifindex: l.ifindex,
      ...(peer && l.peer!.ns === ns ? { link: peer.name } : peer ? { link_index: peer.ifindex } : {}),
      ifname: l.name,
      flags,
      mtu: l.mtu,
      qdisc: l.tc?.htb ? "htb" : l.kind === "loopback" ? (l.up ? "noqueue" : "noop") : l.kind === "tun" ? "fq_codel" : "noqueue",
      ...(l.master ? { master: l.master } : {}),
      operstate,
      group: l.group ? String(l.group) : "default",
      txqlen: l.txqlen ?? (l.kind === "tun" ? 500 : l.kind === "ifb" ? 32 : 1000),
      link_type: l.kind === "loopback" ? "loopback" : l.kind === "tun" && l.tunType === "tun" ? "none" : "ether",
      ...(l.mac ? { address: l.mac, broadcast: l.kind === "loopback" ? "00:00:00:00:00:00" : "ff:ff:ff:ff:ff:ff" } : {}),
      ...(peer && l.peer!.ns !== ns ? { link_netnsid: 0 } : {}),
    };
  }

  private linkShow(ns: NsName, a: string[], details: boolean): Res {
    const name = a[0] === "dev" ? a[1] : a[0];
    const s = this.ns(ns);
    const links = name ? s.links.filter((l) => l.name === name) : s.links;
    if (name && !links.length) return fail(`Device "${name}" does not exist.`);
    const out = [...links]
      .sort((x, y) => x.ifindex - y.ifindex)
      .map((l) => ({
        ...this.linkBase(ns, l),
        ...(details
          ? {
              promiscuity: l.master ? 1 : 0,
              min_mtu: l.kind === "loopback" ? 0 : 68,
              max_mtu: l.kind === "loopback" ? 0 : 65535,
              ...(l.kind !== "loopback"
                ? {
                    linkinfo: {
                      info_kind: l.kind,
                      ...(l.kind === "tun"
                        ? { info_data: { type: l.tunType, pi: l.tunType === "tun", vnet_hdr: false, multi_queue: false, persist: l.tunType === "tap" } }
                        : {}),
                      ...(l.master ? { info_slave_kind: "bridge" } : {}),
                    },
                  }
                : {}),
              inet6_addr_gen_mode: l.addrgenmode,
            }
          : {}),
        ...(l.alias ? { ifalias: l.alias } : {}),
      }));
    return ok(JSON.stringify(out) + "\n");
  }

  private addrShow(ns: NsName, a: string[]): Res {
    const name = a[0] === "dev" ? a[1] : a[0];
    const s = this.ns(ns);
    const links = name ? s.links.filter((l) => l.name === name) : s.links;
    if (name && !links.length) return fail(`Device "${name}" does not exist.`);
    const out = [...links]
      .sort((x, y) => x.ifindex - y.ifindex)
      .map((l) => {
        const v4 = l.addrs.map((addr) => {
          const [ipS, lenS] = addr.split("/");
          const len = Number(lenS);
          // "broadcast" only for an address added with `broadcast +`: else the kernel keeps none
          const brd = l.brd?.includes(addr) && len < 31 ? fmt4((ip4(ipS!)! | ~mask(len)) >>> 0) : undefined;
          return {
            family: "inet",
            local: ipS,
            prefixlen: len,
            ...(brd ? { broadcast: brd } : {}),
            scope: l.kind === "loopback" ? "host" : "global",
            ...(this.isPrimary(l, addr) ? {} : { secondary: true }),
            label: l.name,
            valid_life_time: 4294967295,
            preferred_life_time: 4294967295,
          };
        });
        const v6 =
          l.up && l.kind === "loopback"
            ? [{ family: "inet6", local: "::1", prefixlen: 128, scope: "host", valid_life_time: 4294967295, preferred_life_time: 4294967295 }]
            : l.up && l.addrgenmode === "eui64" && l.mac
              ? [{ family: "inet6", local: eui64(l.mac), prefixlen: 64, scope: "link", valid_life_time: 4294967295, preferred_life_time: 4294967295 }]
              : [];
        const {
          ifindex,
          ifname,
          flags,
          mtu,
          qdisc,
          master,
          operstate,
          group,
          txqlen,
          link_type,
          address,
          broadcast,
          link_netnsid,
          link: peerName,
          link_index,
        } = this.linkBase(ns, l);
        return {
          ifindex,
          ...(peerName ? { link: peerName } : link_index ? { link_index } : {}),
          ifname,
          flags,
          mtu,
          qdisc,
          ...(master ? { master } : {}),
          operstate,
          group,
          txqlen,
          link_type,
          ...(address ? { address, broadcast } : {}),
          ...(link_netnsid !== undefined ? { link_netnsid } : {}),
          addr_info: [...v4, ...v6],
        };
      });
    return ok(JSON.stringify(out) + "\n");
  }

  // ---- sysctl -----------------------------------------------------------------------------

  private sysctlCmd(ns: NsName, a: string[]): RunResult {
    const s = this.ns(ns);
    let quiet = false;
    let valuesOnly = false;
    let writeMode = false;
    const keys: string[] = [];
    for (const t of a) {
      if (t === "-q" || t === "--quiet") quiet = true;
      else if (t === "-n" || t === "--values") valuesOnly = true;
      else if (t === "-w" || t === "--write") writeMode = true;
      else if (t === "-e" || t === "--ignore") continue;
      else if (t.startsWith("-")) {
        this.unsupported(`sysctl ${t}`);
        return done("", `sysctl: invalid option -- '${t}'\n`, 255);
      } else keys.push(t);
    }
    let stdout = "";
    let stderr = "";
    const missing = (k: string) => `sysctl: cannot stat /proc/sys/${k.replace(/\./g, "/")}: No such file or directory`;
    for (const k of keys) {
      const eq = k.indexOf("=");
      if (eq < 0 && !writeMode) {
        const v = s.sysctl[k];
        if (v === undefined) stderr += missing(k) + "\n";
        else stdout += valuesOnly ? `${v}\n` : `${k} = ${v}\n`;
        continue;
      }
      if (eq < 0) {
        stderr += `sysctl: "${k}" must be of the form name=value\n`;
        continue;
      }
      const key = k.slice(0, eq);
      const value = k
        .slice(eq + 1)
        .trim()
        .split(/\s+/)
        .join("\t");
      const err = this.write("exec", ns, ["sysctl", ...a], undefined, `sysctl: permission denied on key "${key}"`, () => {
        if (s.sysctl[key] === undefined) return missing(key);
        if (!/^-?\d+(\t-?\d+)*$/.test(value)) return `sysctl: setting key "${key}": Invalid argument`;
        s.sysctl[key] = value;
        // ip_forward is conf.all.forwarding; changing it also changes the default for new devices.
        if (key === "net.ipv4.ip_forward" || key === "net.ipv4.conf.all.forwarding") {
          s.sysctl["net.ipv4.ip_forward"] = value;
          s.sysctl["net.ipv4.conf.all.forwarding"] = value;
          s.sysctl["net.ipv4.conf.default.forwarding"] = value;
        }
        return undefined;
      });
      if (err) stderr += err + "\n";
      else if (!quiet) stdout += `${key} = ${value}\n`;
    }
    return done(stdout, stderr, stderr ? 255 : 0);
  }

  // ---- WireGuard's per-target runtime (mount namespaces) ------------------------------------

  private isRuntimePath(argv: string[]): boolean {
    const paths = argv.slice(1).filter((a) => !a.startsWith("-"));
    const dir = WG_DIR();
    return (
      paths.length > 0 &&
      paths.every((p) => p === "/proc/self/mountinfo" || p === "/run/wireguard" || p === dir || p.startsWith(`${dir}/`) || p === `${dir}.setup`)
    );
  }

  private runtimeCmd(argv: string[]): RunResult {
    const [cmd, ...a] = argv;
    if (cmd === "cat") {
      // The root mount is private here (a container); a systemd host's is shared.
      const lines = [
        "21 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
        ...[...this.wgMounts].map((f, i) => `${100 + i} 21 0:4 mnt:[4026532${i}] ${f} rw - nsfs nsfs rw`),
      ];
      return done(lines.join("\n") + "\n");
    }
    if (cmd === "unshare") {
      const f = /^--mount=(.+)$/.exec(a[0] ?? "")?.[1];
      if (!f || a[1] !== "--propagation" || a[2] !== "private" || a[3] !== "mount" || a[4] !== "--bind" || a[6] !== "/run/wireguard") {
        this.unsupported(argv.join(" "));
        return done("", "unshare: unsupported\n", 1);
      }
      this.wgMounts.add(f);
      return done();
    }
    if (cmd === "umount") {
      if (!this.wgMounts.delete(a[0] ?? "")) return done("", `umount: ${a[0]}: not mounted.\n`, 32);
      return done();
    }
    if (cmd === "mount") {
      this.unsupported(argv.join(" "));
      return done("", "mount: unsupported\n", 1);
    }
    return done(); // mkdir -p, rmdir, rm -f, touch of the runtime's own paths
  }

  /** `nsenter --net=/run/netns/NS --mount=F -- CMD…`: CMD in NS, seeing the devices started through F. */
  private nsenter(argv: string[], stdin?: string): RunResult {
    const net = /^--net=\/run\/netns\/(.+)$/.exec(argv[1] ?? "")?.[1];
    const mnt = /^--mount=(.+)$/.exec(argv[2] ?? "")?.[1];
    if (!net || !mnt || argv[3] !== "--") {
      this.unsupported(argv.join(" "));
      return done("", "nsenter: unsupported\n", 1);
    }
    if (!this.state.netns[net]) return done("", `nsenter: cannot open /run/netns/${net}: No such file or directory\n`, 1);
    if (!this.wgMounts.has(mnt)) return done("", "nsenter: reassociate to namespace 'ns/mnt' failed: Invalid argument\n", 1);
    const outer = this.scope;
    this.scope = mnt;
    try {
      return this.exec(net, argv.slice(4), stdin);
    } finally {
      this.scope = outer;
    }
  }

  // ---- WireGuard --------------------------------------------------------------------------

  /**
   * The device behind /var/run/wireguard/IF.sock of the mount namespace the command runs in:
   * the host's is shared by every network namespace entered without bolt's runtime.
   */
  private wgDevice(ns: NsName, ifname: string): { ns: NsName; link: LinkState } | undefined {
    const mine = (l: LinkState) => l.name === ifname && !!l.wg && l.wg.socketScope === this.scope;
    const here = this.nsOr(ns)?.links.find(mine);
    if (here) return { ns, link: here };
    for (const [name, s] of [[null, this.state.host] as const, ...Object.entries(this.state.netns)]) {
      const l = s.links.find(mine);
      if (l) return { ns: name, link: l };
    }
    return undefined;
  }

  private wireguardGo(ns: NsName, argv: string[]): RunResult {
    const args = argv.slice(1).filter((t) => t !== "-f" && t !== "--foreground");
    const ifname = args[0];
    if (!ifname || args.length > 1) {
      this.unsupported(`wireguard-go ${argv.slice(1).join(" ")}`);
      return done("", "Usage: wireguard-go [-f/--foreground] INTERFACE-NAME\n", 2);
    }
    const err = this.write("exec", ns, argv, undefined, `ERROR: (${ifname}) Failed to create TUN device: operation not permitted`, () => {
      if (this.wgDevice(ns, ifname)) return `ERROR: (${ifname}) UAPI listen error: unix /var/run/wireguard/${ifname}.sock: address already in use`;
      const s = this.ns(ns);
      if (s.links.some((l) => l.name === ifname)) return `ERROR: (${ifname}) Failed to create TUN device: device or resource busy`;
      const wg: WgDeviceState = { privateKey: "", listenPort: 0, fwmark: 0, peers: [], ...(this.scope ? { socketScope: this.scope } : {}) };
      s.links.push(this.newLink(ifname, "tun", 1420, { tunType: "tun", mac: "", wg }));
      return undefined;
    });
    return err ? done("", err + "\n", 1) : done();
  }

  private readKey(path: string): { key: string } | { error: string } {
    let text: string;
    try {
      text = path in this.state.files ? this.state.files[path]! : readFileSync(path, "utf8");
    } catch (e) {
      return { error: `fopen: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "No such file or directory" : (e as Error).message}` };
    }
    const key = text.trim();
    if (key === "") return { key: "" };
    if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(key)) return { error: `Key is not the correct length or format: \`${path}'` };
    return { key };
  }

  private wgCmd(ns: NsName, argv: string[]): RunResult {
    const sub = argv[1];
    if (sub === "show") {
      const ifname = argv[2] ?? "";
      const what = argv[3] ?? "";
      const d = this.wgDevice(ns, ifname);
      if (!d) return done("", "Unable to access interface: No such device\n", 1);
      const w = d.link.wg!;
      const pub = w.privateKey ? publicKeyOf(w.privateKey) : "";
      if (what === "dump") {
        const head = `${w.privateKey || "(none)"}\t${pub || "(none)"}\t${w.listenPort}\t${w.fwmark ? `0x${w.fwmark.toString(16)}` : "off"}`;
        const peers = w.peers.map(
          (p) => `${p.publicKey}\t${p.psk || "(none)"}\t${p.endpoint || "(none)"}\t${p.allowedIps.join(",") || "(none)"}\t0\t0\t0\t${p.keepalive || "off"}`,
        );
        return done([head, ...peers].join("\n") + "\n");
      }
      if (what === "listen-port") return done(`${w.listenPort}\n`);
      if (what === "public-key") return done(`${pub || "(none)"}\n`);
      if (what === "fwmark") return done(`${w.fwmark ? `0x${w.fwmark.toString(16)}` : "off"}\n`);
      this.unsupported(`wg show ${argv.slice(2).join(" ")}`);
      return done("", `Invalid parameter: \`${what}'\n`, 1);
    }
    if (sub !== "set") {
      this.unsupported(`wg ${argv.slice(1).join(" ")}`);
      return done("", `Invalid subcommand: \`${sub}'\n`, 1);
    }
    const ifname = argv[2] ?? "";
    const a = argv.slice(3);
    // Parsed (key files read) before anything is sent, like wg: a bad argument changes nothing.
    type Clause = { tokens: string[]; apply: (w: WgDeviceState) => void };
    const clauses: Clause[] = [];
    const deviceTokens: string[] = [];
    const deviceSets: ((w: WgDeviceState) => void)[] = [];
    let i = 0;
    const bad = (msg: string) => done("", msg + "\n", 1);
    for (; i < a.length && a[i] !== "peer"; i++) {
      const t = a[i]!;
      const v = a[i + 1] ?? "";
      deviceTokens.push(t, v);
      i++;
      if (t === "private-key") {
        const k = this.readKey(v);
        if ("error" in k) return bad(k.error);
        deviceSets.push((w) => void (w.privateKey = k.key));
      } else if (t === "listen-port") {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) return bad(`Listen port is invalid: \`${v}'`);
        deviceSets.push((w) => void (w.listenPort = n));
      } else if (t === "fwmark") {
        const n = v === "off" ? 0 : Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) return bad(`Fwmark is neither a number nor "off": \`${v}'`);
        deviceSets.push((w) => void (w.fwmark = n));
      } else {
        this.unsupported(`wg set ${t}`);
        return bad(`Invalid argument: \`${t}'`);
      }
    }
    if (deviceTokens.length) clauses.push({ tokens: ["wg", "set", ifname, ...deviceTokens], apply: (w) => deviceSets.forEach((f) => f(w)) });
    while (i < a.length) {
      // a[i] === "peer"
      const pub = a[i + 1] ?? "";
      if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(pub)) return bad(`Key is not the correct length or format: \`${pub}'`);
      const tokens = ["peer", pub];
      const sets: ((p: WgPeerState) => void)[] = [];
      let remove = false;
      let allowed: string[] | undefined;
      for (i += 2; i < a.length && a[i] !== "peer"; i++) {
        const t = a[i]!;
        const v = a[i + 1] ?? "";
        if (t === "remove") {
          remove = true;
          tokens.push(t);
          continue;
        }
        tokens.push(t, v);
        i++;
        if (t === "endpoint") {
          if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(v)) return bad(`Unable to parse endpoint: \`${v}'`);
          sets.push((p) => void (p.endpoint = v));
        } else if (t === "persistent-keepalive") {
          const n = v === "off" ? 0 : Number(v);
          if (!Number.isInteger(n) || n < 0 || n > 65535) return bad(`Persistent keepalive interval is neither 0/off nor 1-65535: \`${v}'`);
          sets.push((p) => void (p.keepalive = n));
        } else if (t === "allowed-ips") {
          const list: string[] = [];
          for (const part of v
            .split(",")
            .map((x) => x.trim())
            .filter(Boolean)) {
            const p = parsePrefix(part);
            if (!p) return bad(`Unable to parse IP address: \`${part}'`);
            const c = `${fmt4((p.addr & mask(p.len)) >>> 0)}/${p.len}`;
            if (!list.includes(c)) list.push(c);
          }
          allowed = list;
        } else if (t === "preshared-key") {
          const k = this.readKey(v);
          if ("error" in k) return bad(k.error);
          sets.push((p) => void (p.psk = k.key));
        } else {
          this.unsupported(`wg set peer … ${t}`);
          return bad(`Invalid argument: \`${t}'`);
        }
      }
      clauses.push({
        tokens: [ifname, ...tokens],
        apply: (w) => {
          const at = w.peers.findIndex((p) => p.publicKey === pub);
          if (remove) {
            if (at >= 0) w.peers.splice(at, 1);
            return;
          }
          let p = w.peers[at];
          if (!p) w.peers.push((p = { publicKey: pub, psk: "", endpoint: "", allowedIps: [], keepalive: 0 }));
          for (const f of sets) f(p);
          if (allowed) {
            // Cryptokey routing: an allowed IP belongs to one peer; giving it to this one takes it from the other.
            for (const o of w.peers) if (o !== p) o.allowedIps = o.allowedIps.filter((x) => !allowed!.includes(x));
            p.allowedIps = [...allowed];
          }
        },
      });
    }
    const dev = this.wgDevice(ns, ifname);
    if (!dev) return done("", "Unable to modify interface: No such device\n", 1);
    for (const c of clauses) {
      const isDevice = c.tokens[0] === "wg";
      const err = this.write(isDevice ? "exec" : "wg", ns, c.tokens, undefined, "Unable to modify interface: Operation not permitted", () => {
        c.apply(dev.link.wg!);
        return undefined;
      });
      if (err) return done("", err + "\n", 1);
    }
    return done();
  }

  // ---- nftables ---------------------------------------------------------------------------

  private nftCmd(ns: NsName, argv: string[], stdin?: string): RunResult {
    const a = argv.slice(1);
    let json = false;
    let stateless = false;
    let check = false;
    let file: string | undefined;
    let i = 0;
    for (; i < a.length && a[i]!.startsWith("-"); i++) {
      const f = a[i]!;
      if (f === "-j" || f === "--json") json = true;
      else if (f === "-s" || f === "--stateless") stateless = true;
      else if (f === "-c" || f === "--check") check = true;
      else if (f === "-f" || f === "--file") file = a[++i];
      else {
        this.unsupported(`nft ${f}`);
        return done("", `nft: unrecognized option '${f}'\n`, 1);
      }
    }
    const s = this.ns(ns);
    const rest = a.slice(i);
    if (file !== undefined) {
      if (file !== "-" || rest.length) {
        this.unsupported(`nft -f ${file} ${rest.join(" ")}`);
        return done("", "Error: Could not process rule: No such file or directory\n", 1);
      }
      const script = stdin ?? "";
      if (check) {
        const r = nftTransaction(s.nft, script);
        if ("error" in r) this.noteNftSyntax(r);
        return "error" in r ? done("", r.error, 1) : done();
      }
      const err = this.write("exec", ns, ["nft", ...a], script, "Error: Could not process rule: Operation not permitted\n", () => {
        const r = nftTransaction(s.nft, script);
        if ("error" in r) {
          this.noteNftSyntax(r);
          return r.error;
        }
        s.nft = r.tables;
        return undefined;
      });
      return err ? done("", err.endsWith("\n") ? err : err + "\n", 1) : done();
    }
    if (rest[0] === "list" && rest[1] === "table" && rest.length === 4) {
      const t = s.nft.find((x) => x.family === rest[2] && x.name === rest[3]);
      if (!t)
        return done(
          "",
          `Error: No such file or directory\nlist table ${rest[2]} ${rest[3]}\n${" ".repeat(11 + rest[2]!.length)}${"^".repeat(rest[3]!.length)}\n`,
          1,
        );
      return done(json ? JSON.stringify({ nftables: [NFT_META, ...nftJson(t)] }) + "\n" : nftText(t, stateless));
    }
    if (rest[0] === "list" && rest[1] === "tables" && rest.length === 2) {
      if (json)
        return done(JSON.stringify({ nftables: [NFT_META, ...s.nft.map((t, k) => ({ table: { family: t.family, name: t.name, handle: k + 1 } }))] }) + "\n");
      return done(s.nft.map((t) => `table ${t.family} ${t.name}\n`).join(""));
    }
    if (rest[0] === "list" && rest[1] === "ruleset" && rest.length === 2) {
      return done(
        json ? JSON.stringify({ nftables: [NFT_META, ...s.nft.flatMap((t) => nftJson(t))] }) + "\n" : s.nft.map((t) => nftText(t, stateless)).join(""),
      );
    }
    this.unsupported(`nft ${a.join(" ")}`);
    return done("", "Error: syntax error\n", 1);
  }

  private noteNftSyntax(r: { error: string; unsupported?: boolean }): void {
    if (r.unsupported) this.unsupported(`nft script: ${r.error.trim()}`);
  }

  // ---- iptables ---------------------------------------------------------------------------

  private iptablesCmd(ns: NsName, argv: string[]): RunResult {
    const a = argv.slice(1).filter((t, k, all) => t !== "-w" && !(all[k - 1] === "-w" && /^\d+$/.test(t)));
    let i = 0;
    if (a[0] === "-t") {
      if (a[1] !== "filter") {
        this.unsupported(`iptables -t ${a[1]}`);
        return done("", `iptables: can't initialize iptables table \`${a[1]}': Table does not exist\n`, 3);
      }
      i = 2;
    }
    const op = a[i];
    const chainName = a[i + 1] ?? "";
    let spec = a.slice(i + 2);
    const s = this.ns(ns);
    if (!["-I", "-A", "-D", "-N", "-P", "-F", "-X"].includes(op ?? "")) {
      this.unsupported(`iptables ${a.join(" ")}`);
      return done("", `iptables v1.8.9 (nf_tables): unknown option "${op}"\n`, 2);
    }
    const err = this.write("exec", ns, argv, undefined, "iptables: Permission denied (you must be root).", () => {
      s.iptables ??= builtinChains();
      const chain = s.iptables.find((c) => c.name === chainName);
      const noChain = "iptables: No chain/target/match by that name.";
      if (op === "-N") {
        if (chain) return "iptables: Chain already exists.";
        s.iptables.push({ name: chainName, policy: null, rules: [] });
        return undefined;
      }
      if (!chain) return noChain;
      if (op === "-P") {
        if (chain.policy === null) return "iptables: Bad built-in chain name.";
        chain.policy = spec[0] ?? "ACCEPT";
        return undefined;
      }
      if (op === "-F") {
        chain.rules = [];
        return undefined;
      }
      if (op === "-X") {
        if (chain.policy !== null || chain.rules.length) return "iptables: Directory not empty.";
        s.iptables = s.iptables.filter((c) => c !== chain);
        return undefined;
      }
      let pos: number | undefined;
      if (/^\d+$/.test(spec[0] ?? "")) {
        pos = Number(spec[0]);
        spec = spec.slice(1);
      }
      if (op === "-D" && pos !== undefined && !spec.length) {
        if (pos < 1 || pos > chain.rules.length) return "iptables: Index of deletion too big.";
        chain.rules.splice(pos - 1, 1);
        return undefined;
      }
      const text = iptSpec(spec);
      if (op === "-D") {
        const at = chain.rules.indexOf(text);
        if (at < 0) return "iptables: Bad rule (does a matching rule exist in that chain?).";
        chain.rules.splice(at, 1);
        return undefined;
      }
      const target = /-j (\S+)/.exec(text)?.[1];
      if (target && !["ACCEPT", "DROP", "RETURN", "REJECT", "LOG", "MASQUERADE", "DNAT", "SNAT"].includes(target) && !s.iptables.some((c) => c.name === target))
        return "iptables: No chain/target/match by that name.";
      if (op === "-A") chain.rules.push(text);
      else chain.rules.splice(Math.min((pos ?? 1) - 1, chain.rules.length), 0, text);
      return undefined;
    });
    return err ? done("", err + "\n", 1) : done();
  }

  /**
   * `iptables-restore --noflush` of the filter table: a `:CHAIN` line makes a user chain (or
   * flushes the one there), `-A CHAIN RULE` appends RULE as iptables-save prints it. One
   * transaction: an error leaves everything as it was.
   */
  private iptablesRestore(ns: NsName, argv: string[], stdin: string | undefined): RunResult {
    if (argv.slice(1).join(" ") !== "--noflush") {
      this.unsupported(`iptables-restore ${argv.slice(1).join(" ")}`);
      return done("", "iptables-restore: only --noflush is modelled\n", 2);
    }
    const err = this.write("exec", ns, argv, stdin, "iptables-restore: Permission denied (you must be root).", () => {
      const s = this.ns(ns);
      const chains: IptChainState[] = structuredClone(s.iptables ?? builtinChains());
      const lines = (stdin ?? "")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"));
      if (lines[0] !== "*filter" || lines.at(-1) !== "COMMIT") return "iptables-restore: line 1 failed";
      for (const [k, l] of lines.slice(1, -1).entries()) {
        const decl = /^:(\S+) (\S+) \[\d+:\d+\]$/.exec(l);
        const add = /^-A (\S+) (.+)$/.exec(l);
        if (decl) {
          const c = chains.find((x) => x.name === decl[1]);
          if (!c) chains.push({ name: decl[1]!, policy: decl[2] === "-" ? null : decl[2]!, rules: [] });
          else if (c.policy === null) c.rules = [];
          else if (decl[2] !== "-") c.policy = decl[2]!;
        } else if (add) {
          const c = chains.find((x) => x.name === add[1]);
          if (!c) return `iptables-restore: line ${k + 2} failed`;
          c.rules.push(add[2]!);
        } else {
          this.unsupported(`iptables-restore line: ${l}`);
          return `iptables-restore: line ${k + 2} failed`;
        }
      }
      s.iptables = chains;
      return undefined;
    });
    return err ? done("", err + "\n", 1) : done();
  }

  private iptablesSave(ns: NsName, a: string[]): RunResult {
    if (a.length && !(a[0] === "-t" && a[1] === "filter" && a.length === 2)) {
      this.unsupported(`iptables-save ${a.join(" ")}`);
      return done();
    }
    const t = this.ns(ns).iptables;
    if (!t) return done();
    const lines = ["# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 1970", "*filter"];
    for (const c of t) lines.push(`:${c.name} ${c.policy ?? "-"} [0:0]`);
    for (const c of t) for (const r of c.rules) lines.push(`-A ${c.name} ${r}`);
    lines.push("COMMIT", "# Completed on Thu Jan  1 00:00:00 1970");
    return done(lines.join("\n") + "\n");
  }

  // ---- files ------------------------------------------------------------------------------

  private mkdirp(dir: string): void {
    const parts = dir.split("/").filter(Boolean);
    for (let k = 0; k <= parts.length; k++) {
      const d = "/" + parts.slice(0, k).join("/");
      if (!this.state.dirs.includes(d)) this.state.dirs.push(d);
    }
  }

  /** `ip netns exec NS` bind-mounts /etc/netns/NS/FILE over /etc/FILE. */
  private resolvePath(ns: NsName, p: string): string {
    if (ns !== null && p.startsWith("/etc/") && !p.startsWith("/etc/netns/")) {
      const alt = `/etc/netns/${ns}/${p.slice(5)}`;
      if (alt in this.state.files) return alt;
    }
    return p;
  }

  private socketExists(p: string): boolean {
    const m = /^(?:\/var)?\/run\/wireguard\/([^/]+)\.sock$/.exec(p);
    return !!m && !!this.wgDevice(null, m[1]!);
  }

  private fileCmd(ns: NsName, argv: string[], stdin?: string): RunResult {
    const [cmd, ...a] = argv;
    const fs = this.state;
    const isDir = (p: string) => fs.dirs.includes(p);
    if (cmd === "cat") {
      if (a.length !== 1) {
        this.unsupported(`cat ${a.join(" ")}`);
        return done("", "cat: unsupported\n", 1);
      }
      const p = this.resolvePath(ns, a[0]!);
      if (isDir(p)) return done("", `cat: ${a[0]}: Is a directory\n`, 1);
      const text = fs.files[p];
      return text === undefined ? done("", `cat: ${a[0]}: No such file or directory\n`, 1) : done(text);
    }
    if (cmd === "test") {
      const [flag, p] = a;
      if (a.length !== 2 || !["-S", "-e", "-f", "-d"].includes(flag!)) {
        this.unsupported(`test ${a.join(" ")}`);
        return done("", "", 2);
      }
      const path = this.resolvePath(ns, p!);
      const yes =
        flag === "-S"
          ? this.socketExists(path)
          : flag === "-d"
            ? isDir(path)
            : flag === "-f"
              ? path in fs.files
              : path in fs.files || isDir(path) || this.socketExists(path);
      return done("", "", yes ? 0 : 1);
    }
    const fail1 = (msg: string) => done("", msg + "\n", 1);
    if (cmd === "tee") {
      const append = a[0] === "-a";
      const target = a[append ? 1 : 0];
      if (!target || a.length !== (append ? 2 : 1)) {
        this.unsupported(`tee ${a.join(" ")}`);
        return fail1("tee: unsupported");
      }
      const p = this.resolvePath(ns, target);
      const text = stdin ?? "";
      const err = this.write("exec", ns, argv, stdin, `tee: ${target}: Permission denied`, () => {
        if (isDir(p)) return `tee: ${target}: Is a directory`;
        if (!isDir(parentOf(p))) return `tee: ${target}: No such file or directory`;
        fs.files[p] = append ? (fs.files[p] ?? "") + text : text;
        return undefined;
      });
      return err ? done(text, err + "\n", 1) : done(text);
    }
    if (cmd === "rm") {
      const force = a[0] === "-f";
      const target = a[force ? 1 : 0];
      if (!target || a.length !== (force ? 2 : 1)) {
        this.unsupported(`rm ${a.join(" ")}`);
        return fail1("rm: unsupported");
      }
      const p = this.resolvePath(ns, target);
      const err = this.write("exec", ns, argv, undefined, `rm: cannot remove '${target}': Permission denied`, () => {
        if (isDir(p)) return `rm: cannot remove '${target}': Is a directory`;
        if (!(p in fs.files)) return force ? undefined : `rm: cannot remove '${target}': No such file or directory`;
        delete fs.files[p];
        return undefined;
      });
      return err ? fail1(err) : done();
    }
    if (cmd === "mkdir") {
      const parents = a[0] === "-p";
      const target = a[parents ? 1 : 0];
      if (!target || a.length !== (parents ? 2 : 1)) {
        this.unsupported(`mkdir ${a.join(" ")}`);
        return fail1("mkdir: unsupported");
      }
      const err = this.write("exec", ns, argv, undefined, `mkdir: cannot create directory '${target}': Permission denied`, () => {
        if (target in fs.files) return `mkdir: cannot create directory '${target}': File exists`;
        if (!parents) {
          if (isDir(target)) return `mkdir: cannot create directory '${target}': File exists`;
          if (!isDir(parentOf(target))) return `mkdir: cannot create directory '${target}': No such file or directory`;
        }
        this.mkdirp(target);
        return undefined;
      });
      return err ? fail1(err) : done();
    }
    if (cmd === "rmdir") {
      const ignore = a[0] === "--ignore-fail-on-non-empty";
      const target = a[ignore ? 1 : 0];
      if (!target || a.length !== (ignore ? 2 : 1)) {
        this.unsupported(`rmdir ${a.join(" ")}`);
        return fail1("rmdir: unsupported");
      }
      const err = this.write("exec", ns, argv, undefined, `rmdir: failed to remove '${target}': Permission denied`, () => {
        if (!isDir(target))
          return target in fs.files ? `rmdir: failed to remove '${target}': Not a directory` : `rmdir: failed to remove '${target}': No such file or directory`;
        const inside = Object.keys(fs.files).some((f) => f.startsWith(target + "/")) || fs.dirs.some((d) => d.startsWith(target + "/"));
        if (inside) return ignore ? undefined : `rmdir: failed to remove '${target}': Directory not empty`;
        fs.dirs = fs.dirs.filter((d) => d !== target);
        return undefined;
      });
      return err ? fail1(err) : done();
    }
    this.unsupported(`command ${argv.join(" ")}`);
    return done("", `${cmd}: command not found\n`, 127);
  }

  /** The resolver kind's one read: every /etc/netns/NS/{resolv.conf,hosts} through one `tail -v -n +1`. */
  private findTail(argv: string[]): RunResult {
    if (argv.join(" ") !== RESOLVER_READ.join(" ")) {
      this.unsupported(`find ${argv.slice(1).join(" ")}`);
      return done("", "find: unsupported\n", 1);
    }
    if (!this.state.dirs.includes("/etc/netns")) return done("", "find: '/etc/netns': No such file or directory\n", 1);
    const paths = Object.keys(this.state.files).filter((p) => /^\/etc\/netns\/[^/]+\/(resolv\.conf|hosts)$/.test(p));
    return done(paths.map((p, i) => `${i ? "\n" : ""}==> ${p} <==\n${this.state.files[p]}`).join(""));
  }

  /** The files tool's helper (src/exec/files-tool.ts): each op one write op, stopping at the first failure unless forced. */
  private filesHelper(argv: string[], stdin?: string): RunResult {
    const { ops, force } = JSON.parse(stdin ?? "{}") as { ops: FileOp[]; force: boolean };
    const fs = this.state;
    let failed = 0;
    let stderr = "";
    ops.forEach((o, i) => {
      if (failed && !force) return;
      const dir = parentOf(o.path);
      const err = this.write("files", null, [o.verb, o.path], o.text, `${o.verb} ${o.path}: EACCES: permission denied`, () => {
        if (o.verb === "write") {
          this.mkdirp(dir);
          fs.files[o.path] = o.text ?? "";
          return undefined;
        }
        if (o.verb === "rmdir") {
          const empty = !Object.keys(fs.files).some((f) => f.startsWith(o.path + "/")) && !fs.dirs.some((d) => d.startsWith(o.path + "/"));
          if (empty) fs.dirs = fs.dirs.filter((d) => d !== o.path);
          return undefined;
        }
        delete fs.files[o.path];
        const inside = Object.keys(fs.files).some((f) => f.startsWith(dir + "/")) || fs.dirs.some((d) => d.startsWith(dir + "/"));
        if (!inside) fs.dirs = fs.dirs.filter((d) => d !== dir);
        return undefined;
      });
      if (err) {
        stderr += `${err}\nCommand failed -:${i + 1}\n`;
        failed ||= i + 1;
      }
    });
    void argv;
    return done("", stderr, failed ? 1 : 0);
  }

  // ---- snapshot ---------------------------------------------------------------------------

  /** The canonical state: equal snapshots mean an equal kernel as far as bolt (or a packet) can tell. */
  snapshot(): FakeSnapshot {
    const nsSnap = (s: NsState): NsSnapshot => ({
      links: Object.fromEntries(
        [...s.links]
          .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
          .map((l) => [
            l.name,
            clean({
              kind: l.kind === "tun" ? l.tunType : l.kind,
              mtu: l.mtu,
              up: l.up,
              master: l.master,
              alias: l.alias,
              addrgenmode: l.addrgenmode,
              mac: l.macSet ? l.mac : undefined,
              addrs: l.addrs.length ? [...l.addrs] : undefined,
              brd: l.brd?.length ? [...l.brd].sort() : undefined,
              peer: l.peer ? `${l.peer.ns ?? HOST_NS}/${l.peer.name}` : undefined,
              tc: canonTc(l.tc),
              wg: l.wg
                ? clean({
                    publicKey: l.wg.privateKey ? publicKeyOf(l.wg.privateKey) : undefined,
                    listenPort: l.wg.listenPort,
                    fwmark: l.wg.fwmark,
                    peers: [...l.wg.peers]
                      .sort((x, y) => (x.publicKey < y.publicKey ? -1 : 1))
                      .map((p) =>
                        clean({
                          publicKey: p.publicKey,
                          psk: p.psk || undefined,
                          endpoint: p.endpoint || undefined,
                          allowedIps: [...p.allowedIps].sort(),
                          keepalive: p.keepalive || undefined,
                        }),
                      ),
                  })
                : undefined,
            }),
          ]),
      ),
      routes: s.routes
        .map(
          (r) =>
            `${r.type === "unicast" ? "" : r.type + " "}${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.dev} table ${r.table} proto ${r.protocol}${r.metric ? ` metric ${r.metric}` : ""}`,
        )
        .sort(),
      rules: s.rules
        .map(
          (r) =>
            `${r.priority}:${r.not ? " not" : ""}${r.fwmark !== undefined ? ` fwmark 0x${r.fwmark.toString(16)}/0x${(r.fwmask ?? 0xffffffff).toString(16)}` : ""} lookup ${r.table}${r.suppressPrefixlen !== undefined ? ` suppress_prefixlength ${r.suppressPrefixlen}` : ""} proto ${r.protocol}`,
        )
        .sort(),
      sysctl: Object.fromEntries(Object.entries(s.sysctl).sort(([x], [y]) => (x < y ? -1 : 1))),
      nft: Object.fromEntries(
        [...s.nft]
          .map((t) => [
            `${t.family} ${t.name}`,
            {
              sets: t.sets.map((x) => clean({ name: x.name, decl: [...x.decl], comment: x.comment, elements: [...x.elements] })),
              chains: t.chains.map((c) =>
                clean({ name: c.name, base: c.base ? { ...c.base } : undefined, rules: c.rules.map((r) => clean({ text: r.text, comment: r.comment })) }),
              ),
            },
          ])
          .sort(([x], [y]) => ((x as string) < (y as string) ? -1 : 1)),
      ),
      iptables: s.iptables
        ? Object.fromEntries(
            s.iptables.map((c) => [c.name, { policy: c.policy, rules: [...c.rules] }]).sort(([x], [y]) => ((x as string) < (y as string) ? -1 : 1)),
          )
        : null,
    });
    const names = Object.keys(this.state.netns).sort();
    return {
      netns: names,
      ns: { [HOST_NS]: nsSnap(this.state.host), ...Object.fromEntries(names.map((n) => [n, nsSnap(this.state.netns[n]!)])) },
      files: Object.fromEntries(Object.entries(this.state.files).sort(([x], [y]) => (x < y ? -1 : 1))),
      dirs: [...this.state.dirs].sort(),
    };
  }
}

export interface NsSnapshot {
  links: Record<string, Record<string, unknown>>;
  routes: string[];
  rules: string[];
  sysctl: Record<string, string>;
  nft: Record<string, unknown>;
  iptables: Record<string, { policy: string | null; rules: string[] }> | null;
}

export interface FakeSnapshot {
  netns: string[];
  ns: Record<string, NsSnapshot>;
  files: Record<string, string>;
  dirs: string[];
}

/** Readable differences between two snapshots: "path: before → after", one per leaf. */
export function diffSnapshots(a: unknown, b: unknown, path = ""): string[] {
  if (canonical(a) === canonical(b)) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => diffSnapshots(a[k], b[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.every((x) => typeof x === "string") && b.every((x) => typeof x === "string")) {
    const gone = (a as string[]).filter((x) => !(b as string[]).includes(x)).map((x) => `${path}: - ${x}`);
    const added = (b as string[]).filter((x) => !(a as string[]).includes(x)).map((x) => `${path}: + ${x}`);
    return gone.length || added.length ? [...gone, ...added] : [`${path}: order ${JSON.stringify(a)} → ${JSON.stringify(b)}`];
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.flatMap((x, i) => diffSnapshots(x, b[i], `${path}[${i}]`));
  const show = (x: unknown) => (x === undefined ? "(none)" : JSON.stringify(x).slice(0, 300));
  return [`${path}: ${show(a)} → ${show(b)}`];
}

/** JSON with object keys sorted: equal for equal values whatever order keys were set in. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    typeof x === "object" && x !== null && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)))
      : x,
  );
}

function clean<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** X25519 public key of a base64 private key (what `wg pubkey` prints). */
export function publicKeyOf(privateB64: string): string {
  const d = Buffer.from(privateB64, "base64").toString("base64url");
  const priv = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" });
  const jwk = createPublicKey(priv).export({ format: "jwk" }) as { x: string };
  return Buffer.from(jwk.x, "base64url").toString("base64");
}

function eui64(mac: string): string {
  const b = mac.split(":").map((x) => Number.parseInt(x, 16));
  b[0] = b[0]! ^ 2;
  const h = (x: number, y: number) => ((x << 8) | y).toString(16);
  return `fe80::${h(b[0]!, b[1]!)}:${h(b[2]!, 0xff)}:${h(0xfe, b[3]!)}:${h(b[4]!, b[5]!)}`;
}

// ---------------------------------------------------------------------------------------
// nftables: scripts in the grammar bolt writes (src/reconcilers/nft/script.ts) and `nft list`
// prints, applied as one transaction; listings as text (-s: without counter values) and JSON.

const NFT_META = { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } };

type NftResult = { tables: NftTableState[] } | { error: string; unsupported?: boolean };

export function nftTransaction(current: NftTableState[], script: string): NftResult {
  const tables = structuredClone(current);
  const lines = script.split("\n");
  let table: NftTableState | undefined;
  let set: NftSetState | undefined;
  let chain: NftChainState | undefined;
  let elements: { set: NftSetState; text: string } | undefined;
  const err = (n: number, msg: string, unsupported = false): NftResult => ({
    error: `/dev/stdin:${n + 1}:1-${(lines[n] ?? "").length}: Error: ${msg}\n${lines[n] ?? ""}\n`,
    unsupported,
  });
  const find = (family: string, name: string) => tables.find((t) => t.family === family && t.name === name);
  // Rule handles as `nft -j list` numbered them before the transaction (nftJson's order): what
  // `replace rule … handle H` names, whatever other commands of the transaction did since.
  const handles = new Map<number, { chain: NftChainState; rule: NftChainState["rules"][number] }>();
  for (const t of tables) {
    let h = 1 + t.sets.length + t.chains.length;
    for (const c of t.chains) for (const rule of c.rules) handles.set(++h, { chain: c, rule });
  }
  // `add|delete element FAMILY TABLE SET { … }`, possibly over several lines
  let elemCmd: { n: number; verb: string; family: string; table: string; set: string; text: string } | undefined;
  let setCmd: { n: number; text: string } | undefined;
  for (const [n, raw] of lines.entries()) {
    let line = raw.trim();
    if (elemCmd || /^(add|delete)\s+element\s/.test(line)) {
      if (!elemCmd) {
        const m = /^(add|delete)\s+element\s+(\w+)\s+([A-Za-z0-9_.-]+)\s+([A-Za-z0-9_.-]+)\s*\{(.*)$/.exec(line);
        if (!m) return err(n, "syntax error, unexpected element statement", true);
        elemCmd = { n, verb: m[1]!, family: m[2]!, table: m[3]!, set: m[4]!, text: m[5]! };
      } else elemCmd.text += " " + line;
      if (!elemCmd.text.includes("}")) continue;
      const c = elemCmd;
      elemCmd = undefined;
      const st = find(c.family, c.table)?.sets.find((x) => x.name === c.set);
      if (!st) return err(c.n, "Could not process rule: No such file or directory");
      const value = (e: string) => e.replace(/\s+comment\s+"[^"]*"$/, "");
      for (const e of c.text
        .slice(0, c.text.lastIndexOf("}"))
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean)) {
        const at = st.elements.findIndex((x) => value(x) === value(e));
        if (c.verb === "delete") {
          if (at < 0) return err(c.n, "Could not process rule: No such file or directory");
          st.elements.splice(at, 1);
        } else if (at < 0) st.elements.push(e);
      }
      continue;
    }
    // `add set FAMILY TABLE SET { decl; …; elements = { … } }` (one statement, possibly over
    // several lines): creates the set, or adds the elements to the existing one of that declaration.
    if (setCmd || /^add\s+set\s/.test(line)) {
      setCmd = setCmd ? { ...setCmd, text: `${setCmd.text} ${line}` } : { n, text: line };
      if ((setCmd.text.match(/\{/g) ?? []).length > (setCmd.text.match(/\}/g) ?? []).length) continue;
      const c = setCmd;
      setCmd = undefined;
      const m = /^add\s+set\s+(\w+)\s+([A-Za-z0-9_.-]+)\s+([A-Za-z0-9_.-]+)\s*\{(.*)\}$/.exec(c.text);
      const t = m ? find(m[1]!, m[2]!) : undefined;
      if (!m || !t) return err(c.n, m ? "Could not process rule: No such file or directory" : "syntax error, unexpected set statement", !m);
      const inner = m[4]!;
      const at = inner.indexOf("elements");
      const decl = (at < 0 ? inner : inner.slice(0, at))
        .split(";")
        .map((d) => d.trim())
        .filter(Boolean);
      const elems =
        at < 0
          ? []
          : inner
              .slice(inner.indexOf("{", at) + 1, inner.lastIndexOf("}"))
              .split(",")
              .map((e) => e.trim())
              .filter(Boolean);
      let st = t.sets.find((x) => x.name === m[3]);
      if (st && st.decl.join(";") !== decl.join(";")) return err(c.n, "Could not process rule: File exists");
      if (!st) t.sets.push((st = { name: m[3]!, decl, elements: [] }));
      const value = (e: string) => e.replace(/\s+comment\s+"[^"]*"$/, "");
      for (const e of elems) if (!st.elements.some((x) => value(x) === value(e))) st.elements.push(e);
      continue;
    }
    const ruleCmd = /^(flush\s+chain|add\s+rule|replace\s+rule)\s+(\w+)\s+([A-Za-z0-9_.-]+)\s+([A-Za-z0-9_.-]+)(?:\s+(.*))?$/.exec(line);
    if (ruleCmd) {
      const [, verb, family, tname, cname, rest = ""] = ruleCmd;
      const ch = find(family!, tname!)?.chains.find((x) => x.name === cname);
      if (!ch) return err(n, "Could not process rule: No such file or directory");
      const parse = (text: string) => {
        const m = /^(.*?)\s+comment\s+"([^"]*)"$/.exec(text);
        return m ? { text: m[1]!, comment: m[2]! } : { text };
      };
      if (verb!.startsWith("flush")) ch.rules = [];
      else if (verb!.startsWith("add")) ch.rules.push(parse(rest));
      else {
        const h = /^handle\s+(\d+)\s+(.+)$/.exec(rest);
        const at = h ? handles.get(Number(h[1])) : undefined;
        const k = at && at.chain === ch ? ch.rules.indexOf(at.rule) : -1;
        if (!h || k < 0) return err(n, "Could not process rule: No such file or directory");
        ch.rules[k] = parse(h[2]!);
      }
      continue;
    }
    if (elements) {
      elements.text += " " + line;
      if (!line.includes("}")) continue;
      const body = elements.text.slice(0, elements.text.lastIndexOf("}"));
      elements.set.elements = body
        .split(",")
        .map((e) => e.trim())
        .filter(Boolean);
      elements = undefined;
      continue;
    }
    if (!line || line.startsWith("#")) continue;
    line = line.replace(/;\s*$/, "");
    if (set) {
      if (line === "}") set = undefined;
      else if (/^comment\s+"[^"]*"$/.test(line)) set.comment = /"([^"]*)"/.exec(line)![1];
      else if (/^elements\s*=\s*\{/.test(line)) {
        elements = { set, text: line.slice(line.indexOf("{") + 1) };
        if (line.includes("}")) {
          set.elements = elements.text
            .slice(0, elements.text.lastIndexOf("}"))
            .split(",")
            .map((e) => e.trim())
            .filter(Boolean);
          elements = undefined;
        }
      } else if (/^(type|flags|size|timeout|policy|auto-merge|gc-interval)\b/.test(line)) set.decl.push(line);
      else return err(n, "syntax error, unexpected set attribute", true);
      continue;
    }
    if (chain) {
      if (line === "}") {
        chain = undefined;
        continue;
      }
      const base = /^type\s+(\w+)\s+hook\s+(\w+)\s+priority\s+([^;]+?)\s*(?:;\s*policy\s+(\w+))?$/.exec(line);
      if (base) {
        const prio = nftPrio(base[3]!);
        if (prio === undefined) return err(n, `unknown priority "${base[3]}"`);
        if (!["filter", "nat", "route"].includes(base[1]!)) return err(n, `unknown chain type "${base[1]}"`);
        if (!["prerouting", "input", "forward", "output", "postrouting", "ingress"].includes(base[2]!)) return err(n, `unknown chain hook "${base[2]}"`);
        chain.base = { type: base[1]!, hook: base[2]!, prio, policy: base[4] ?? "accept" };
        continue;
      }
      const m = /^(.*?)\s+comment\s+"([^"]*)"$/.exec(line);
      chain.rules.push(m ? { text: m[1]!, comment: m[2]! } : { text: line });
      continue;
    }
    if (table) {
      if (line === "}") {
        table = undefined;
        continue;
      }
      const s = /^set\s+([A-Za-z0-9_.-]+)\s*\{$/.exec(line);
      if (s) {
        if (table.sets.some((x) => x.name === s[1])) return err(n, `set ${s[1]} exists`);
        table.sets.push((set = { name: s[1]!, decl: [], elements: [] }));
        continue;
      }
      const c = /^chain\s+([A-Za-z0-9_.-]+)\s*\{$/.exec(line);
      if (c) {
        chain = table.chains.find((x) => x.name === c[1]);
        if (!chain) table.chains.push((chain = { name: c[1]!, rules: [] }));
        continue;
      }
      return err(n, "syntax error, unexpected table statement", true);
    }
    const t = /^(?:(add|create|delete|flush)\s+)?table\s+(ip|ip6|inet|arp|bridge|netdev)\s+([A-Za-z0-9_.-]+)\s*(\{)?$/.exec(line);
    if (!t) return err(n, "syntax error, unexpected statement", true);
    const [, verb, family, name, brace] = t;
    const existing = find(family!, name!);
    if (verb === "delete") {
      if (!existing) return err(n, "Could not process rule: No such file or directory");
      tables.splice(tables.indexOf(existing), 1);
    } else if (verb === "flush") {
      if (!existing) return err(n, "Could not process rule: No such file or directory");
      for (const ch of existing.chains) ch.rules = [];
    } else if (verb === "create" && existing) return err(n, "Could not process rule: File exists");
    else {
      const tt = existing ?? { family: family!, name: name!, sets: [], chains: [] };
      if (!existing) tables.push(tt);
      if (brace) table = tt;
    }
  }
  if (table || set || chain || elements || elemCmd || setCmd) return { error: "/dev/stdin: Error: syntax error, unexpected end of file\n" };
  // References resolve against the whole transaction: a jump to a chain declared later is fine.
  for (const t of tables) {
    for (const c of t.chains) {
      for (const r of c.rules) {
        for (const m of r.text.matchAll(/@([A-Za-z0-9_.-]+)/g))
          if (!t.sets.some((s) => s.name === m[1])) return { error: `Error: No such file or directory; did you mean set ‘${m[1]}’?\n${r.text}\n` };
        for (const m of r.text.matchAll(/\b(?:jump|goto)\s+([A-Za-z0-9_.-]+)/g))
          if (!t.chains.some((x) => x.name === m[1])) return { error: `Error: Could not process rule: No such file or directory\n${r.text}\n` };
      }
    }
  }
  return { tables };
}

function nftPrio(s: string): number | undefined {
  const t = s.trim();
  if (/^-?\d+$/.test(t)) return Number(t);
  const m = /^([a-z]+)\s*(?:([+-])\s*(\d+))?$/.exec(t);
  if (!m || NFT_PRIO_NAMES[m[1]!] === undefined) return undefined;
  return NFT_PRIO_NAMES[m[1]!]! + (m[2] ? (m[2] === "+" ? 1 : -1) * Number(m[3]) : 0);
}

function nftPrioText(p: number): string {
  const name = Object.entries(NFT_PRIO_NAMES).find(([, v]) => v === p)?.[0];
  return name ?? String(p);
}

export function nftText(t: NftTableState, stateless: boolean): string {
  const out = [`table ${t.family} ${t.name} {`];
  const blocks: string[][] = [];
  for (const s of t.sets) {
    const b = [`\tset ${s.name} {`, ...s.decl.map((d) => `\t\t${d}`)];
    if (s.comment !== undefined) b.push(`\t\tcomment "${s.comment}"`);
    if (s.elements.length) b.push(`\t\telements = { ${s.elements.join(", ")} }`);
    b.push("\t}");
    blocks.push(b);
  }
  for (const c of t.chains) {
    const b = [`\tchain ${c.name} {`];
    if (c.base) b.push(`\t\ttype ${c.base.type} hook ${c.base.hook} priority ${nftPrioText(c.base.prio)}; policy ${c.base.policy};`);
    for (const r of c.rules) {
      const text = stateless ? r.text : r.text.replace(/\bcounter\b(?! packets)/g, "counter packets 0 bytes 0");
      b.push(`\t\t${text}${r.comment !== undefined ? ` comment "${r.comment}"` : ""}`);
    }
    b.push("\t}");
    blocks.push(b);
  }
  blocks.forEach((b, k) => {
    if (k) out.push("");
    out.push(...b);
  });
  out.push("}");
  return out.join("\n") + "\n";
}

function nftElemJson(e: string): unknown {
  // An element with a comment lists as { elem: { val, comment } } (nft 1.0.6).
  const withComment = /^(.*?)\s+comment\s+"([^"]*)"$/.exec(e);
  if (withComment) return { elem: { val: nftElemJson(withComment[1]!), comment: withComment[2] } };
  if (e.includes(" . ")) return { concat: e.split(" . ").map((x) => x.trim().replace(/^"(.*)"$/, "$1")) };
  if (/^".*"$/.test(e)) return e.slice(1, -1);
  const pre = /^([0-9.]+)\/(\d+)$/.exec(e);
  if (pre) return { prefix: { addr: pre[1], len: Number(pre[2]) } };
  const range = /^([0-9.]+)-([0-9.]+)$/.exec(e);
  if (range) return { range: [range[1], range[2]] };
  return /^\d+$/.test(e) ? Number(e) : e;
}

function nftDuration(s: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(s);
  if (!m) return 0;
  return Number(m[1]) * ({ "": 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!]!;
}

export function nftJson(t: NftTableState): Record<string, unknown>[] {
  let handle = 1;
  const base = { family: t.family, table: t.name };
  const out: Record<string, unknown>[] = [{ table: { family: t.family, name: t.name, handle: handle++ } }];
  for (const s of t.sets) {
    const decl = (k: string) => s.decl.find((d) => d.startsWith(k + " "))?.slice(k.length + 1);
    const type = decl("type") ?? "";
    out.push({
      set: {
        ...base,
        name: s.name,
        type: type.includes(" . ") ? type.split(" . ").map((x) => x.trim()) : type,
        handle: handle++,
        // nft 1.0.6 does not list "dynamic" among a set's JSON flags
        ...(decl("flags")
          ? {
              flags: decl("flags")!
                .split(",")
                .map((x) => x.trim())
                .filter((f) => f !== "dynamic"),
            }
          : {}),
        ...(decl("size") ? { size: Number(decl("size")) } : {}),
        ...(decl("timeout") ? { timeout: nftDuration(decl("timeout")!) } : {}),
        ...(s.comment !== undefined ? { comment: s.comment } : {}),
        ...(s.elements.length ? { elem: s.elements.map(nftElemJson) } : {}),
      },
    });
  }
  for (const c of t.chains) {
    out.push({
      chain: { ...base, name: c.name, handle: handle++, ...(c.base ? { type: c.base.type, hook: c.base.hook, prio: c.base.prio, policy: c.base.policy } : {}) },
    });
  }
  for (const c of t.chains) {
    for (const r of c.rules) {
      const words = r.text.split(/\s+/);
      const last = words[words.length - 1]!;
      const verdict: Record<string, unknown>[] = /\b(jump|goto)\s+(\S+)/.test(r.text)
        ? [{ [/\b(jump|goto)\s+(\S+)/.exec(r.text)![1]!]: { target: /\b(jump|goto)\s+(\S+)/.exec(r.text)![2] } }]
        : ["accept", "drop", "masquerade", "return"].includes(last)
          ? [{ [last]: null }]
          : /\bdnat\b/.test(r.text)
            ? [{ dnat: { addr: /to ([0-9.]+)/.exec(r.text)?.[1] } }]
            : /\breject\b/.test(r.text)
              ? [{ reject: null }]
              : [];
      const expr = [...(/\bcounter\b/.test(r.text) ? [{ counter: { packets: 0, bytes: 0 } }] : []), ...verdict];
      out.push({ rule: { ...base, chain: c.name, handle: handle++, ...(r.comment !== undefined ? { comment: r.comment } : {}), expr } });
    }
  }
  return out;
}

/** The rule spec the way iptables-save prints it (a comment quoted unless plain). */
function iptSpec(tokens: string[]): string {
  return tokens.map((t, k) => (tokens[k - 1] === "--comment" && !/^[A-Za-z0-9_-]+$/.test(t) ? `"${t.replace(/(["\\])/g, "\\$1")}"` : t)).join(" ");
}

/** The filter table's built-in chains as iptables makes them on first use: empty, policy ACCEPT. */
function builtinChains(): IptChainState[] {
  return ["INPUT", "FORWARD", "OUTPUT"].map((name) => ({ name, policy: "ACCEPT", rules: [] }));
}
