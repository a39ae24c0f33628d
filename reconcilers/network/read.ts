import { decodeAlias } from "../../src/core/ownership.js";
import type { IpAddr, IpLink } from "../../src/core/live-reader.js";
import type { Resource } from "../../src/core/resource.js";
import { LINK_LOCAL } from "./link-local.js";

/**
 * Parses `ip -j -d link show` + `ip -j addr show` into network resources. A bridge is bolt's
 * when its alias carries `bolt1,net=NAME`; every other link is reported as foreign so a desired
 * bridge can never take over its name.
 */
export function parseNetworks(links: IpLink[], addrs: IpAddr[]): { resources: Resource[]; foreign: Map<string, string> } {
  const addrBy = new Map(addrs.map((a) => [a.ifname, a.addr_info]));
  // Deleting a bridge detaches its ports: undoing the delete must attach them again.
  const portsOf = new Map<string, string[]>();
  for (const l of links) if (l.master) portsOf.set(l.master, [...(portsOf.get(l.master) ?? []), l.ifname]);
  const resources: Resource[] = [];
  const foreign = new Map<string, string>();
  for (const l of links) {
    const tag = decodeAlias(l.ifalias);
    if (!tag?.net || l.linkinfo?.info_kind !== "bridge") {
      if (!tag) foreign.set(`link:${l.ifname}`, l.linkinfo?.info_kind ?? "link");
      continue;
    }
    resources.push(networkResource(tag.net, l, addrBy.get(l.ifname) ?? [], portsOf.get(l.ifname) ?? []));
  }
  return { resources, foreign };
}

function networkResource(name: string, l: IpLink, addrs: IpAddr["addr_info"], ports: string[]): Resource {
  const text = (family: string) =>
    addrs
      // Global IPv6, and the link-local address bolt gives a dual-stack bridge: any other fe80::
      // address is the kernel's (addrgenmode), never bolt's.
      .filter((a) => a.family === family && (family === "inet" || a.scope !== "link" || `${a.local}/${a.prefixlen}` === LINK_LOCAL))
      .map((a) => `${a.local}/${a.prefixlen}`)
      .sort();
  const v4 = [...text("inet"), ...text("inet6")];
  return {
    kind: "network",
    name,
    id: `network:${name}`,
    keys: [`link:${l.ifname}`],
    spec: {
      bridge: l.ifname,
      address: v4.join(", "),
      // The IPv4 addresses' broadcast (empty: added without one).
      broadcast: addrs
        .filter((a) => a.family === "inet")
        .map((a) => a.broadcast ?? "")
        .join(", "),
      mtu: String(l.mtu),
      state: l.flags.includes("UP") ? "up" : "down",
    },
    ...(ports.length ? { data: { ports: ports.sort() } } : {}),
    deps: [],
    owned: true,
  };
}
