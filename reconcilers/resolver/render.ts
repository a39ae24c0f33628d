import type { Resource } from "../../src/core/resource.js";
import type { EndpointIntent } from "../endpoint/intent.js";

/** resolv.conf lines (resolv.conf(5)): one `nameserver` per address, one `search` line. */
export function resolvBody(nameservers: string[], search: string[]): string[] {
  return [...nameservers.map((n) => `nameserver ${n}`), ...(search.length ? [`search ${search.join(" ")}`] : [])];
}

/** The nameservers and search domains a resolv.conf body sets (glibc: the last `search` line wins). */
export function resolvFields(body: string[]): { nameservers: string; search: string } {
  const ns: string[] = [];
  let search: string[] = [];
  for (const l of body) {
    const [key, ...rest] = l.trim().split(/\s+/);
    if (key === "nameserver" && rest[0]) ns.push(rest[0]);
    if (key === "search" || key === "domain") search = rest;
  }
  return { nameservers: ns.join(", "), search: search.join(", ") };
}

/** The loopback names every hosts file has (Debian's own /etc/hosts lines). */
export const LOCALHOST = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];

/**
 * A namespace's hosts lines: localhost, then every endpoint on `networks` (these namespaces'
 * discovery networks) by name with its address, IPv4 lines before IPv6 ones (glibc's
 * gethostbyname answers the first line of the family asked for).
 */
export function hostsBody(networks: string[], plugged: EndpointIntent[], eps: Map<string, Resource>): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const net of networks)
    for (const e of plugged) {
      if (e.network !== net) continue;
      const s = eps.get(e.name)!.spec;
      if (s.ip) v4.push(`${s.ip.split("/")[0]}\t${e.name}`);
      if (s.ip6) v6.push(`${s.ip6.split("/")[0]}\t${e.name}`);
    }
  return [...LOCALHOST, ...v4, ...v6];
}

/**
 * How many endpoint lines a hosts body has (localhost lines and comments aside): a count, not a
 * parse — it runs on every file of every plan, and an edit shows in the content digest anyway.
 */
export function hostsEntries(body: string[]): number {
  let n = 0;
  for (const l of body) if (l && l[0] !== "#" && !l.startsWith("127.0.0.1\t") && !l.startsWith("::1\t")) n++;
  return n;
}
