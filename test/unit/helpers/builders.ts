// Small constructors for the pure-function tests: intents, resources and ops with only the
// fields a test cares about spelled out.
import { parseCidr4, parseIp4 } from "../../../src/core/ipv4.js";
import type { EndpointIntent, Intent, NetworkIntent, SysctlIntent } from "../../../src/config/model.js";
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
  return { name, bridge: `bolt-${name}`, subnet: { network: c.network, prefix: c.prefix }, gateway, pool, mtu: opts.mtu ?? 1500, source: at(1), fieldSources: {} };
}

export function endpoint(name: string, net: string, opts: { ip?: string; line?: number } = {}): EndpointIntent {
  return { name, network: net, type: "veth", netns: name, ip: opts.ip ? ip(opts.ip) : undefined, source: at(opts.line ?? 1), fieldSources: {} };
}

export function intent(parts: Partial<Intent> & { sysctls?: SysctlIntent[] } = {}): Intent {
  return { networks: [], endpoints: [], sysctls: [], files: [], ...parts };
}

export function resource(kind: string, name: string, spec: Record<string, string>, opts: Partial<Resource> = {}): Resource {
  return { kind, name, id: `${kind}:${name}`, keys: [], spec, deps: [], owned: true, ...opts };
}

/** An `ip` op line whose args spell out a label, so tests can compare by label. */
export function op(label: string, stage: number, ns: Ns, opts: Partial<Op> = {}): Op {
  return { tool: "ip", ns, args: [label], stage, undo: [], ...opts };
}

export const labels = (ops: { args: string[] }[]) => ops.map((o) => o.args.join(" "));
