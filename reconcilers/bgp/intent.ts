import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { SourcePos } from "../../src/core/diagnostics.js";
import { fragment, fragmentKey } from "../../src/core/intent.js";
import { formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../../src/core/ipv4.js";
import { formatCidr6, formatIp6, parseCidr6, parseIp6 } from "../../src/core/ipv6.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { pointer } from "../../src/config/positions.js";
import { NETWORKS } from "../network/intent.js";
import { WIREGUARD } from "../wireguard/intent.js";

/**
 * `[routing.bgp]`: the seed's BGPConfig (router_id, local_asn, networks, neighbors with ip,
 * remote_asn, password_file), plus what bolt needs to drive its own BIRD: the switch that
 * announces bolt's own networks and the mesh's subnets, and per-neighbor import/export filters.
 * Passwords come only from files only their owner can read; the intent keeps the file's path
 * and a digest of its content (intents are stored in revisions and saved plans), never the
 * password itself: `prepare` reads it when it renders the file BIRD loads.
 */
export interface BgpPrefix {
  /** canonical CIDR */
  prefix: string;
  family: 4 | 6;
  source: SourcePos;
}

/** What a session takes in or sends out: everything, nothing, or prefixes matching BIRD prefix patterns. */
export type BgpFilter = { all: true } | { none: true } | { prefixes: string[]; source: SourcePos };

export interface BgpNeighbor {
  /** canonical address */
  address: string;
  family: 4 | 6;
  asn: number;
  /** BIRD protocol name, derived from the address (stable across reordering: no session restarts) */
  proto: string;
  passwordFile?: string;
  /** sha256 of the password (the rendered config changes when the file's content does) */
  passwordDigest?: string;
  import: BgpFilter;
  export: BgpFilter;
  source: SourcePos;
}

export interface BgpIntent {
  routerId: string;
  asn: number;
  /** prefixes announced: the static list, then (switch on) bolt's networks and the mesh's subnets */
  announce: BgpPrefix[];
  neighbors: BgpNeighbor[];
  source: SourcePos;
}

export const BGP = fragmentKey<BgpIntent | undefined>("bgp", () => undefined);

type Obj = Record<string, unknown>;

/** Private and documentation ASNs are fine; 0 and AS_TRANS (23456) can never be a session's AS. */
function asnProblem(n: number): string | undefined {
  if (!Number.isInteger(n) || n < 1 || n > 4294967295) return `AS number ${n} is out of range (1-4294967295)`;
  if (n === 23456) return "AS 23456 is AS_TRANS (RFC 6793), a placeholder for 4-byte ASNs: it cannot be a real AS";
  return undefined;
}

/** A BIRD prefix pattern: CIDR, optionally `+`, `-` or `{low,high}` (checked for meaning by `bird -p`). */
const PATTERN = /^([0-9A-Fa-f:.]+\/\d{1,3})([+-]|\{\d{1,3},\d{1,3}\})?$/;

export const bgpIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): BgpIntent | undefined {
    let out: BgpIntent | undefined;
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      const routing = (f.data.routing ?? {}) as Obj;
      const bgp = routing.bgp as Obj | undefined;
      if (!bgp) continue;
      const at = (...p: (string | number)[]) => f.positions.value(pointer(["routing", "bgp", ...p]));
      const keyAt = (...p: (string | number)[]) => f.positions.key(pointer(["routing", "bgp", ...p]));
      // The seed's switch: false keeps the table in the file without running BGP.
      if (routing.enable_bgp === false) continue;
      if (out) {
        ctx.err("[routing.bgp] is given in more than one file: bolt runs one BGP speaker per target", keyAt());
        continue;
      }
      const routerId = String(bgp.router_id ?? "");
      const rid = parseIp4(routerId);
      if (rid === undefined) ctx.err(`router_id "${routerId}" is not an IPv4 address (BGP router IDs are 32-bit, written a.b.c.d)`, at("router_id"));
      const asn = Number(bgp.local_asn);
      const asnBad = asnProblem(asn);
      if (asnBad) ctx.err(`local_asn: ${asnBad}`, at("local_asn"));

      const announce: BgpPrefix[] = [];
      ((bgp.networks ?? []) as unknown[]).forEach((p, i) => {
        const c = canonicalPrefix(String(p));
        if (typeof c === "string") ctx.err(`networks[${i}] "${String(p)}": ${c}`, at("networks", i));
        else announce.push({ ...c, source: at("networks", i) });
      });
      if (bgp.announce_bolt_networks === true) {
        const src = at("announce_bolt_networks");
        for (const n of fragment(ctx.intent, NETWORKS)) {
          announce.push({ prefix: formatCidr4(n.subnet), family: 4, source: src });
          if (n.v6) announce.push({ prefix: formatCidr6(n.v6.subnet), family: 6, source: src });
        }
        const mesh = fragment(ctx.intent, WIREGUARD).mesh;
        for (const c of mesh?.advertise ?? []) announce.push({ prefix: formatCidr4(c), family: 4, source: src });
        for (const c of mesh?.advertise6 ?? []) announce.push({ prefix: c, family: 6, source: src });
      }
      const seen = new Set<string>();
      const uniqueAnnounce = announce.filter((a) => !seen.has(a.prefix) && seen.add(a.prefix));

      const neighbors: BgpNeighbor[] = [];
      ((bgp.neighbors ?? []) as Obj[]).forEach((n, i) => {
        const nAt = (...p: (string | number)[]) => at("neighbors", i, ...p);
        const nKey = (k: string) => keyAt("neighbors", i, k);
        const raw = String(n.ip ?? "");
        const v4 = parseIp4(raw);
        const v6 = v4 === undefined ? parseIp6(raw) : undefined;
        if (v4 === undefined && v6 === undefined) {
          ctx.err(`neighbors[${i}].ip "${raw}" is not an IP address`, nAt("ip"));
          return;
        }
        const address = v4 !== undefined ? formatIp4(v4) : formatIp6(v6!);
        const family = v4 !== undefined ? 4 : 6;
        const remote = Number(n.remote_asn);
        const bad = asnProblem(remote);
        if (bad) ctx.err(`neighbors[${i}].remote_asn: ${bad}`, nAt("remote_asn"));
        for (const k of ["password", "authentication"])
          if (n[k] !== undefined)
            ctx.err(
              `neighbors[${i}].${k}: a session password is never written in the config (it would be in every copy of the file): put it in a file only its owner can read and name it in password_file`,
              nKey(k),
              `printf '%s' 'SECRET' > /etc/bolt/bgp-${address.replace(/:/g, "_")}.pass && chmod 600 /etc/bolt/bgp-${address.replace(/:/g, "_")}.pass`,
            );
        let passwordFile: string | undefined;
        let passwordDigest: string | undefined;
        if (n.password_file !== undefined) {
          const full = resolve(dirname(f.path), String(n.password_file));
          const r = readPasswordFile(full);
          if (r.ok) {
            passwordFile = full;
            passwordDigest = r.digest;
          } else if (r.missing && ctx.opts.offline) {
            // Not on the target host: the file is checked where the config is applied.
            ctx.diagnostics.push({ severity: "warning", message: r.message, source: nAt("password_file") });
            passwordFile = full;
            passwordDigest = "unknown";
          } else ctx.err(r.message, nAt("password_file"));
        }
        const filter = (k: "import" | "export"): BgpFilter => {
          const v = n[k];
          if (v === undefined || v === "all") return { all: true };
          if (v === "none") return { none: true };
          const prefixes: string[] = [];
          (v as unknown[]).forEach((p, j) => {
            const m = PATTERN.exec(String(p));
            const c = m ? canonicalPrefix(m[1]!) : "is not a prefix pattern";
            if (typeof c === "string") ctx.err(`neighbors[${i}].${k}[${j}] "${String(p)}": ${c} (CIDR, optionally followed by +, - or {low,high})`, nAt(k, j));
            else if (c.family !== family)
              ctx.err(`neighbors[${i}].${k}[${j}] "${String(p)}" is IPv${c.family}, but the session with ${address} carries IPv${family} routes`, nAt(k, j));
            else prefixes.push(`${c.prefix}${m![2] ?? ""}`);
          });
          return { prefixes, source: nAt(k) };
        };
        neighbors.push({
          address,
          family,
          asn: remote,
          proto: `bolt_${address.replace(/[.:]/g, "_")}`,
          ...(passwordFile ? { passwordFile, passwordDigest } : {}),
          import: filter("import"),
          export: filter("export"),
          source: at("neighbors", i),
        });
      });
      const dup = new Map<string, BgpNeighbor>();
      for (const nb of neighbors) {
        const first = dup.get(nb.address);
        if (first) ctx.err(`neighbor ${nb.address} is listed twice (first at line ${first.source.line})`, nb.source);
        dup.set(nb.address, nb);
      }
      out = { routerId: rid === undefined ? routerId : formatIp4(rid), asn, announce: uniqueAnnounce, neighbors, source: keyAt() };
    }
    return out;
  },
  describe: (f) => {
    const b = f as BgpIntent | undefined;
    return b ? `BGP AS ${b.asn} with ${b.neighbors.length} neighbor(s), ${b.announce.length} prefix(es) announced` : "no BGP";
  },
};

/** A prefix in canonical form, or what is wrong with it (host bits set: BIRD would refuse it). */
export function canonicalPrefix(s: string): { prefix: string; family: 4 | 6 } | string {
  if (s.includes(".") && !s.includes(":")) {
    const c = parseCidr4(s);
    if (!c) return "is not an IPv4 or IPv6 prefix";
    if (c.hostBits) return `has host bits set (did you mean ${formatCidr4(c)}?)`;
    return { prefix: formatCidr4(c), family: 4 };
  }
  if (!s.includes("/")) return "is not an IPv4 or IPv6 prefix (no /length)";
  const c = parseCidr6(s);
  if (!c) return "is not an IPv4 or IPv6 prefix";
  if (c.hostBits) return `has host bits set (did you mean ${formatCidr6(c)}?)`;
  return { prefix: formatCidr6(c), family: 6 };
}

export type PasswordFileResult = { ok: true; digest: string } | { ok: false; message: string; missing?: boolean };

/**
 * A session password file: must exist, be a regular file without group/other access (like
 * WireGuard key files), and hold one line BIRD can quote (no `"`, `\` or control characters,
 * at most 80 bytes: the TCP-MD5 key limit).
 */
export function readPasswordFile(path: string): PasswordFileResult {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    return { ok: false, missing, message: `BGP password file ${path}: ${missing ? "does not exist" : (e as Error).message}` };
  }
  if (!st.isFile()) return { ok: false, message: `BGP password file ${path} is not a regular file` };
  if (st.mode & 0o077)
    return {
      ok: false,
      message: `BGP password file ${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}: group and others must have no access (chmod 600 ${path})`,
    };
  let text: string;
  try {
    text = readFileSync(path, "utf8").replace(/\r?\n$/, "");
  } catch (e) {
    return { ok: false, message: `BGP password file ${path}: ${(e as Error).message}` };
  }
  const problem = passwordProblem(text);
  if (problem) return { ok: false, message: `BGP password file ${path}: ${problem}` };
  return { ok: true, digest: passwordDigest(text) };
}

export function passwordProblem(pw: string): string | undefined {
  if (!pw.length) return "is empty";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/["\\\x00-\x1f\x7f]/.test(pw)) return "holds a quote, a backslash, a control character or more than one line (BIRD quotes the password in its config)";
  if (Buffer.byteLength(pw) > 80) return "is longer than 80 bytes (the TCP-MD5 key limit)";
  return undefined;
}

export const passwordDigest = (pw: string) => createHash("sha256").update(pw).digest("hex");
