import { createHash } from "node:crypto";
import { join } from "node:path";
import { formatIp4, maskOf } from "../../src/core/ipv4.js";
import { RUN_DIR } from "../../src/exec/run-dir.js";
import type { Ns } from "../../src/exec/runner.js";
import type { DhcpIntent } from "./intent.js";

/**
 * What bolt's dnsmasq for one network reads, as three files in RUN_DIR/dnsmasq/<target>/<network>/:
 * `dnsmasq.conf` (read once, at start: the interface, the range, the lease time), `opts`
 * (`--dhcp-optsfile`: router and nameservers) and `hosts` (`--dhcp-hostsfile`: one MAC,IP per
 * lease). dnsmasq re-reads the last two on SIGHUP, so a VM added or a gateway moved is a reload
 * of the running daemon; only a change to the first needs a restart.
 */
export function targetDir(ns: Ns): string {
  return join(RUN_DIR(), "dnsmasq", ns === null ? "host" : `netns-${ns}`);
}

export function dhcpPaths(ns: Ns, network: string) {
  const dir = join(targetDir(ns), network);
  return {
    dir,
    conf: join(dir, "dnsmasq.conf"),
    opts: join(dir, "opts"),
    hosts: join(dir, "hosts"),
    pid: join(dir, "dnsmasq.pid"),
    leases: join(dir, "leases"),
  };
}

export type DhcpPaths = ReturnType<typeof dhcpPaths>;

/** One static lease: the client's MAC and the address bolt's IPAM recorded for its endpoint. */
export interface DhcpHost {
  endpoint: string;
  mac: string;
  ip: string;
}

/**
 * The MAC bolt serves a tap endpoint's VM: locally administered and unicast (02:…), from the
 * target and the endpoint's name, so a VM keeps it across applies, restarts and lost state.
 * It can never be the tap's own: a Linux bridge holds a permanent local fdb entry for each
 * port's address and delivers frames to it to the host itself, so a VM with its tap's MAC would
 * never see a reply (libvirt gives its taps fe:… for the same reason).
 */
export function vmMac(target: Ns, endpoint: string): string {
  const h = createHash("sha256")
    .update(`bolt-vm:${target ?? ""}:${endpoint}`)
    .digest();
  return ["02", ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

/**
 * The start-time config. `bind-interfaces` with exactly one `interface` makes dnsmasq bind its
 * DHCP socket to that device (SO_BINDTODEVICE), so one dnsmasq per bridge can run side by side
 * and none answers on another interface; `port=0` turns its DNS server off (bolt runs none);
 * `static` serves only the hosts file (an address dnsmasq chose itself from the pool would be
 * the next one bolt's IPAM hands an endpoint); `dhcp-authoritative` NAKs a stale lease at once.
 * `user=root`: dnsmasq reads its hosts and options files after it has dropped root (at start
 * and on every SIGHUP), and they sit in bolt's run dir, which is 0700 (it also holds the target
 * locks and the sysctl originals): as `nobody` it would know no host and answer no VM.
 */
export function renderConf(d: DhcpIntent, p: DhcpPaths): string {
  return [
    `# bolt dhcp: network ${d.network} (written by bolt; bolt rewrites it)`,
    `interface=${d.bridge}`,
    "bind-interfaces",
    "except-interface=lo",
    "port=0",
    "no-resolv",
    "no-hosts",
    "dhcp-authoritative",
    "user=root",
    `dhcp-range=${formatIp4(d.subnet.network)},static,${formatIp4(maskOf(d.subnet.prefix))},${d.leaseTime}`,
    `dhcp-leasefile=${p.leases}`,
    `dhcp-hostsfile=${p.hosts}`,
    `dhcp-optsfile=${p.opts}`,
    "",
  ].join("\n");
}

/** Router and nameservers; an empty option 6 keeps dnsmasq from offering itself (its DNS is off). */
export function renderOpts(d: DhcpIntent): string {
  return [`option:router,${formatIp4(d.gateway)}`, d.dns.length ? `option:dns-server,${d.dns.join(",")}` : "option:dns-server", ""].join("\n");
}

/** One `MAC,IP` line per lease (dnsmasq takes no trailing comments), each after a comment naming its endpoint. */
export function renderHosts(hosts: DhcpHost[]): string {
  return hosts.map((h) => `# ${h.endpoint}\n${h.mac},${h.ip}\n`).join("");
}

export function parseHosts(text: string): DhcpHost[] {
  const out: DhcpHost[] = [];
  let name = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("# ")) name = line.slice(2);
    else if (line.trim()) {
      const [mac = "", ip = ""] = line.split(",");
      out.push({ endpoint: name, mac, ip });
      name = "";
    }
  }
  return out;
}

/** The plan's fields, from the rendered (or the read) files: what decides a restart and what a reload. */
export function specOf(conf: string, opts: string, hosts: string): Record<string, string> {
  const get = (text: string, key: string) =>
    text
      .split("\n")
      .find((l) => l.startsWith(`${key}=`))
      ?.slice(key.length + 1) ?? "";
  const optLine = (o: string) =>
    opts
      .split("\n")
      .find((l) => l.startsWith(`option:${o}`))
      ?.slice(`option:${o}`.length + 1) ?? "";
  const [start = "", , mask = "", lease = ""] = get(conf, "dhcp-range").split(",");
  return {
    interface: get(conf, "interface"),
    range: start && mask ? `${start}/${prefixOf(mask)} static` : "",
    lease_time: lease,
    router: optLine("router"),
    dns: optLine("dns-server").split(",").filter(Boolean).join(", "),
    hosts: digest(hosts),
    config: digest(conf),
  };
}

/** Fields dnsmasq reads only when it starts. */
export const RESTART_FIELDS = ["interface", "range", "lease_time", "config"];

export const hostsText = (hosts: DhcpHost[]) => hosts.map((h) => `${h.endpoint} ${h.mac}=${h.ip}`).join(", ");

function prefixOf(mask: string): number {
  return mask.split(".").reduce((n, o) => n + (Number(o) >>> 0).toString(2).replace(/0/g, "").length, 0);
}

const digest = (s: string) => (s ? createHash("sha256").update(s).digest("hex").slice(0, 12) : "");
