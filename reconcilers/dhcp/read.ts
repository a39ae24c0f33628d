import { existsSync } from "node:fs";
import { splitTail } from "../../src/core/tail-split.js";
import type { LiveReader } from "../../src/core/live-reader.js";
import type { Resource } from "../../src/core/resource.js";
import { dhcpPaths, hostsText, parseHosts, specOf, targetDir } from "./render.js";

/**
 * bolt's dnsmasqs of a target, from its run dir alone: each network's directory holds the files
 * bolt wrote and the pid file dnsmasq wrote. The daemon is bolt's only if that pid is a dnsmasq
 * started on that directory's config (a reused pid is someone else's); no other dnsmasq on the
 * host — its own, libvirt's — is ever looked at here.
 */
export async function readDhcp(io: LiveReader, networks: string[]): Promise<Resource[]> {
  const root = targetDir(io.target);
  if (!existsSync(root)) return [];
  const listed = await io.exec(["find", root, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\\n"], null);
  const names = [...new Set([...networks, ...listed.stdout.split("\n").filter(Boolean)])].sort();
  const paths = names.map((n) => dhcpPaths(io.target, n));
  const files = splitTail((await io.exec(["tail", "-n", "+1", "--", ...paths.flatMap((p) => [p.pid, p.conf, p.opts, p.hosts, p.leases])], null)).stdout);
  const out: Resource[] = [];
  for (const [i, name] of names.entries()) {
    const p = paths[i]!;
    const conf = files.get(p.conf);
    if (conf === undefined) continue;
    const pid = Number((files.get(p.pid) ?? "").trim());
    const running = Number.isInteger(pid) && pid > 0 && (await isOurDnsmasq(io, pid, p.conf));
    const opts = files.get(p.opts) ?? "";
    const hostsFile = files.get(p.hosts) ?? "";
    const hosts = parseHosts(hostsFile);
    const leases = (files.get(p.leases) ?? "").split("\n").filter(Boolean).length;
    out.push({
      kind: "dhcp",
      name,
      id: `dhcp:${name}`,
      keys: [`dnsmasq:${p.dir}`],
      spec: { ...specOf(conf, opts, hostsFile), daemon: running ? "running" : "stopped" },
      display: { hosts: hostsText(hosts) },
      data: { ...(running ? { pid } : {}), files: { conf, opts, hosts: hostsFile } },
      deps: [],
      owned: true,
      ...(running ? { counters: { daemon: `pid ${pid}`, hosts: hostsText(hosts), leases: `${leases} lease(s) handed out` } } : {}),
    });
  }
  return out;
}

/** The pid is a dnsmasq started on bolt's config for this network. */
export async function isOurDnsmasq(io: LiveReader, pid: number, conf: string): Promise<boolean> {
  const r = await io.exec(["cat", `/proc/${pid}/cmdline`], null);
  if (r.code !== 0) return false;
  const argv = r.stdout.split("\0");
  return (argv[0] ?? "").split("/").pop() === "dnsmasq" && argv.includes(`--conf-file=${conf}`);
}

/** One UDP port-67 listener of `ss -H -l -u -n -p`: its device (SO_BINDTODEVICE), if any, and its processes. */
export interface Listener {
  address: string;
  device?: string;
  procs: { name: string; pid: number }[];
}

/** `UNCONN 0 0 0.0.0.0%bolt-lan:67 0.0.0.0:* users:(("dnsmasq",pid=42,fd=4))` → the listener. */
export function parseListeners(out: string): Listener[] {
  const res: Listener[] = [];
  for (const line of out.split("\n")) {
    const cols = line.trim().split(/\s+/);
    const local = cols[3];
    if (!local) continue;
    const m = /^(.*?)(?:%([^:\]]+))?:(\d+)$/.exec(local);
    if (!m || m[3] !== "67") continue;
    const procs = [...line.matchAll(/\("([^"]+)",pid=(\d+)/g)].map((x) => ({ name: x[1]!, pid: Number(x[2]) }));
    res.push({ address: m[1]!, ...(m[2] ? { device: m[2] } : {}), procs });
  }
  return res;
}
