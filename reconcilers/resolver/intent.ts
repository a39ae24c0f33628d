import type { SourcePos } from "../../src/core/diagnostics.js";
import { formatIp4, parseIp4 } from "../../src/core/ipv4.js";
import { formatIp6, parseIp6 } from "../../src/core/ipv6.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { pointer } from "../../src/config/positions.js";

/** What `[networks.NAME]` says about name resolution inside its endpoints' namespaces. */
export interface NetworkResolver {
  network: string;
  /** nameservers, canonical text, in the order written */
  dns: string[];
  search: string[];
  /** every endpoint resolves the others of this network by name (default true) */
  discovery: boolean;
  source: SourcePos;
  fieldSources: Record<string, SourcePos>;
}

export const RESOLVER = fragmentKey<NetworkResolver[]>("resolver", () => []);

/** glibc's MAXNS: resolv.conf nameservers after the third are ignored. */
export const MAX_NAMESERVERS = 3;

type Obj = Record<string, unknown>;

export const resolverIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): NetworkResolver[] {
    const out: NetworkResolver[] = [];
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      for (const [name, raw] of Object.entries((f.data.networks ?? {}) as Record<string, Obj>)) {
        const at = (...k: (string | number)[]) => f.positions.value(pointer(["networks", name, ...k]));
        const r = networkResolver(name, raw, at, f.positions.key(pointer(["networks", name])), ctx.err);
        if (r) out.push(r);
      }
    }
    return out;
  },
  describe: (f) => {
    const n = ((f as NetworkResolver[] | undefined) ?? []).filter((r) => r.dns.length).length;
    return `${n} network(s) with dns`;
  },
};

export function networkResolver(
  network: string,
  raw: Obj,
  at: (...k: (string | number)[]) => SourcePos,
  source: SourcePos,
  err: IntentContext["err"],
): NetworkResolver | undefined {
  const dnsRaw = (raw.dns ?? []) as unknown[];
  const searchRaw = (raw.search ?? []) as unknown[];
  let ok = true;
  if (dnsRaw.length > MAX_NAMESERVERS) {
    err(`network "${network}": dns lists ${dnsRaw.length} nameservers; glibc reads at most ${MAX_NAMESERVERS}`, at("dns", MAX_NAMESERVERS), "keep three");
    ok = false;
  }
  const dns: string[] = [];
  dnsRaw.forEach((d, i) => {
    const ip = canonicalIp(String(d));
    if (ip === undefined) {
      err(`network "${network}": dns "${String(d)}" is not an IPv4 or IPv6 address`, at("dns", i), 'a nameserver address, like "10.0.0.53" or "fd00::53"');
      ok = false;
    } else if (!dns.includes(ip)) dns.push(ip);
  });
  const search: string[] = [];
  searchRaw.forEach((d, i) => {
    const why = domainProblem(String(d));
    if (why) {
      err(`network "${network}": search "${String(d)}" is not a domain name: ${why}`, at("search", i), 'like "corp.example"');
      ok = false;
    } else if (!search.includes(String(d).toLowerCase())) search.push(String(d).toLowerCase());
  });
  // A resolv.conf with no nameserver line makes glibc ask 127.0.0.1 — inside the namespace, where nothing answers.
  if (search.length && !dns.length) {
    err(
      `network "${network}": search is set but dns is not`,
      at("search"),
      'add dns = ["…"]: without a nameserver line glibc asks 127.0.0.1 inside the namespace',
    );
    ok = false;
  }
  if (!ok) return undefined;
  const fieldSources: Record<string, SourcePos> = {};
  for (const k of ["dns", "search", "discovery"]) if (raw[k] !== undefined) fieldSources[k] = at(k);
  return { network, dns, search, discovery: raw.discovery !== false, source, fieldSources };
}

/** An address as resolv.conf should carry it (IPv6 compressed), or undefined when it is none. */
export function canonicalIp(s: string): string | undefined {
  if (s.includes("/") || s.includes("%")) return undefined;
  const v4 = parseIp4(s);
  if (v4 !== undefined) return formatIp4(v4);
  if (!s.includes(":")) return undefined;
  const v6 = parseIp6(s);
  return v6 === undefined ? undefined : formatIp6(v6);
}

/** Why S is not a DNS name (RFC 1035 lengths, RFC 1123 labels; underscores allowed as resolvers do), or undefined. */
export function domainProblem(s: string): string | undefined {
  const name = s.endsWith(".") ? s.slice(0, -1) : s;
  if (!name) return "it is empty";
  if (name.length > 253) return "longer than 253 characters";
  for (const label of name.split(".")) {
    if (!label) return "it has an empty label (two dots in a row)";
    if (label.length > 63) return `label "${label.slice(0, 20)}…" is longer than 63 characters`;
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(label))
      return `label "${label}" may hold only letters, digits, "-" and "_", and not start or end with "-"`;
  }
  return undefined;
}
