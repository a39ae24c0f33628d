// Small constructors for the pure-function tests: intents, resources and ops with only the
// fields a test cares about spelled out.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseCidr4, parseIp4 } from "../../../src/core/ipv4.js";
import { fragment } from "../../../src/core/intent.js";
import type { Intent } from "../../../src/core/intent.js";
import { ENDPOINTS } from "../../../reconcilers/endpoint/intent.js";
import type { EndpointIntent } from "../../../reconcilers/endpoint/intent.js";
import { NETWORKS } from "../../../reconcilers/network/intent.js";
import type { NetworkIntent } from "../../../reconcilers/network/intent.js";
import { NFT } from "../../../reconcilers/nft/intent.js";
import type { NodeRecord } from "../../../reconcilers/wireguard/store.js";
import { SYSCTLS } from "../../../reconcilers/sysctl/intent.js";
import type { SysctlIntent } from "../../../reconcilers/sysctl/intent.js";
import { WIREGUARD } from "../../../reconcilers/wireguard/intent.js";
import type { SourcePos } from "../../../src/core/diagnostics.js";
import type { Op, Resource } from "../../../src/core/resource.js";
import type { Ns } from "../../../src/exec/runner.js";

export const at = (line: number, col = 1, file = "test.toml"): SourcePos => ({ file, line, col });

export function ip(s: string): number {
  const n = parseIp4(s);
  if (n === undefined) throw new Error(`bad test address ${s}`);
  return n;
}

export function network(name: string, subnet: string, opts: { gateway?: string; pool?: [string, string]; mtu?: number } = {}): NetworkIntent {
  const c = parseCidr4(subnet);
  if (!c || c.hostBits) throw new Error(`bad test subnet ${subnet}`);
  const gateway = opts.gateway ? ip(opts.gateway) : c.network + 1;
  const pool = opts.pool ? { start: ip(opts.pool[0]), end: ip(opts.pool[1]) } : { start: c.network + 1, end: c.network + 2 ** (32 - c.prefix) - 2 };
  return {
    name,
    bridge: `bolt-${name}`,
    subnet: { network: c.network, prefix: c.prefix },
    gateway,
    pool,
    mtu: opts.mtu ?? 1500,
    source: at(1),
    fieldSources: {},
  };
}

export function endpoint(name: string, net: string, opts: { ip?: string; line?: number } = {}): EndpointIntent {
  return { name, network: net, type: "veth", netns: name, ip: opts.ip ? ip(opts.ip) : undefined, source: at(opts.line ?? 1), fieldSources: {} };
}

/** An intent from the fragments a test names (each kind's own fragment). */
export function intent(parts: { networks?: NetworkIntent[]; endpoints?: EndpointIntent[]; sysctls?: SysctlIntent[]; files?: string[] } = {}): Intent {
  const kinds: Record<string, unknown> = {};
  if (parts.networks) kinds.network = parts.networks;
  if (parts.endpoints) kinds.endpoint = parts.endpoints;
  if (parts.sysctls) kinds.sysctl = parts.sysctls;
  return { files: parts.files ?? [], kinds };
}

/** The fragments of an intent by their old names, for assertions. */
export function kinds(i: Intent) {
  const wg = fragment(i, WIREGUARD);
  return {
    networks: fragment(i, NETWORKS),
    endpoints: fragment(i, ENDPOINTS),
    sysctls: fragment(i, SYSCTLS),
    nft: fragment(i, NFT),
    wireguard: wg.interfaces,
    mesh: wg.mesh,
  };
}

export function resource(kind: string, name: string, spec: Record<string, string>, opts: Partial<Resource> = {}): Resource {
  return { kind, name, id: `${kind}:${name}`, keys: [], spec, deps: [], owned: true, ...opts };
}

/** An `ip` op line whose args spell out a label, so tests can compare by label. */
export function op(label: string, stage: number, ns: Ns, opts: Partial<Op> = {}): Op {
  return { tool: "ip", ns, args: [label], stage, undo: [], ...opts };
}

export const labels = (ops: { args: string[] }[]) => ops.map((o) => o.args.join(" "));

/** A mesh store's identity record (reconcilers/wireguard/store.ts): approved, pinned, no key yet, unless `o` says otherwise. */
export function storeNode(name: string, o: Partial<NodeRecord> = {}): NodeRecord {
  return {
    v: 1,
    name,
    state: "approved",
    public_key: null,
    key_policy: "pinned",
    mesh_ip4: "100.64.0.1",
    tags: [],
    routes_allowed: [],
    exit_node_allowed: false,
    enrolled_at: "2026-01-01T00:00:00Z",
    ...o,
  };
}

/**
 * A store-backed mesh host's ghostwire.toml (node "me", gw0, IPv4 only: the fake kernel models
 * no IPv6) beside its private key file; returns its path. The store is never dialled by these tests.
 */
export function writeMeshHostConf(keyFile: string): string {
  const conf = join(dirname(keyFile), "ghostwire.toml");
  writeFileSync(
    conf,
    `[ghostwire]\ncontrol_server = "etcd://127.0.0.1:1"\nauth_key_file = "x.boltkey"\n\n[features]\nipv6 = false\n\n[node]\nhostname = "me"\ninterface = "gw0"\nprivate_key_file = "${keyFile}"\n`,
    { mode: 0o600 },
  );
  return conf;
}
