import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { formatCidr4, formatIp4, overlaps, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import type { LoadedFile } from "../../src/config/load.js";
import { ifnameProblem } from "../../src/config/names.js";
import { formatCidr6, formatIp6, overlaps6, parseCidr6 } from "../../src/core/ipv6.js";
import { pointer } from "../../src/config/positions.js";
import { MESH_CIDR6, deriveAddress6, host128, meshCidr6Problem, nodeAddress6, parseAddress6 } from "./mesh6.js";
import { isKey, readKeyFile } from "./keys.js";
import { PORTED, protoName, runAclTests } from "./acl.js";
import { loadPolicyFile, parsePolicy } from "./policy-file.js";
import type { Policy } from "./policy-file.js";
import { bestEndpoint, exitOf, routesOf } from "./store-view.js";
import { admittedNodes } from "./store.js";
import type { MeshSnapshot } from "./store.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentHooks } from "../../src/core/resource.js";

/**
 * `[wireguard.NAME]` (Boltfile) and the GhostWire mesh (ghostwire.toml or `[meshvpn]`), both
 * normalized into WireGuard interfaces with peers; the mesh adds tags, ACLs, subnet routes,
 * exit nodes and magic DNS names.
 */
export interface WgPeerIntent {
  publicKey: string;
  allowedIps: Cidr4[];
  /** IPv6 allowed IPs as canonical text ("fd00:77::/64"; the intent is stored as JSON); "::/0" is an IPv6 full tunnel */
  allowedIps6?: string[];
  endpoint?: string;
  keepalive?: number;
  pskFile?: string;
  hostname?: string;
  source: SourcePos;
}

export interface WgIntent {
  ifname: string;
  /** interface address with prefix; undefined for a mesh node whose address is allocated */
  address?: Cidr4 & { addr: number };
  /** further addresses (`address` may be a list, like wg-quick's Address) */
  moreAddresses?: (Cidr4 & { addr: number })[];
  /** IPv6 addresses of the interface as canonical text with their prefix ("fd00:8::1/64") */
  addresses6?: string[];
  listenPort?: number;
  privateKeyFile: string;
  publicKey: string;
  /**
   * A key rotation not approved yet (MULTIHOST.md §2.4): this host's identity in the mesh store
   * still pins `publicKey` (the peers know it by that key), not the key file's. A live device
   * that has that key keeps its private key (the reconciler does not write the file's); any
   * other device (none yet, or another key) gets the file's key as usual.
   */
  keyHold?: { publicKey: string; node: string; source: SourcePos };
  mtu?: number;
  fwmark?: number;
  peers: WgPeerIntent[];
  source: SourcePos;
  mesh: boolean;
}

export interface MeshNode {
  hostname: string;
  address: number;
  tags: string[];
  publicKey?: string;
  /** its owner (Tailscale's user, "alice@example.com"); a tagged node belongs to its tags */
  user?: string;
  /** its IPv6 mesh address when the config gives one (canonical text); else derived from `address` (mesh6.ts nodeAddress6) */
  address6?: string;
}

export interface AclIntent {
  action: "accept" | "deny";
  src: string[];
  dst: string[];
  proto?: string;
  source: SourcePos;
  /** where src[j], dst[j] and proto are written (the Boltfile or the policy file) */
  srcAt?: (j: number) => SourcePos;
  dstAt?: (j: number) => SourcePos;
  protoAt?: SourcePos;
}

export interface AclTestIntent {
  src: string;
  proto: string;
  accept: string[];
  deny: string[];
  source: SourcePos;
  srcAt?: SourcePos;
  targetAt?: (key: "accept" | "deny", j: number) => SourcePos;
}

/** What ACL names can refer to besides nodes: the policy file's groups and hosts aliases. */
export interface AclAliases {
  groups: Record<string, string[]>;
  hosts: Record<string, string>;
}

export interface MeshIntent {
  ifname: string;
  self: MeshNode;
  peers: MeshNode[];
  advertise: Cidr4[];
  /** IPv6 subnets this node routes for the mesh (canonical text; a static mesh's only: the store carries IPv4 routes) */
  advertise6?: string[];
  exitNode: boolean;
  /** hostname of the peer that carries this node's default route */
  useExitNode?: string;
  magicDns: boolean;
  acls: AclIntent[];
  aclTests: AclTestIntent[];
  aliases: AclAliases;
  /** the mesh's IPv6 prefix ([ghostwire] ipv6_cidr, fd7a:115c:a1e0::/48 by default); undefined: [features] ipv6 = false */
  cidr6?: string;
  source: SourcePos;
}

/** Policy routing for an exit node, like wg-quick: marks and tables clear of Kubernetes (0xC000), Cilium (0xF00) and Tailscale (0xff0000, table 52). */
export const EXIT = { fwmark: 0x0b000000, mask: 0x0f000000, table: 20100, prioSuppress: 20000, prioDefault: 20001 };
const MESH_CIDR = parseCidr4("100.64.0.0/10")!;

type Obj = Record<string, unknown>;

/** `[wireguard.*]` interfaces and the mesh node (whose interface is one of them). */
export interface WireguardFragment {
  interfaces: WgIntent[];
  mesh?: MeshIntent;
}

export const WIREGUARD = fragmentKey<WireguardFragment>("wireguard", () => ({ interfaces: [] }));

export const wireguardIntentHooks: IntentHooks = {
  build(files, ctx): WireguardFragment {
    const { wireguard, mesh } = wireguardIntent(files, ctx.diagnostics, {
      offline: ctx.opts.offline,
      store: ctx.opts.external?.wireguard as StoreView | undefined,
    });
    // `[[acl_tests]]` are evaluated offline; a failing assertion blocks apply like a config error.
    if (mesh && !ctx.opts.skipAclTests) {
      for (const f of runAclTests(mesh, mesh.self)) {
        ctx.diagnostics.push({
          severity: "error",
          message: `acl_test: ${f.test.src} → ${f.target} (${f.test.proto}) is ${f.got === "accept" ? "accepted" : "denied"}, the test expects ${f.expected === "accept" ? "accept" : "deny"}`,
          source: f.test.source,
        });
      }
    }
    return { interfaces: wireguard, mesh };
  },
  // Only when there are any: a Boltfile without WireGuard keeps its one-line summary.
  describe: (f) => {
    const w = f as WireguardFragment | undefined;
    const n = w?.interfaces.length ?? 0;
    return n ? `${n} WireGuard interface(s)${w?.mesh ? ` (mesh node "${w.mesh.self.hostname}" with ${w.mesh.peers.length} peer(s))` : ""}` : "";
  },
};

/** Reports an error; `missing` reports a key file that is not here (a warning when offline). */
type Err = ((message: string, source: SourcePos, hint?: string) => void) & { missing?: (message: string, source: SourcePos) => void };

/** Public key shown when the private key file is not readable where bolt runs offline. */
export const UNKNOWN_KEY = "(known on the target host)";

/** The mesh's store as this host sees it (read by the CLI before the files are normalized). */
export interface StoreView {
  snapshot: MeshSnapshot;
  /** this host's node name (its bundle's) */
  self: string;
  /** which node carries each prefix several nodes announce (store-view.ts primaries) */
  primaries?: Record<string, string>;
}

export function wireguardIntent(
  files: LoadedFile[],
  diags: Diagnostic[],
  opts: { offline?: boolean; store?: StoreView } = {},
): { wireguard: WgIntent[]; mesh?: MeshIntent } {
  const err: Err = Object.assign((message: string, source: SourcePos, hint?: string) => void diags.push({ severity: "error", message, source, hint }), {
    missing: (message: string, source: SourcePos) => void diags.push({ severity: opts.offline ? "warning" : "error", message, source }),
  });
  const wireguard: WgIntent[] = [];
  let mesh: MeshIntent | undefined;
  for (const f of files) {
    const pos = (...p: (string | number)[]) => f.positions.value(pointer(p));
    const keyPos = (...p: (string | number)[]) => f.positions.key(pointer(p));
    if (f.kind === "boltfile") {
      for (const [ifname, raw] of Object.entries((f.data.wireguard ?? {}) as Record<string, Obj>)) {
        const w = wgInterface(f.path, ifname, raw, (...k) => pos("wireguard", ifname, ...k), keyPos("wireguard", ifname), err);
        if (w) wireguard.push(w);
      }
    }
    const meshData =
      f.kind === "mesh" ? (f.data.meshvpn ? (f.data.meshvpn as Obj) : f.data) : f.kind === "boltfile" && f.data.meshvpn ? (f.data.meshvpn as Obj) : undefined;
    if (meshData) {
      const base = f.kind === "mesh" && !f.data.meshvpn ? [] : ["meshvpn"];
      const m = meshIntent(
        f.path,
        meshData,
        (...k) => pos(...base, ...k),
        (...k) => keyPos(...base, ...k),
        err,
        diags,
        opts.store,
      );
      if (m) {
        if (mesh) err("a second mesh configuration: bolt runs one mesh node per target", m.mesh.source);
        else {
          mesh = m.mesh;
          wireguard.push(m.wg);
        }
      }
    }
  }
  const names = new Map<string, WgIntent>();
  for (const w of wireguard) {
    const prev = names.get(w.ifname);
    if (prev) err(`WireGuard interface "${w.ifname}" is defined twice (also ${prev.source.file}:${prev.source.line})`, w.source);
    names.set(w.ifname, w);
  }
  // One default route per host: a second full tunnel would fight the first for it.
  const full = wireguard.filter((w) => w.peers.some(isFullTunnelPeer));
  for (const w of full.slice(1))
    err(
      `${w.ifname}: a peer has allowed_ips 0.0.0.0/0 or ::/0 (a full tunnel), but ${full[0]!.ifname} (${full[0]!.source.file}:${full[0]!.source.line}) already carries the default route: one full tunnel per host`,
      w.peers.find(isFullTunnelPeer)!.source,
    );
  return { wireguard, mesh };
}

function keyFile(configFile: string, path: string, kind: "private" | "preshared", at: SourcePos, err: Err): { path: string; publicKey?: string } | undefined {
  const full = resolve(dirname(configFile), path);
  const r = readKeyFile(full, kind);
  if (!r.ok) {
    if (r.missing && err.missing) {
      err.missing(r.message, at);
      return { path: full, publicKey: kind === "private" ? UNKNOWN_KEY : undefined };
    }
    err(r.message, at);
    return undefined;
  }
  return { path: full, publicKey: r.publicKey };
}

function peerList(
  configFile: string,
  ifname: string,
  raws: Obj[],
  pos: (...k: (string | number)[]) => SourcePos,
  keyPos: (...k: (string | number)[]) => SourcePos,
  err: Err,
): WgPeerIntent[] {
  const peers: WgPeerIntent[] = [];
  raws.forEach((raw, i) => {
    const at = (k: string) => pos("peers", i, k);
    const pk = String(raw.public_key ?? "");
    if (!isKey(pk)) return err(`${ifname}: peer ${i + 1}: public_key is not a WireGuard key (44 base64 characters)`, at("public_key"));
    if (raw.preshared_key !== undefined)
      return err(`${ifname}: peer ${i + 1}: preshared_key must come from a file (preshared_key_file), never from the config`, at("preshared_key"));
    const allowed: Cidr4[] = [];
    const allowed6: string[] = [];
    for (const [j, a] of ((raw.allowed_ips ?? []) as string[]).entries()) {
      const at6 = pos("peers", i, "allowed_ips", j);
      if (a.includes(":")) {
        const c = parseCidr6(a);
        if (!c || c.hostBits) err(`${ifname}: peer ${i + 1}: allowed_ips "${a}" is not an IPv6 CIDR without host bits`, at6);
        else allowed6.push(formatCidr6(c));
        continue;
      }
      const c = parseCidr4(a.includes("/") ? a : `${a}/32`);
      if (!c || c.hostBits) err(`${ifname}: peer ${i + 1}: allowed_ips "${a}" is not an IPv4 or IPv6 CIDR without host bits`, at6);
      else allowed.push(c);
    }
    let pskFile: string | undefined;
    if (raw.preshared_key_file !== undefined) pskFile = keyFile(configFile, String(raw.preshared_key_file), "preshared", at("preshared_key_file"), err)?.path;
    const endpoint = raw.endpoint === undefined ? undefined : String(raw.endpoint);
    if (endpoint !== undefined && !ENDPOINT.test(endpoint))
      err(`${ifname}: peer ${i + 1}: endpoint "${endpoint}" must be host:port or [IPv6]:port`, at("endpoint"));
    else if (endpoint !== undefined && !validPort(endpoint)) err(`${ifname}: peer ${i + 1}: endpoint "${endpoint}": port must be 1-65535`, at("endpoint"));
    peers.push({
      publicKey: pk,
      allowedIps: allowed,
      ...(allowed6.length ? { allowedIps6: allowed6 } : {}),
      endpoint,
      keepalive: raw.persistent_keepalive as number | undefined,
      pskFile,
      hostname: raw.hostname as string | undefined,
      source: keyPos("peers", i),
    });
  });
  peerChecks(ifname, peers, err);
  return peers;
}

function peerChecks(ifname: string, peers: WgPeerIntent[], err: Err) {
  const keys = new Map<string, WgPeerIntent>();
  for (const p of peers) {
    if (keys.has(p.publicKey)) err(`${ifname}: two peers have the public key ${p.publicKey}`, p.source);
    keys.set(p.publicKey, p);
  }
  // WireGuard routes by allowed IPs (cryptokey routing): one address may belong to one peer only.
  // Every pass of a mesh host checks its peers: a sweep over the sorted ranges says in
  // O(n log n) whether any two peers overlap; only then are the pairs named (quadratic, rare).
  if (!anyOverlap(peers)) return;
  for (let i = 0; i < peers.length; i++) {
    for (let j = 0; j < i; j++) {
      for (const a of peers[i]!.allowedIps) {
        const b = peers[j]!.allowedIps.find((x) => overlaps(a, x));
        if (b && a.prefix !== 0 && b.prefix !== 0)
          err(
            `${ifname}: allowed IP ${formatCidr4(a)} overlaps ${formatCidr4(b)} of another peer (${peers[j]!.hostname ?? peers[j]!.publicKey})`,
            peers[i]!.source,
          );
      }
      // The same for IPv6 (::/0, a full tunnel or exit node, overlaps everything by design).
      for (const a of peers[i]!.allowedIps6 ?? []) {
        const ca = parseCidr6(a)!;
        const b = (peers[j]!.allowedIps6 ?? []).find((x) => {
          const cb = parseCidr6(x)!;
          return ca.prefix !== 0 && cb.prefix !== 0 && overlaps6(ca, cb);
        });
        if (b) err(`${ifname}: allowed IP ${a} overlaps ${b} of another peer (${peers[j]!.hostname ?? peers[j]!.publicKey})`, peers[i]!.source);
      }
    }
  }
}

/** Whether allowed IPs (other than /0) of two different peers overlap: CIDRs nest or are disjoint. */
export function anyOverlap(peers: Pick<WgPeerIntent, "allowedIps" | "allowedIps6">[]): boolean {
  const ranges: { start: bigint; end: bigint; peer: number }[] = [];
  peers.forEach((p, peer) => {
    for (const a of p.allowedIps)
      if (a.prefix !== 0) ranges.push({ start: BigInt(a.network >>> 0), end: BigInt(a.network >>> 0) + (1n << BigInt(32 - a.prefix)) - 1n, peer });
    for (const t of p.allowedIps6 ?? []) {
      const c = parseCidr6(t);
      // IPv6 ranges sort after every IPv4 one (offset past 2^32): the two families never meet.
      if (c && c.prefix !== 0) ranges.push({ start: (1n << 40n) + c.network, end: (1n << 40n) + c.network + (1n << BigInt(128 - c.prefix)) - 1n, peer });
    }
  });
  ranges.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  // The furthest end seen, and the furthest of any other peer: an earlier range reaching this start holds it.
  let best: { end: bigint; peer: number } | undefined;
  let second: { end: bigint; peer: number } | undefined;
  for (const r of ranges) {
    if (best && best.peer !== r.peer && best.end >= r.start) return true;
    if (second && second.peer !== r.peer && second.end >= r.start) return true;
    if (!best || r.end > best.end) {
      if (best && best.peer !== r.peer) second = best;
      best = { end: r.end, peer: r.peer };
    } else if (r.peer !== best.peer && (!second || r.end > second.end)) second = { end: r.end, peer: r.peer };
  }
  return false;
}

function wgInterface(
  configFile: string,
  ifname: string,
  raw: Obj,
  pos: (...k: (string | number)[]) => SourcePos,
  source: SourcePos,
  err: Err,
): WgIntent | undefined {
  const p = ifnameProblem(ifname);
  if (p) return void err(`wireguard: ${p}`, source);
  if (raw.private_key !== undefined)
    return void err(`${ifname}: private_key must come from a file (private_key_file, mode 0600), never from the config`, pos("private_key"));
  if (raw.private_key_file === undefined) return void err(`${ifname}: private_key_file is required`, source);
  const key = keyFile(configFile, String(raw.private_key_file), "private", pos("private_key_file"), err);
  // The schema documents one address or a list of them.
  const list = Array.isArray(raw.address) ? raw.address.map(String) : [String(raw.address ?? "")];
  const addrs: (Cidr4 & { addr: number })[] = [];
  const addrs6: string[] = [];
  for (const [j, a] of list.entries()) {
    const at = Array.isArray(raw.address) ? pos("address", j) : pos("address");
    const c6 = a.includes(":") ? parseCidr6(a) : undefined;
    if (c6 && a.includes("/")) {
      addrs6.push(`${formatIp6(c6.addr)}/${c6.prefix}`);
      continue;
    }
    const c = parseCidr4(a);
    if (!c) return void err(`${ifname}: address "${a}" must be an address with prefix, like 10.0.0.1/24 or fd00::1/64`, at);
    addrs.push(c);
  }
  const address = addrs[0];
  if (!address && !addrs6.length) return void err(`${ifname}: address must be an address with prefix, like 10.0.0.1/24 or fd00::1/64`, pos("address"));
  const peers = peerList(configFile, ifname, (raw.peers ?? []) as Obj[], pos, (...k) => pos(...k), err);
  if (!key?.publicKey) return undefined;
  if (peers.some((pp) => pp.publicKey === key.publicKey)) err(`${ifname}: a peer has this interface's own public key`, source);
  return {
    ifname,
    address,
    moreAddresses: addrs.slice(1),
    ...(addrs6.length ? { addresses6: addrs6 } : {}),
    listenPort: raw.listen_port as number | undefined,
    privateKeyFile: key.path,
    publicKey: key.publicKey,
    mtu: raw.mtu as number | undefined,
    // A peer with 0.0.0.0/0 makes this a full tunnel: like wg-quick, the interface's own
    // packets carry a mark so policy routing keeps them off the tunnel (see fullTunnel).
    fwmark: peers.some(isFullTunnelPeer) ? EXIT.fwmark : undefined,
    peers,
    source,
    mesh: false,
  };
}

/**
 * The interface that carries the default route (a peer with 0.0.0.0/0, or the mesh's exit
 * node), if any. It gets what wg-quick gives a full tunnel: its default route in bolt's table
 * (EXIT.table), `suppress_prefixlength 0` and `not fwmark` rules, conntrack mark save/restore
 * with src_valid_mark for rp_filter, and wg-quick's anti-spoofing rule for its addresses.
 */
export function fullTunnel(f: WireguardFragment): WgIntent | undefined {
  return f.interfaces.find((w) => w.fwmark === EXIT.fwmark && w.peers.some(isFullTunnelPeer));
}

/** A peer that carries a default route: 0.0.0.0/0 or ::/0 among its allowed IPs. */
export function isFullTunnelPeer(p: WgPeerIntent): boolean {
  return p.allowedIps.some((c) => c.prefix === 0) || (p.allowedIps6 ?? []).includes("::/0");
}

/** Whether the full tunnel carries this family's default route (the rule and route reconcilers' IPv6 half). */
export function fullTunnelHas6(w: WgIntent): boolean {
  return w.peers.some((p) => (p.allowedIps6 ?? []).includes("::/0"));
}

function meshIntent(
  configFile: string,
  data: Obj,
  pos: (...k: (string | number)[]) => SourcePos,
  keyPos: (...k: (string | number)[]) => SourcePos,
  err: Err,
  diags: Diagnostic[],
  store?: StoreView,
): { wg: WgIntent; mesh: MeshIntent } | undefined {
  // ghostwire.toml has a [ghostwire] table; the Boltfile's [meshvpn] carries the same keys inline.
  const gw = (data.ghostwire ?? data) as Obj;
  const cs = gw.control_server === undefined ? "static" : String(gw.control_server);
  if (cs.startsWith("etcd://") && store) {
    // Read below: the store's approved nodes become peers.
  } else if (cs !== "static") {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(cs)?.[1];
    if (scheme === "https" || scheme === "http" || scheme === "etcd")
      diags.push({
        severity: "warning",
        message: cs.startsWith("etcd://")
          ? `ghostwire.control_server "${cs}": not read here (offline); plan, apply and watch add the store's approved nodes to the [[peers]]`
          : `accepted, not enforced: ghostwire.control_server "${cs}" — bolt reconciles the static [[peers]] list; only etcd:// stores are read`,
        source: pos("ghostwire", "control_server"),
      });
    else
      return void err(
        `ghostwire.control_server "${cs}": unsupported (use "static", or an https:// / etcd:// coordination server URL)`,
        pos("ghostwire", "control_server"),
      );
  }
  if (data.node === undefined) {
    diags.push({
      severity: "warning",
      message: "accepted, not enforced: this mesh file has no [node] table (this host's interface and private_key_file), so there is nothing to set up here",
      source: keyPos(),
    });
    return undefined;
  }
  const node = data.node as Obj;
  const features = (data.features ?? {}) as Obj;
  const source = keyPos("node");
  const ifname = String(node.interface ?? "gw0");
  const p = ifnameProblem(ifname);
  if (p) return void err(`mesh: ${p}`, pos("node", "interface"));
  if (node.private_key !== undefined)
    return void err("mesh: node.private_key must come from a file (private_key_file, mode 0600), never from the config", pos("node", "private_key"));
  if (node.private_key_file === undefined) return void err("mesh: node.private_key_file is required", source);
  const key = keyFile(configFile, String(node.private_key_file), "private", pos("node", "private_key_file"), err);
  if (!key?.publicKey) return undefined;
  const hostname = String(node.hostname ?? "node");
  let address: number | undefined;
  let storeAddress = false;
  if (node.address !== undefined) {
    address = parseIp4(String(node.address).split("/")[0]!);
    if (address === undefined) return void err(`mesh: node.address "${String(node.address)}" is not an IPv4 address`, pos("node", "address"));
  } else address = allocateMeshAddress(key.publicKey);
  const self: MeshNode = {
    hostname,
    address,
    tags: tagsOf(node.tags),
    publicKey: key.publicKey,
    user: node.user === undefined ? undefined : String(node.user),
  };
  const acceptRoutes = node.accept_routes === true;
  // [features] switch whole capabilities off: what the node asks for is then accepted, not enforced.
  const off = (feature: string, key: string, what: string) => {
    diags.push({
      severity: "warning",
      message: `accepted, not enforced: node.${key} — [features] ${feature} = false turns ${what} off`,
      source: pos("node", key),
    });
  };
  if (features.exit_nodes === false && node.use_exit_node) off("exit_nodes", "use_exit_node", "exit nodes");
  if (features.exit_nodes === false && node.exit_node === true) off("exit_nodes", "exit_node", "exit nodes");
  if (features.subnet_routing === false && ((node.advertise_routes ?? []) as unknown[]).length) off("subnet_routing", "advertise_routes", "subnet routes");
  const useExit = node.use_exit_node && features.exit_nodes !== false ? String(node.use_exit_node) : undefined;
  // IPv6 (as Tailscale: every node has both families): on unless [features] ipv6 = false.
  let cidr6: string | undefined;
  if (features.ipv6 !== false) {
    const text = gw.ipv6_cidr === undefined ? MESH_CIDR6 : String(gw.ipv6_cidr);
    const problem = meshCidr6Problem(text);
    if (problem) err(`mesh: ipv6_cidr "${text}" ${problem}`, pos("ghostwire", "ipv6_cidr"));
    else cidr6 = formatCidr6(parseCidr6(text)!);
  } else if (gw.ipv6_cidr !== undefined)
    diags.push({
      severity: "warning",
      message: "accepted, not enforced: ghostwire.ipv6_cidr — [features] ipv6 = false gives the mesh no IPv6 addresses",
      source: pos("ghostwire", "ipv6_cidr"),
    });
  const address6Of = (raw: unknown, at: SourcePos, key: string): string | undefined => {
    if (raw === undefined) return undefined;
    if (features.ipv6 === false)
      return void diags.push({
        severity: "warning",
        message: `accepted, not enforced: ${key} — [features] ipv6 = false gives the mesh no IPv6 addresses`,
        source: at,
      });
    if (!cidr6) return undefined;
    const a = parseAddress6(String(raw));
    if (a === undefined) return void err(`mesh: ${key} "${String(raw)}" is not an IPv6 address (optionally /128)`, at);
    return formatIp6(a);
  };
  self.address6 = address6Of(node.address6, pos("node", "address6"), "node.address6");
  const six = { cidr6 };
  const nodes: MeshNode[] = [];
  const peers: WgPeerIntent[] = [];
  ((data.peers ?? []) as Obj[]).forEach((raw, i) => {
    const at = (k: string) => pos("peers", i, k);
    const pk = String(raw.public_key ?? "");
    if (!isKey(pk)) return err(`mesh: peer "${String(raw.hostname)}": public_key is not a WireGuard key (44 base64 characters)`, at("public_key"));
    const a = parseIp4(String(raw.address ?? "").split("/")[0]!);
    if (a === undefined)
      return err(
        `mesh: peer "${String(raw.hostname)}": address is required (its mesh address, e.g. 100.64.0.2)`,
        raw.address === undefined ? keyPos("peers", i) : at("address"),
      );
    const routes: Cidr4[] = [];
    const routes6: string[] = [];
    for (const [j, r] of ((raw.routes ?? []) as string[]).entries()) {
      const where = pos("peers", i, "routes", j);
      if (r.includes(":")) {
        // An IPv6 subnet behind the peer (its allowed IPs and a route, like an IPv4 one).
        const c = parseCidr6(r);
        if (!c || c.hostBits || c.prefix === 0)
          err(`mesh: peer "${String(raw.hostname)}": route "${r}" is not an IPv6 CIDR without host bits (::/0 is use_exit_node's)`, where);
        else routes6.push(formatCidr6(c));
        continue;
      }
      const c = parseCidr4(r);
      if (!c || c.hostBits) err(`mesh: peer "${String(raw.hostname)}": route "${r}" is not an IPv4 or IPv6 CIDR without host bits`, where);
      else routes.push(c);
    }
    const hn = String(raw.hostname);
    const n: MeshNode = { hostname: hn, address: a, tags: tagsOf(raw.tags), publicKey: pk, user: raw.user === undefined ? undefined : String(raw.user) };
    const a6 = address6Of(raw.address6, at("address6"), `peer "${hn}": address6`);
    if (a6 !== undefined) n.address6 = a6;
    nodes.push(n);
    const allowed = [{ network: a, prefix: 32 }, ...(acceptRoutes && features.subnet_routing !== false ? routes : [])];
    const v6 = nodeAddress6(six, n);
    const allowed6 = [...(v6 === undefined ? [] : [host128(v6)]), ...(acceptRoutes && features.subnet_routing !== false ? routes6 : [])];
    if (useExit === hn) {
      allowed.push({ network: 0, prefix: 0 });
      if (cidr6) allowed6.push("::/0");
    }
    const endpoint = raw.endpoint === undefined ? undefined : String(raw.endpoint);
    if (endpoint !== undefined && !ENDPOINT.test(endpoint)) err(`mesh: peer "${hn}": endpoint "${endpoint}" must be host:port or [IPv6]:port`, at("endpoint"));
    else if (endpoint !== undefined && !validPort(endpoint)) err(`mesh: peer "${hn}": endpoint "${endpoint}": port must be 1-65535`, at("endpoint"));
    peers.push({
      publicKey: pk,
      allowedIps: allowed,
      ...(allowed6.length ? { allowedIps6: allowed6 } : {}),
      endpoint,
      keepalive: (raw.persistent_keepalive as number | undefined) ?? 25,
      hostname: hn,
      source: keyPos("peers", i),
    });
  });
  // The ACLs: [[acls]]/[[acl_tests]] in this file, a Tailscale policy file (not both), or — one
  // source of truth for every host of a store-backed mesh — the store's policy key.
  const policyPath = gw.policy_file === undefined ? undefined : String(gw.policy_file);
  if (policyPath && (data.acls !== undefined || data.acl_tests !== undefined))
    err("policy_file and [[acls]]/[[acl_tests]] in the same mesh: keep the ACLs in one place", pos("ghostwire", "policy_file"));
  if (store && (policyPath || data.acls !== undefined || data.acl_tests !== undefined))
    err(
      "a mesh on an etcd store takes its ACLs from the store's policy (`bolt mesh policy set`): remove policy_file/[[acls]]/[[acl_tests]] here",
      policyPath ? pos("ghostwire", "policy_file") : keyPos(data.acls !== undefined ? "acls" : "acl_tests"),
    );
  const stored = store?.snapshot.policy;
  const policy: Policy | undefined = stored
    ? parsePolicy(`etcd:policy@${stored.mod_revision}`, stored.text, pos("ghostwire", "control_server"), err, diags, true)
    : policyPath && !store
      ? loadPolicyFile(configFile, policyPath, pos("ghostwire", "policy_file"), err, diags)
      : undefined;
  let advertised: { routes: Cidr4[]; exit: boolean } | undefined;
  let keyHold: WgIntent["keyHold"];
  if (store) {
    const me = store.snapshot.nodes.find((n) => n.name === store.self);
    // This host's identity is the admin's record: its tags, and the offers that were approved.
    if (me?.state === "approved") {
      self.tags = [...me.tags];
      advertised = { routes: routesOf(store.snapshot, me, policy?.autoApprovers), exit: exitOf(store.snapshot, me, policy?.autoApprovers) };
    }
    // The prefixes this host announces are on its own links (a connected route in table main):
    // taking one from another router of the same LAN would route it into the tunnel instead.
    const ownPrefixes = new Set(
      ((node.advertise_routes ?? []) as string[]).flatMap((r) => {
        const c = r.includes(":") ? undefined : parseCidr4(r);
        return c && !c.hostBits ? [formatCidr4(c)] : [];
      }),
    );
    const fromStore = storePeers(
      store,
      self,
      ownPrefixes,
      features.subnet_routing !== false && acceptRoutes,
      useExit,
      policy?.autoApprovers,
      diags,
      pos("ghostwire", "control_server"),
      cidr6,
    );
    const staticKeys = new Set(peers.map((p) => p.publicKey));
    for (const sp of fromStore) {
      if (nodes.some((n) => n.hostname === sp.node.hostname) || staticKeys.has(sp.peer.publicKey)) {
        err(`mesh: "${sp.node.hostname}" is both a [[peers]] entry and a node of the store; keep it in one place`, pos("ghostwire", "control_server"));
        continue;
      }
      nodes.push(sp.node);
      peers.push(sp.peer);
    }
    // Identity pins another key than the key file's (a rotation): peers only know the pinned one.
    // With key_policy "node" (public_key null) the identity follows this host's own request.
    if (me?.state === "approved" && me.public_key && isKey(me.public_key) && me.public_key !== key.publicKey && key.publicKey !== UNKNOWN_KEY)
      keyHold = { publicKey: me.public_key, node: store.self, source: pos("node", "private_key_file") };
    const mine = me?.state === "approved" ? parseIp4(me.mesh_ip4) : undefined;
    if (mine !== undefined) self.address = address = mine;
    storeAddress = mine !== undefined;
  }
  peerChecks(ifname, peers, err);
  const seenHost = new Map<string, MeshNode>([[self.hostname, self]]);
  const seenAddr = new Map<number, MeshNode>([[self.address, self]]);
  const seenAddr6 = new Map<bigint | undefined, MeshNode>([[nodeAddress6(six, self), self]]);
  nodes.forEach((n, i) => {
    if (seenHost.has(n.hostname)) err(`mesh: hostname "${n.hostname}" is used twice`, keyPos("peers", i));
    if (seenAddr.has(n.address))
      err(`mesh: address ${formatIp4(n.address)} of "${n.hostname}" is also "${seenAddr.get(n.address)!.hostname}"'s`, pos("peers", i, "address"));
    const a6 = nodeAddress6(six, n);
    if (a6 !== undefined && seenAddr6.has(a6) && !seenAddr.has(n.address))
      err(
        `mesh: IPv6 address ${formatIp6(a6)} of "${n.hostname}" is also "${seenAddr6.get(a6)!.hostname}"'s`,
        pos("peers", i, n.address6 !== undefined ? "address6" : "address"),
      );
    seenAddr6.set(a6, n);
    if (n.publicKey === self.publicKey) err(`mesh: peer "${n.hostname}" has this node's own public key`, pos("peers", i, "public_key"));
    seenHost.set(n.hostname, n);
    seenAddr.set(n.address, n);
  });
  if (useExit && !nodes.some((n) => n.hostname === useExit))
    err(`mesh: use_exit_node "${useExit}" is not one of the [[peers]] (${nodes.map((n) => n.hostname).join(", ") || "none"})`, pos("node", "use_exit_node"));
  const advertise: Cidr4[] = [];
  const advertise6: string[] = [];
  for (const [j, r] of ((node.advertise_routes ?? []) as string[]).entries()) {
    if (r.includes(":")) {
      const c = parseCidr6(r);
      const where = pos("node", "advertise_routes", j);
      if (!c || c.hostBits || c.prefix === 0) err(`mesh: advertise_routes "${r}" is not an IPv6 CIDR without host bits (::/0 is exit_node's)`, where);
      else if (store)
        diags.push({
          severity: "warning",
          message: `accepted, not enforced: advertise_routes "${r}" — the mesh store announces and approves IPv4 routes only; list IPv6 subnets in a static mesh's [[peers]] routes`,
          source: where,
        });
      else if (features.subnet_routing !== false) advertise6.push(formatCidr6(c));
      continue;
    }
    const c = parseCidr4(r);
    if (!c || c.hostBits) err(`mesh: advertise_routes "${r}" is not an IPv4 or IPv6 CIDR without host bits`, pos("node", "advertise_routes", j));
    else if (features.subnet_routing !== false && (!store || advertised?.routes.some((a) => a.network === c.network && a.prefix === c.prefix)))
      advertise.push(c);
  }
  const tomlAcls = ((data.acls ?? []) as Obj[]).map(
    (raw, i): AclIntent => ({
      // The schema (and the seed's ACL example) spell the refusing action "drop".
      action: raw.action === "drop" || raw.action === "deny" ? "deny" : "accept",
      src: (raw.src as string[]).map(String),
      dst: (raw.dst as string[]).map(String),
      proto: raw.proto as string | undefined,
      source: keyPos("acls", i),
      srcAt: (j) => pos("acls", i, "src", j),
      dstAt: (j) => pos("acls", i, "dst", j),
      protoAt: pos("acls", i, "proto"),
    }),
  );
  const tomlTests = ((data.acl_tests ?? []) as Obj[]).map(
    (raw, i): AclTestIntent => ({
      src: String(raw.src),
      proto: String(raw.proto ?? "tcp"),
      accept: ((raw.accept ?? []) as string[]).map(String),
      deny: ((raw.deny ?? []) as string[]).map(String),
      source: keyPos("acl_tests", i),
      srcAt: pos("acl_tests", i, "src"),
      targetAt: (key, j) => pos("acl_tests", i, key, j),
    }),
  );
  // nodeAttrs in the policy give tags to nodes named by hostname or address.
  for (const n of [self, ...nodes]) {
    const a6 = nodeAddress6(six, n);
    const extra = [
      ...(policy?.nodeTags[n.hostname] ?? []),
      ...(policy?.nodeTags[formatIp4(n.address)] ?? []),
      ...(a6 === undefined ? [] : (policy?.nodeTags[formatIp6(a6)] ?? [])),
    ];
    for (const t of extra) if (!n.tags.includes(t)) n.tags.push(t);
  }
  const acls = policy?.acls ?? tomlAcls;
  const aclTests = policy?.tests ?? tomlTests;
  const aliases: AclAliases = { groups: policy?.groups ?? {}, hosts: policy?.hosts ?? {} };
  checkAcls(acls, aclTests, [self, ...nodes], aliases, policy?.tagOwners ?? [], err);
  const wg: WgIntent = {
    ifname,
    address: { network: address, addr: address, prefix: 32 },
    listenPort: (node.listen_port as number | undefined) ?? 41641,
    privateKeyFile: key.path,
    publicKey: key.publicKey,
    // A given IPv6 address is the interface's; a derived one follows the effective IPv4 address (wireguard/index.ts).
    ...(self.address6 !== undefined ? { addresses6: [host128(parseAddress6(self.address6)!)] } : {}),
    ...(keyHold ? { keyHold } : {}),
    fwmark: useExit ? EXIT.fwmark : undefined,
    peers,
    source,
    mesh: true,
  };
  if (node.address === undefined && !storeAddress) wg.address = undefined;
  const mesh: MeshIntent = {
    ifname,
    self,
    peers: nodes,
    advertise,
    ...(advertise6.length ? { advertise6 } : {}),
    exitNode: node.exit_node === true && features.exit_nodes !== false && (!store || advertised?.exit === true),
    useExitNode: useExit,
    magicDns: features.magic_dns === true,
    acls,
    aclTests,
    aliases,
    ...(cidr6 ? { cidr6 } : {}),
    source,
  };
  return { wg, mesh };
}

/** Deterministic CGNAT address from the node's public key (100.64.0.0/10, never .0 or .255). */
export function allocateMeshAddress(publicKey: string): number {
  const h = createHash("sha256").update(publicKey).digest().readUInt32BE(0);
  const size = 2 ** (32 - MESH_CIDR.prefix);
  let off = h % size;
  if ((off & 255) === 0 || (off & 255) === 255) off = (off & ~255) | 1;
  return MESH_CIDR.network + off;
}

/** ACL names: "*", "tag:T", a hostname, or a CIDR; destinations add ":port", ":N-M" or ":*". */
/** The store's admitted nodes (store.ts admittedNodes) as this host's peers; endpoint: what each published in its request. */
function storePeers(
  store: StoreView,
  self: MeshNode,
  ownPrefixes: Set<string>,
  acceptRoutes: boolean,
  useExit: string | undefined,
  auto: Policy["autoApprovers"] | undefined,
  diags: Diagnostic[],
  at: SourcePos,
  cidr6?: string,
): { node: MeshNode; peer: WgPeerIntent }[] {
  const snap = store.snapshot;
  const me = snap.nodes.find((n) => n.name === store.self);
  if (!me || me.state !== "approved") {
    diags.push({
      severity: "warning",
      message: `mesh store: this node "${store.self}" is ${me ? me.state : "not enrolled"}; it takes no peers from the store until it is approved`,
      source: at,
    });
    return [];
  }
  const out: { node: MeshNode; peer: WgPeerIntent }[] = [];
  for (const { node: n, key } of admittedNodes(snap, store.self)) {
    const req = snap.requests[n.name];
    const address = parseIp4(n.mesh_ip4);
    if (!isKey(key) || address === undefined || key === self.publicKey) continue;
    // A prefix several nodes announce goes to its primary only (one prefix, one peer), and never
    // to a peer when this host announces it too (an HA partner reaches its LAN directly).
    const routes = acceptRoutes
      ? routesOf(snap, n, auto).filter((c) => !ownPrefixes.has(formatCidr4(c)) && (store.primaries?.[formatCidr4(c)] ?? n.name) === n.name)
      : [];
    const allowed: Cidr4[] = [{ network: address, prefix: 32 }, ...routes];
    // Its IPv6 mesh address follows from its IPv4 lease (mesh6.ts): no store key, the same on every host.
    const allowed6 = cidr6 ? [host128(deriveAddress6(cidr6, address))] : [];
    if (useExit === n.name && exitOf(snap, n, auto)) {
      allowed.push({ network: 0, prefix: 0 });
      if (cidr6) allowed6.push("::/0");
    }
    // Its live status's candidates first, else what its request said.
    const hint = bestEndpoint((snap.status?.[n.name]?.endpoints ?? []).filter((e) => ENDPOINT.test(e))) ?? req?.endpoint;
    const endpoint = hint && ENDPOINT.test(hint) ? hint : undefined;
    out.push({
      node: { hostname: n.name, address, tags: n.tags, publicKey: key },
      peer: {
        publicKey: key,
        allowedIps: allowed,
        ...(allowed6.length ? { allowedIps6: allowed6 } : {}),
        endpoint,
        keepalive: snap.meta.keepalive,
        hostname: n.name,
        source: at,
      },
    });
  }
  return out;
}

/** Tags are written `tag:NAME` in ACLs; a node may list them either way. */
function tagsOf(raw: unknown): string[] {
  return ((raw ?? []) as unknown[]).map((t) => String(t).replace(/^tag:/, ""));
}

/**
 * Like Tailscale's policy tests: a test destination is one host (a hostname, a tag, one
 * address) and one port, so the assertion means one thing; ranges, lists, CIDRs and "*" are
 * errors, not "the first port".
 */
function testDestinationProblem(d: string): string | undefined {
  const i = d.lastIndexOf(":");
  if (i <= 0) return 'needs one host and one port, "<host>:<port>"';
  const [host, port] = [d.slice(0, i), d.slice(i + 1)];
  if (host === "*") return 'a test destination is one host, not "*"';
  if (host.includes("/")) return "a test destination is one host, not a CIDR";
  if (!/^\d+$/.test(port)) return `a test destination has one port, not "${port}"`;
  if (Number(port) < 0 || Number(port) > 65535) return `port ${port} is not 0-65535`;
  return undefined;
}

/**
 * Every name an ACL or test uses must mean something (a tag, group, user, alias, node or CIDR),
 * protocols must be known and ports only where they apply, and test destinations must be one
 * host and one port; each error at its own position (the Boltfile or the policy file).
 */
export function checkAcls(acls: AclIntent[], aclTests: AclTestIntent[], all: MeshNode[], aliases: AclAliases, tagOwners: string[], err: Err): void {
  const names: AclNames = {
    tags: new Set([...all.flatMap((n) => n.tags), ...tagOwners]),
    hosts: new Set(all.map((n) => n.hostname)),
    users: new Set(all.map((n) => n.user).filter((u): u is string => !!u)),
    aliases,
  };
  acls.forEach((acl) => {
    const at = (f: ((j: number) => SourcePos) | undefined, j: number) => f?.(j) ?? acl.source;
    acl.src.forEach((s, j) => checkAclName(s, false, names, at(acl.srcAt, j), err));
    acl.dst.forEach((s, j) => checkAclName(s, true, names, at(acl.dstAt, j), err));
    // Ports belong to TCP, UDP and SCTP; Tailscale refuses them for any other protocol.
    const proto = acl.proto === undefined || acl.proto === "all" || acl.proto === "*" ? undefined : protoName(acl.proto);
    if (acl.proto !== undefined && acl.proto !== "all" && acl.proto !== "*" && !proto)
      err(`ACL proto "${acl.proto}" is not a protocol bolt knows (tcp, udp, icmp, sctp, gre, esp, ah, igmp, or their IANA numbers)`, acl.protoAt ?? acl.source);
    else if (proto && !PORTED.includes(proto) && acl.dst.some((d) => !d.endsWith(":*")))
      err(
        `ACL proto "${acl.proto}" with ports: ${proto} has no ports (only tcp, udp and sctp do); write the destinations as "<target>:*"`,
        acl.protoAt ?? acl.source,
      );
  });
  for (const t of aclTests) {
    checkAclName(t.src, false, names, t.srcAt ?? t.source, err);
    if (!protoName(t.proto)) err(`acl_test proto "${t.proto}" is not a protocol bolt knows`, t.source);
    for (const key of ["accept", "deny"] as const)
      t[key].forEach((d, j) => {
        const at = t.targetAt?.(key, j) ?? t.source;
        const problem = testDestinationProblem(d);
        if (problem) err(`acl_test destination "${d}": ${problem}`, at);
        else checkAclName(d, true, names, at, err);
      });
  }
}

interface AclNames {
  tags: Set<string>;
  hosts: Set<string>;
  users: Set<string>;
  aliases: AclAliases;
}

const AUTOGROUPS = ["autogroup:member", "autogroup:tagged", "autogroup:self", "autogroup:internet"];

function checkAclName(s: string, isDst: boolean, n: AclNames, at: SourcePos, err: Err) {
  let name = s;
  if (isDst) {
    const i = s.lastIndexOf(":");
    if (i <= 0 || ((s.startsWith("tag:") || s.startsWith("group:") || s.startsWith("autogroup:")) && s.indexOf(":") === i))
      return err(`ACL destination "${s}" needs a port: "<target>:<port>", ":N-M" or ":*"`, at);
    const port = s.slice(i + 1);
    if (port !== "*" && !/^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/.test(port))
      return err(`ACL destination "${s}": port "${port}" is not a port, a range or *`, at);
    if (port !== "*" && port.split(/[-,]/).some((p) => Number(p) > 65535)) return err(`ACL destination "${s}": port ${port} is not 0-65535`, at);
    name = s.slice(0, i);
  }
  if (name === "*") return;
  if (name.startsWith("tag:")) {
    if (!n.tags.has(name.slice(4))) err(`ACL names unknown tag "${name}" (tags in this mesh: ${[...n.tags].join(", ") || "none"})`, at);
    return;
  }
  if (name.startsWith("autogroup:")) {
    if (!AUTOGROUPS.includes(name)) return err(`ACL names unknown autogroup "${name}" (bolt knows ${AUTOGROUPS.join(", ")})`, at);
    if (!isDst && (name === "autogroup:self" || name === "autogroup:internet")) err(`"${name}" is a destination only (as in Tailscale)`, at);
    return;
  }
  if (name.startsWith("group:")) {
    if (!(name in n.aliases.groups)) err(`ACL names unknown group "${name}" (groups: ${Object.keys(n.aliases.groups).join(", ") || "none"})`, at);
    return;
  }
  if (name.includes("@")) return; // a user: matches that user's untagged nodes (none is not an error, as in Tailscale)
  if (name in n.aliases.hosts) return;
  if (name.includes(":")) {
    // IPv6: an address or CIDR, bare or in brackets ("[fd7a:115c:a1e0::1]:22" as a destination).
    const c = parseCidr6(name.replace(/^\[(.*)\]$/, "$1"));
    if (!c) err(`ACL names "${name}", which is neither a tag:, a group:, a user, a hosts alias, a known hostname, nor an IPv4 or IPv6 CIDR`, at);
    return;
  }
  if (parseCidr4(name.includes("/") ? name : `${name}/32`)) return;
  if (!n.hosts.has(name)) err(`ACL names "${name}", which is neither a tag:, a group:, a user, a hosts alias, a known hostname, nor a CIDR`, at);
}

/** `host:port`, `a.b.c.d:port` or `[IPv6]:port` (as wg and wg-quick write it; the address is checked by `isIP`). */
const ENDPOINT = {
  test(e: string): boolean {
    const v6 = /^\[([0-9A-Fa-f:.]+)\]:\d{1,5}$/.exec(e);
    if (v6) return isIP(v6[1]!) === 6;
    return /^[A-Za-z0-9.-]+:\d{1,5}$/.test(e);
  },
};

/** host:port with a port the kernel can use (five digits would otherwise pass the pattern: 99999 wraps silently). */
function validPort(endpoint: string): boolean {
  const port = Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}
