import type { IpLink } from "../core/live-reader.js";
import { LiveReader } from "../core/live-reader.js";
import { decodeAlias } from "../core/ownership.js";
import type { CommandRunner, Ns } from "../exec/runner.js";
import { endpointIfname } from "../../reconcilers/endpoint/intent.js";
import { parseEndpoints, readInside } from "../../reconcilers/endpoint/read.js";
import { CNI_CODE, CniError } from "./errors.js";
import type { CniDns, CniResult } from "./request.js";

/** One attachment as the kernel has it: the host side (read back from its ownership alias) and the container side. */
export interface Attachment {
  hostIf: string;
  hostMac: string;
  innerMac: string;
  /** "10.0.0.5/24", as bolt plumbed it (the alias records it) */
  ip: string;
  gateway: string;
  ip6?: string;
  gateway6?: string;
}

const hostIfOf = (name: string) => endpointIfname({ name, type: "veth" });

/** The endpoint's host link in the target and its interface in the container's (aliased) namespace: two reads, in parallel. */
export async function readAttachment(runner: CommandRunner, target: Ns, name: string, nsName: string, ifname: string): Promise<Attachment> {
  const io = new LiveReader(runner, target);
  const hostIf = hostIfOf(name);
  const [host, inner] = await Promise.all([
    io.ipJson<IpLink[]>(["link", "show", "dev", hostIf]).catch(() => []),
    io.ipJson<IpLink[]>(["link", "show", "dev", ifname], nsName).catch(() => []),
  ]);
  const tag = decodeAlias(host[0]?.ifalias);
  if (!host[0] || tag?.ep !== name) throw new CniError(CNI_CODE.engine, `endpoint ${name}: its host interface ${hostIf} is not in the kernel after the apply`);
  if (!inner[0]) throw new CniError(CNI_CODE.engine, `endpoint ${name}: no ${ifname} in the container's namespace after the apply`);
  return {
    hostIf,
    hostMac: host[0].address ?? "",
    innerMac: inner[0].address ?? "",
    ip: tag.ip ?? "",
    gateway: tag.gw ?? "",
    ...(tag.ip6 ? { ip6: tag.ip6, gateway6: tag.gw6 ?? "" } : {}),
  };
}

/**
 * The CNI result (spec 1.0 "Success"): the interfaces this attachment created (the host veth,
 * the container's end with its sandbox), its addresses on the container's interface (index 1),
 * the default routes bolt set inside. 0.4.0 results also name each address's version.
 */
export function resultOf(a: Attachment, ifname: string, sandbox: string, cniVersion: string, dns: CniDns = {}): CniResult {
  const v04 = cniVersion === "0.4.0";
  const ips: NonNullable<CniResult["ips"]> = [];
  const routes: NonNullable<CniResult["routes"]> = [];
  if (a.ip) ips.push({ ...(v04 ? { version: "4" } : {}), address: a.ip, ...(a.gateway ? { gateway: a.gateway } : {}), interface: 1 });
  if (a.gateway) routes.push({ dst: "0.0.0.0/0", gw: a.gateway });
  if (a.ip6) ips.push({ ...(v04 ? { version: "6" } : {}), address: a.ip6, ...(a.gateway6 ? { gateway: a.gateway6 } : {}), interface: 1 });
  if (a.gateway6) routes.push({ dst: "::/0", gw: a.gateway6 });
  return {
    cniVersion,
    interfaces: [
      { name: a.hostIf, mac: a.hostMac },
      { name: ifname, mac: a.innerMac, sandbox },
    ],
    ips,
    routes,
    dns,
  };
}

/**
 * CHECK: what the kernel has now against what bolt recorded on the host side (the endpoint
 * kind's own shallow and deep reads: the alias, then the inside of the container's namespace)
 * and against the runtime's prevResult. Every difference is named.
 */
export async function checkAttachment(
  runner: CommandRunner,
  target: Ns,
  name: string,
  nsName: string,
  ifname: string,
  prev: CniResult | undefined,
): Promise<string[]> {
  const io = new LiveReader(runner, target);
  const links = await io.ipJson<IpLink[]>(["-d", "link", "show"]);
  const recorded = parseEndpoints(links).find((r) => r.name === name && r.spec.type === "veth");
  if (!recorded) return [`its host interface ${hostIfOf(name)} is not in the kernel`];
  const problems: string[] = [];
  const s = recorded.spec;
  if (s.state !== "up") problems.push(`${s.host_if} is down`);
  const bridge = links.find((l) => l.ifname === s.bridge);
  if (!bridge || decodeAlias(bridge.ifalias)?.net !== s.network) problems.push(`${s.host_if} is not on the bridge of bolt network "${s.network}"`);
  if (s.netns !== nsName) problems.push(`${s.host_if} leads into netns ${s.netns}, not the attachment's ${nsName}`);
  const live = { ...recorded, spec: { ...s } };
  await readInside(io, live, true);
  for (const k of ["ip", "gateway", "ip6", "gateway6"] as const)
    if (s[k] !== undefined && live.spec[k] !== s[k]) problems.push(`${k} inside is "${live.spec[k] ?? ""}", bolt set "${s[k]}"`);
  // Only the addresses prevResult puts on this attachment's interface (a chain may add others).
  const ours = (prev?.interfaces ?? []).flatMap((x, i) => (x.name === ifname && x.sandbox ? [i] : []));
  for (const want of (prev?.ips ?? []).filter((x) => x.interface !== undefined && ours.includes(x.interface))) {
    const had = [s.ip, s.ip6].includes(want.address);
    if (!had) problems.push(`prevResult's address ${want.address} is not the attachment's (${[s.ip, s.ip6].filter(Boolean).join(", ")})`);
  }
  return problems;
}
