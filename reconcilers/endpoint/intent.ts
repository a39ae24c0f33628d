import { closest, distance } from "fastest-levenshtein";
import type { SourcePos } from "../../src/core/diagnostics.js";
import { formatIp4, parseIp4 } from "../../src/core/ipv4.js";
import { formatIp6, parseIp6 } from "../../src/core/ipv6.js";
import { fragment, fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { duplicates } from "../../src/config/checks.js";
import type { Err } from "../../src/config/checks.js";
import { deriveIfname } from "../../src/config/names.js";
import { pointer } from "../../src/config/positions.js";
import { NETWORKS, checkHost } from "../network/intent.js";
import { checkHost6 } from "../network/intent6.js";
import type { NetworkIntent } from "../network/intent.js";

/**
 * How an endpoint is networked (Joblet's `--network=`): `bridge` plugs it into a network,
 * `none` is a namespace with only `lo`, `host` shares the host's namespace (bolt makes nothing).
 */
export type EndpointMode = "bridge" | "none" | "host";

/** `[[endpoints]]`: a veth into a namespace (or a tap for a VM) on one of the networks. */
export interface EndpointIntent {
  name: string;
  mode: EndpointMode;
  /** the network of a bridge-mode endpoint; "" for none and host */
  network: string;
  type: "veth" | "tap";
  /** netns of a veth endpoint (prefix applied); undefined for taps */
  netns?: string;
  /** static address, else IPAM leases one */
  ip?: number;
  /** static IPv6 address (the network must have ipv6), else IPAM leases one from its v6 pool */
  ip6?: bigint;
  mac?: string;
  /**
   * the one endpoint of its namespace that carries the default route: `default = true` as
   * written (false: never this one), then, after checkNamespaces, whether it does
   */
  default?: boolean;
  /** `ifname` as written: the interface's name inside its namespace */
  ifname?: string;
  /** the interface inside its namespace: its ifname, else eth0, eth1, … in the order the namespace's endpoints are written */
  innerIf?: string;
  source: SourcePos;
  fieldSources: Record<string, SourcePos>;
}

export const ENDPOINTS = fragmentKey<EndpointIntent[]>("endpoint", () => []);

type Obj = Record<string, unknown>;

export const endpointIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): EndpointIntent[] {
    const endpoints: EndpointIntent[] = [];
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      ((f.data.endpoints ?? []) as Obj[]).forEach((raw, i) => {
        const e = endpoint(
          raw,
          (k) => f.positions.value(pointer(["endpoints", i, k])),
          f.positions.key(pointer(["endpoints", i])),
          ctx.opts.netnsPrefix ?? "",
          ctx.err,
        );
        if (e) endpoints.push(e);
      });
    }
    checkEndpoints(fragment(ctx.intent, NETWORKS), endpoints, ctx.err);
    checkNamespaces(endpoints, ctx.err);
    for (const e of endpoints)
      if (e.mode === "host")
        ctx.diagnostics.push({
          severity: "warning",
          message: `endpoint "${e.name}": mode = "host" shares the host's own network namespace: no isolation, every host interface and port is reachable from it and bolt creates nothing for it`,
          source: e.fieldSources.mode ?? e.source,
        });
    return endpoints;
  },
  describe: (f) => `${((f as EndpointIntent[] | undefined) ?? []).length} endpoint(s)`,
};

/** Keys that only a bridge-mode endpoint has (none and host have no network, address or device). */
const BRIDGE_ONLY = ["network", "ip", "ip6", "tap", "mac", "default", "ifname"];

function endpoint(raw: Obj, pos: (k: string) => SourcePos, source: SourcePos, prefix: string, err: Err): EndpointIntent | undefined {
  const name = String(raw.name);
  const mode = (raw.mode ?? "bridge") as EndpointMode;
  if (mode !== "bridge") {
    const extra = [...BRIDGE_ONLY, ...(mode === "host" ? ["netns"] : [])].find((k) => raw[k] !== undefined);
    if (extra) {
      const why = mode === "none" ? "a namespace with only lo" : "the host's own namespace, untouched";
      err(`endpoint "${name}": mode = "${mode}" (${why}) cannot have "${extra}"; it applies to mode = "bridge" only`, pos(extra));
      return undefined;
    }
  } else if (raw.network === undefined) {
    err(`endpoint "${name}": a bridge-mode endpoint needs a network`, source, 'add network = "NAME", or mode = "none" for a namespace with only lo');
    return undefined;
  }
  const type = raw.tap === true ? "tap" : "veth";
  let ip: number | undefined;
  if (raw.ip !== undefined) {
    ip = parseIp4(String(raw.ip));
    if (ip === undefined) {
      err(`endpoint "${name}": ip "${String(raw.ip)}" is not an IPv4 address`, pos("ip"));
      return undefined;
    }
  }
  let ip6: bigint | undefined;
  if (raw.ip6 !== undefined) {
    ip6 = parseIp6(String(raw.ip6));
    if (ip6 === undefined || String(raw.ip6).includes("/")) {
      err(`endpoint "${name}": ip6 "${String(raw.ip6)}" is not an IPv6 address`, pos("ip6"), "an address without a prefix length, like fd20::10");
      return undefined;
    }
  }
  if (type === "tap" && raw.default !== undefined) {
    err(`endpoint "${name}": a tap endpoint's VM sets its own routes; "default" applies to veth endpoints only`, pos("default"));
    return undefined;
  }
  if (type === "tap" && raw.ifname !== undefined) {
    err(`endpoint "${name}": a tap endpoint has no interface in a namespace; "ifname" applies to veth endpoints only`, pos("ifname"));
    return undefined;
  }
  if (raw.ifname === "lo") {
    err(`endpoint "${name}": ifname "lo" is the namespace's loopback`, pos("ifname"), "name the interface eth1, net1, …");
    return undefined;
  }
  if (type === "tap" && raw.netns !== undefined) {
    err(`endpoint "${name}": a tap endpoint stays on the host; "netns" applies to veth endpoints only`, pos("netns"));
    return undefined;
  }
  const netns = type === "veth" && mode !== "host" ? prefix + String(raw.netns ?? name) : undefined;
  if (netns !== undefined && (netns.length > 64 || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(netns))) {
    err(`endpoint "${name}": namespace name "${netns}" must be at most 64 letters, digits, "_", "." or "-"`, pos(raw.netns ? "netns" : "name"));
    return undefined;
  }
  if (typeof raw.mac === "string") {
    // The kernel refuses a multicast MAC on an interface (the low bit of the first octet) and an all-zero one.
    const first = Number.parseInt(raw.mac.slice(0, 2), 16);
    if (/^(00:){5}00$/.test(raw.mac)) {
      err(`endpoint "${name}": mac ${raw.mac} is all zeros`, pos("mac"), "use a locally administered address such as 02:00:00:00:00:01");
      return undefined;
    }
    if (first & 1) {
      err(
        `endpoint "${name}": mac ${raw.mac} is a multicast address (its first octet is odd)`,
        pos("mac"),
        "use a unicast, locally administered address: first octet 02, 06, 0a, …",
      );
      return undefined;
    }
  }
  const fieldSources: Record<string, SourcePos> = {};
  for (const k of ["name", "mode", "network", "ip", "ip6", "tap", "netns", "mac", "default", "ifname"]) if (raw[k] !== undefined) fieldSources[k] = pos(k);
  return {
    name,
    mode,
    network: mode === "bridge" ? String(raw.network) : "",
    type,
    netns,
    ip,
    ...(ip6 !== undefined ? { ip6 } : {}),
    mac: raw.mac as string | undefined,
    ...(typeof raw.default === "boolean" ? { default: raw.default } : {}),
    ...(typeof raw.ifname === "string" ? { ifname: raw.ifname } : {}),
    source,
    fieldSources,
  };
}

function checkEndpoints(networks: NetworkIntent[], endpoints: EndpointIntent[], err: Err) {
  duplicates(
    endpoints,
    (e) => e.name,
    (e) => `endpoint "${e.name}" is defined twice`,
    (e) => e.fieldSources.name ?? e.source,
    err,
  );
  const byName = new Map(networks.map((n) => [n.name, n]));
  const hostIfs = new Map(networks.map((n) => [n.bridge, `network "${n.name}"`]));
  for (const e of endpoints) {
    if (e.mode !== "bridge") continue;
    const hostIf = endpointIfname(e);
    const clash = hostIfs.get(hostIf);
    if (clash) err(`endpoint "${e.name}": its host interface "${hostIf}" collides with ${clash}`, e.fieldSources.name ?? e.source);
    hostIfs.set(hostIf, `endpoint "${e.name}"`);
    const n = byName.get(e.network);
    if (!n) {
      const names = [...byName.keys()];
      const guess = names.length ? closest(e.network, names) : undefined;
      err(
        `endpoint "${e.name}": network "${e.network}" is not defined`,
        e.fieldSources.network ?? e.source,
        guess && distance(guess, e.network) <= 3
          ? `did you mean "${guess}"?`
          : names.length
            ? `defined networks: ${names.join(", ")}`
            : "define it under [networks.NAME]",
      );
      continue;
    }
    if (e.ip !== undefined) {
      if (checkHost(e.ip, n.subnet, `endpoint "${e.name}": ip ${formatIp4(e.ip)}`, e.fieldSources.ip ?? e.source, err) && e.ip === n.gateway) {
        err(`endpoint "${e.name}": ip ${formatIp4(e.ip)} is the gateway of network "${n.name}"`, e.fieldSources.ip ?? e.source);
      }
    }
    if (e.ip6 !== undefined) {
      const at = e.fieldSources.ip6 ?? e.source;
      if (!n.v6)
        err(`endpoint "${e.name}": ip6 is set, but network "${n.name}" has no ipv6 subnet`, at, `add ipv6 = { subnet = "fd…::/64" } to [networks.${n.name}]`);
      else if (checkHost6(e.ip6, n.v6.subnet, `endpoint "${e.name}": ip6 ${formatIp6(e.ip6)}`, at, err) && e.ip6 === n.v6.gateway)
        err(`endpoint "${e.name}": ip6 ${formatIp6(e.ip6)} is the ipv6 gateway of network "${n.name}"`, at);
    }
  }
  duplicates(
    endpoints,
    (e) => (e.ip6 === undefined ? undefined : formatIp6(e.ip6)),
    (e, f) => `endpoint "${e.name}": ip6 ${formatIp6(e.ip6!)} is already used by endpoint "${f.name}"`,
    (e) => e.fieldSources.ip6 ?? e.source,
    err,
  );
  duplicates(
    endpoints,
    (e) => (e.ip === undefined ? undefined : formatIp4(e.ip)),
    (e, f) => `endpoint "${e.name}": ip ${formatIp4(e.ip!)} is already used by endpoint "${f.name}"`,
    (e) => e.fieldSources.ip ?? e.source,
    err,
  );
}

/**
 * Several veth endpoints may share a namespace (a job on two networks): they become eth0, eth1,
 * … inside, in the order they are written (an `ifname` names one explicitly), and at most one
 * carries the default route — the one with `default = true`, else the first that does not say
 * `default = false`. A none-mode namespace holds nothing but lo, so it is
 * alone in its namespace; two interfaces on one network would give the namespace two connected
 * routes to the same subnet (the second one never used).
 */
function checkNamespaces(endpoints: EndpointIntent[], err: Err) {
  const byNs = new Map<string, EndpointIntent[]>();
  for (const e of endpoints) if (e.netns !== undefined) byNs.set(e.netns, [...(byNs.get(e.netns) ?? []), e]);
  for (const [ns, members] of byNs) {
    const at = (e: EndpointIntent) => e.fieldSources.netns ?? e.fieldSources.name ?? e.source;
    const none = members.find((e) => e.mode === "none");
    if (none && members.length > 1) {
      const other = members.find((e) => e !== none)!;
      const later = members.indexOf(none) > members.indexOf(other) ? none : other;
      err(
        `endpoint "${later.name}": namespace "${ns}" is also endpoint "${(later === none ? other : none).name}"'s, and a mode = "none" namespace holds only lo`,
        at(later),
        "give one of them its own netns",
      );
      continue;
    }
    duplicates(
      members,
      (e) => e.network,
      (e, f) =>
        `endpoint "${e.name}": namespace "${ns}" is already on network "${e.network}" through endpoint "${f.name}" (one interface per network in a namespace)`,
      (e) => e.fieldSources.network ?? at(e),
      err,
    );
    duplicates(
      members,
      (e) => (e.default === true ? "default" : undefined),
      (e, f) => `endpoint "${e.name}": namespace "${ns}" already has its default route through endpoint "${f.name}" (default = true on both)`,
      (e) => e.fieldSources.default ?? at(e),
      err,
    );
    duplicates(
      members,
      (e) => e.ifname,
      (e, f) => `endpoint "${e.name}": namespace "${ns}" already has an interface ${e.ifname} through endpoint "${f.name}"`,
      (e) => e.fieldSources.ifname ?? at(e),
      err,
    );
    // default = false: never this one; all of them false: the namespace has no default route.
    const routed = members.find((e) => e.default === true) ?? members.find((e) => e.default !== false);
    const given = new Set(members.map((e) => e.ifname).filter(Boolean));
    let next = 0;
    for (const e of members) {
      if (e.ifname) e.innerIf = e.ifname;
      else {
        while (given.has(`eth${next}`)) next++;
        e.innerIf = `eth${next++}`;
      }
      e.default = e === routed;
    }
  }
}

/** Host-side interface of an endpoint: bv-<name> for veth, bt-<name> for tap (hashed when long). */
export function endpointIfname(e: Pick<EndpointIntent, "name" | "type">): string {
  return deriveIfname(e.type === "tap" ? "bt-" : "bv-", e.name);
}
