import { decodeAlias } from "../../src/core/ownership.js";
import { INNER_IFNAME } from "../../src/core/conventions.js";
import type { IpAddr, IpLink, IpRoute, LiveReader } from "../../src/core/live-reader.js";
import type { Resource } from "../../src/core/resource.js";

/**
 * Endpoints are read from their host side: the veth/tap alias `bolt1,ep=NAME,…` records the
 * namespace, address and gateway bolt plumbed inside. A shallow read costs nothing per
 * endpoint; a deep read enters each namespace and replaces the recorded inside state with
 * what the kernel really has (used to verify what an apply touched, and by `plan --deep`).
 */
export function parseEndpoints(links: IpLink[]): Resource[] {
  const out: Resource[] = [];
  for (const l of links) {
    const tag = decodeAlias(l.ifalias);
    if (!tag?.ep) continue;
    const type = l.linkinfo?.info_kind === "tun" ? "tap" : "veth";
    const spec: Record<string, string> = {
      type,
      host_if: l.ifname,
      network: tag.net ?? "",
      bridge: l.master ?? "",
      ...(type === "veth" ? { netns: tag.ns ?? "" } : {}),
      ...(type === "veth" && tag.if ? { inner_if: tag.if } : {}),
      ip: tag.ip ?? "",
      // An endpoint bolt made before it set `broadcast +` records none: its address is an update.
      ...(type === "veth" ? { broadcast: tag.brd ?? "" } : {}),
      ...(type === "veth" ? { gateway: tag.gw ?? "" } : {}),
      // Dual-stack keys only when bolt recorded them (a v4-only endpoint's spec stays as it was).
      ...(tag.ip6 ? { ip6: tag.ip6, ...(type === "veth" ? { gateway6: tag.gw6 ?? "" } : {}) } : {}),
      mtu: String(l.mtu),
      // A tap's MAC is the host-side device's own: read it from the kernel (drift shows).
      ...(tag.mac ? { mac: type === "tap" && l.address ? l.address : tag.mac } : {}),
      state: l.flags.includes("UP") ? "up" : "down",
    };
    out.push({
      kind: "endpoint",
      name: tag.ep,
      id: `endpoint:${tag.ep}`,
      keys: [`link:${l.ifname}`],
      spec,
      data: { nsCreated: tag.nsc === "1" },
      deps: tag.net ? [`network:${tag.net}`] : [],
      owned: true,
    });
  }
  return out;
}

/** What a deep read asks inside an endpoint namespace (one `ip -j -batch` process). */
// `table all` is the one `ip route show` form that lists both families in a batch (which takes no -6).
export const INSIDE_READ = ["addr show", "route show table all default"];

/** Replace recorded inside state with the kernel's, entering each endpoint namespace. */
export async function readInside(io: LiveReader, r: Resource, netnsExists: boolean): Promise<void> {
  const ns = r.spec.netns;
  if (r.spec.type !== "veth" || !ns) return;
  if (!netnsExists) {
    r.spec.ip = "";
    r.spec.broadcast = "";
    r.spec.gateway = "";
    if (r.spec.ip6 !== undefined) r.spec.ip6 = "";
    if (r.spec.gateway6 !== undefined) r.spec.gateway6 = "";
    return;
  }
  let addrs: IpAddr[] = [];
  let routes: IpRoute[] = [];
  try {
    [addrs = [], routes = []] = (await io.ipJsonBatch(INSIDE_READ, ns)) as [IpAddr[], IpRoute[]];
  } catch {
    /* namespace vanished between list and read: nothing inside */
  }
  const ifname = r.spec.inner_if ?? INNER_IFNAME;
  const inner = addrs.find((a) => a.ifname === ifname);
  const addrText = (family: string) =>
    inner?.addr_info
      // A link-local fe80:: address is the kernel's; bolt sets addrgenmode none, so one showing is drift worth a look, not an address.
      .filter((a) => a.family === family && a.scope !== "link")
      .map((a) => `${a.local}/${a.prefixlen}`)
      .sort()
      .join(", ") ?? "";
  r.spec.ip = addrText("inet");
  r.spec.broadcast = (inner?.addr_info ?? [])
    .filter((a) => a.family === "inet")
    .map((a) => a.broadcast ?? "")
    .join(", ");
  // The main table's default routes (no "table" key), one per family.
  const gw = (v6: boolean) => routes.find((rt) => !rt.table && rt.dev === ifname && rt.gateway && rt.gateway.includes(":") === v6)?.gateway ?? "";
  r.spec.gateway = gw(false);
  const ip6 = addrText("inet6");
  const gw6 = gw(true);
  // Shown when bolt manages IPv6 here, or when someone added it by hand (drift).
  if (r.spec.ip6 !== undefined || ip6) r.spec.ip6 = ip6;
  if (r.spec.gateway6 !== undefined || gw6) r.spec.gateway6 = gw6;
  // A configured MAC is compared with what eth0 really has (`ip -j addr` carries the link address).
  if (r.spec.mac !== undefined) r.spec.mac = (inner as (IpAddr & { address?: string }) | undefined)?.address ?? "";
}
