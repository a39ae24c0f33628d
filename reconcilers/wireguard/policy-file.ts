import { dirname, resolve } from "node:path";
import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { parseCidr6 } from "../../src/core/ipv6.js";
import { readConfigText } from "../../src/config/load.js";
import { parseHujson } from "../../src/config/hujson.js";
import { pointer } from "../../src/config/positions.js";
import type { AclIntent, AclTestIntent } from "./intent.js";

/**
 * `policy_file = "acls.hujson"`: a Tailscale policy file (HuJSON or JSON) as the mesh's ACLs.
 * Read: `acls` (action, src, dst, proto; the legacy `users`/`ports` spellings too), `groups`,
 * `tagOwners` (the tags that exist), `hosts` (aliases for addresses and CIDRs), `tests`.
 * `nodeAttrs` entries whose attr is a tag give that tag to their targets (the GhostWire seed's
 * use); everything else in them, and `ssh`, `grants`, `postures`, `derpMap` and other
 * sections, are accepted with a warning saying bolt does not enforce them. `autoApprovers`
 * is read from a mesh store's policy (it approves the routes and exit offers nodes announce
 * there); in a file for a static mesh it is a warning, as there is nothing to approve.
 */
export interface Policy {
  acls: AclIntent[];
  tests: AclTestIntent[];
  /** group:NAME → its members (users, or other groups' names) */
  groups: Record<string, string[]>;
  /** alias → address or CIDR */
  hosts: Record<string, string>;
  /** tags tagOwners declares (without "tag:") */
  tagOwners: string[];
  /** hostname or address → tags from nodeAttrs */
  nodeTags: Record<string, string[]>;
  /** Tailscale's autoApprovers: a route announced inside `prefix` by a node one of `by` names is approved */
  autoApprovers: { routes: { prefix: Cidr4; by: string[] }[]; exitNode: string[] };
}

type Obj = Record<string, unknown>;
const NOT_ENFORCED: Record<string, string> = {
  ssh: "Tailscale SSH rules: bolt runs no SSH server",
  autoApprovers: "route and exit-node auto-approval needs a coordination server (control_server = etcd://…)",
  grants: "grants (the newer ACL syntax) are not compiled; write them as acls",
  postures: "device posture checks have no kernel equivalent",
  derpMap: "no DERP relays in the reconciler",
  disableIPv4: "every mesh node keeps its IPv4 address (IPv6 is switched with [features] ipv6)",
  randomizeClientPort: "WireGuard's listen port comes from listen_port",
  OneCGNATRoute: "routes come from the peers' addresses and routes",
  ipsets: "ipsets are not compiled; use hosts aliases",
};

type Err = (m: string, s: SourcePos) => void;

export function loadPolicyFile(configFile: string, path: string, at: SourcePos, err: Err, diags: Diagnostic[]): Policy | undefined {
  const full = resolve(dirname(configFile), path);
  let text: string;
  try {
    text = readConfigText(full);
  } catch (e) {
    const d = (e as { diagnostics?: Diagnostic[] }).diagnostics?.[0];
    err(d?.message ?? `policy_file: ${(e as Error).message}`, d?.source ?? at);
    return undefined;
  }
  return parsePolicy(full, text, at, err, diags);
}

/**
 * A policy's text, named `origin` in every position (a file path, or `etcd:policy@REV` for
 * the mesh store's). `fromStore`: auto-approvers apply (there are announcements to approve).
 */
export function parsePolicy(origin: string, text: string, at: SourcePos, err: Err, diags: Diagnostic[], fromStore = false): Policy | undefined {
  let parsed: ReturnType<typeof parseHujson>;
  try {
    parsed = parseHujson(origin, text);
  } catch (e) {
    const d = (e as { diagnostics?: Diagnostic[] }).diagnostics?.[0];
    if (d) err(d.message, d.source ?? at);
    else err(`policy_file: ${(e as Error).message}`, at);
    return undefined;
  }
  const { data, positions } = parsed;
  const pos = (...k: (string | number)[]) => positions.value(pointer(k));
  const keyPos = (...k: (string | number)[]) => positions.key(pointer(k));
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    err("a Tailscale policy file is a JSON object at the top level", pos());
    return undefined;
  }
  const top = data as Obj;
  const policy: Policy = { acls: [], tests: [], groups: {}, hosts: {}, tagOwners: [], nodeTags: {}, autoApprovers: { routes: [], exitNode: [] } };
  const strings = (v: unknown, where: (string | number)[], what: string): string[] => {
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      err(`${what} must be a list of strings`, pos(...where));
      return [];
    }
    return v as string[];
  };
  const objects = (v: unknown, where: string): Obj[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "object" || x === null || Array.isArray(x))) {
      err(`"${where}" must be a list of objects`, pos(where));
      return [];
    }
    return v as Obj[];
  };
  const known = new Set(["acls", "groups", "tagOwners", "hosts", "tests", "nodeAttrs", ...(fromStore ? ["autoApprovers"] : [])]);
  for (const k of Object.keys(top)) {
    if (known.has(k)) continue;
    diags.push({
      severity: "warning",
      message: `accepted, not enforced: policy "${k}" — ${NOT_ENFORCED[k] ?? "not a section bolt reads (acls, groups, tagOwners, hosts, tests, nodeAttrs)"}`,
      source: keyPos(k),
    });
  }
  objects(top.acls, "acls").forEach((raw, i) => {
    const action = raw.action;
    if (action !== "accept" && action !== "drop" && action !== "deny")
      return err(`acls[${i}].action must be "accept" (Tailscale) or "drop"`, raw.action === undefined ? pos("acls", i) : pos("acls", i, "action"));
    const srcKey = raw.src !== undefined ? "src" : "users";
    const dstKey = raw.dst !== undefined ? "dst" : "ports";
    const proto = raw.proto === undefined ? undefined : String(raw.proto);
    policy.acls.push({
      action: action === "accept" ? "accept" : "deny",
      src: strings(raw[srcKey], ["acls", i, srcKey], `acls[${i}].src`),
      dst: strings(raw[dstKey], ["acls", i, dstKey], `acls[${i}].dst`),
      proto,
      source: pos("acls", i),
      srcAt: (j) => pos("acls", i, srcKey, j),
      dstAt: (j) => pos("acls", i, dstKey, j),
      protoAt: pos("acls", i, "proto"),
    });
  });
  objects(top.tests, "tests").forEach((raw, i) => {
    if (typeof raw.src !== "string") return err(`tests[${i}].src must be a string`, pos("tests", i));
    policy.tests.push({
      src: raw.src,
      proto: raw.proto === undefined ? "tcp" : String(raw.proto),
      accept: raw.accept === undefined ? [] : strings(raw.accept, ["tests", i, "accept"], `tests[${i}].accept`),
      deny: raw.deny === undefined ? [] : strings(raw.deny, ["tests", i, "deny"], `tests[${i}].deny`),
      source: pos("tests", i),
      srcAt: pos("tests", i, "src"),
      targetAt: (key, j) => pos("tests", i, key, j),
    });
  });
  // Store nodes are known by their tags (an admin-set identity), so only tag: approvers can match.
  const approvers = (v: unknown, where: (string | number)[]): string[] =>
    strings(v, where, where.join(".")).filter((a, j) => {
      if (a.startsWith("tag:")) return true;
      err(`${where.join(".")}: "${a}": a mesh store approves by tag only (tag:NAME); nodes there have no user`, pos(...where, j));
      return false;
    });
  const map = (name: string): Obj => {
    const v = top[name];
    if (v === undefined) return {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      err(`"${name}" must be an object`, pos(name));
      return {};
    }
    return v as Obj;
  };
  for (const [g, members] of Object.entries(map("groups"))) {
    if (!g.startsWith("group:")) err(`groups: "${g}" must be named group:NAME`, keyPos("groups", g));
    else policy.groups[g] = strings(members, ["groups", g], `groups["${g}"]`);
  }
  for (const [t, owners] of Object.entries(map("tagOwners"))) {
    if (!t.startsWith("tag:")) err(`tagOwners: "${t}" must be named tag:NAME`, keyPos("tagOwners", t));
    else {
      strings(owners, ["tagOwners", t], `tagOwners["${t}"]`);
      policy.tagOwners.push(t.slice(4));
    }
  }
  for (const [h, v] of Object.entries(map("hosts"))) {
    if (typeof v !== "string") {
      err(`hosts["${h}"] must be an address or CIDR`, pos("hosts", h));
      continue;
    }
    if (v.includes(":")) {
      const c6 = parseCidr6(v);
      if (!c6 || c6.hostBits) err(`hosts["${h}"] = "${v}" is not an IPv6 address or CIDR without host bits`, pos("hosts", h));
      else policy.hosts[h] = v;
      continue;
    }
    const c = parseCidr4(v.includes("/") ? v : `${v}/32`);
    if (!c || c.hostBits) err(`hosts["${h}"] = "${v}" is not an IPv4 address or CIDR without host bits`, pos("hosts", h));
    else policy.hosts[h] = v;
  }
  if (fromStore) {
    const aa = map("autoApprovers");
    for (const k of Object.keys(aa))
      if (k !== "routes" && k !== "exitNode") err(`autoApprovers: "${k}" is not a section (routes, exitNode)`, keyPos("autoApprovers", k));
    const routes = aa.routes === undefined ? {} : aa.routes;
    if (typeof routes !== "object" || routes === null || Array.isArray(routes)) err("autoApprovers.routes must be an object", pos("autoApprovers", "routes"));
    else
      for (const [r, by] of Object.entries(routes as Obj)) {
        const c = parseCidr4(r);
        if (!c || c.hostBits) err(`autoApprovers.routes: "${r}" is not an IPv4 CIDR without host bits`, keyPos("autoApprovers", "routes", r));
        else policy.autoApprovers.routes.push({ prefix: c, by: approvers(by, ["autoApprovers", "routes", r]) });
      }
    if (aa.exitNode !== undefined) policy.autoApprovers.exitNode = approvers(aa.exitNode, ["autoApprovers", "exitNode"]);
  }
  objects(top.nodeAttrs, "nodeAttrs").forEach((raw, i) => {
    const targets = strings(raw.target, ["nodeAttrs", i, "target"], `nodeAttrs[${i}].target`);
    const attrs = strings(raw.attr, ["nodeAttrs", i, "attr"], `nodeAttrs[${i}].attr`);
    const tags = attrs.filter((a) => a.startsWith("tag:")).map((a) => a.slice(4));
    for (const t of targets) policy.nodeTags[t] = [...(policy.nodeTags[t] ?? []), ...tags];
    const other = attrs.filter((a) => !a.startsWith("tag:"));
    if (other.length)
      diags.push({
        severity: "warning",
        message: `accepted, not enforced: nodeAttrs attributes ${other.map((a) => `"${a}"`).join(", ")} (node capabilities have no kernel meaning bolt applies; tag: attributes are given to the targets)`,
        source: pos("nodeAttrs", i),
      });
  });
  return policy;
}
