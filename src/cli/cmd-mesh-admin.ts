import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { BoltError, EXIT } from "../core/diagnostics.js";
import type { Diagnostic, SourcePos } from "../core/diagnostics.js";
import { formatCidr4, parseCidr4, parseIp4 } from "../core/ipv4.js";
import { renderDiagnostics } from "./render-text.js";
import { runAclTests } from "../../reconcilers/wireguard/acl.js";
import { checkAcls } from "../../reconcilers/wireguard/intent.js";
import type { MeshIntent, MeshNode } from "../../reconcilers/wireguard/intent.js";
import { parseDuration } from "../core/duration.js";
import { loadPolicyFile } from "../../reconcilers/wireguard/policy-file.js";
import { MeshStore, admittedNodes, checkNodeName } from "../../reconcilers/wireguard/store.js";
import { autoApproversOf, exitOf, routesOf } from "../../reconcilers/wireguard/store-view.js";
import { BundleFile, adminTlsFrom, certDays, nodeCredentials } from "./mesh-admin-tls.js";
import type { AdminTlsFlags } from "./mesh-admin-tls.js";
import type { MeshMeta, MeshSnapshot, NodeRecord } from "../../reconcilers/wireguard/store.js";
import type { GlobalOpts } from "./commands.js";

/**
 * The admin side of the mesh's etcd store: `bolt mesh init | enroll | approve | revoke |
 * expire | remove | list`, short-lived CLI writes (no bolt server). The store is named by
 * `--control-server etcd://…` and `--mesh` (or BOLT_CONTROL_SERVER / BOLT_MESH); with
 * `--ca --cert --key` over TLS as that certificate's etcd user (RBAC mode, mesh-admin-tls.ts).
 */
export interface MeshAdminOpts extends GlobalOpts, AdminTlsFlags {
  action: string;
  name?: string;
  controlServer?: string;
  mesh?: string;
  cidr?: string;
  /** init: seconds a node's status lease outlives it (liveness for `mesh list` and HA routes) */
  statusTtl?: number;
  tags?: string[];
  routes?: string[];
  exitNode?: boolean;
  autoApprove?: boolean;
  expires?: string;
  release?: boolean;
  /** approve: pin this WireGuard public key */
  publicKey?: string;
  /** enroll: write the bundle to this file (0600, never overwritten) instead of stdout */
  outFile?: string;
}

const list = (v: string[] | undefined) => (v ?? []).flatMap((x) => String(x).split(",")).filter(Boolean);

export async function cmdMeshAdmin(o: MeshAdminOpts): Promise<number> {
  const url = o.controlServer ?? process.env.BOLT_CONTROL_SERVER;
  if (!url) throw new BoltError(`mesh ${o.action}: give the store with --control-server etcd://HOST:PORT[,…] (or BOLT_CONTROL_SERVER)`);
  const mesh = o.mesh ?? process.env.BOLT_MESH ?? "default";
  const need = (): string => {
    if (!o.name) throw new BoltError(`mesh ${o.action}: name the node (bolt mesh ${o.action} NAME)`);
    return o.name;
  };
  const tls = adminTlsFrom(o);
  if (!tls && (o.caKey ?? process.env.BOLT_ETCD_CA_KEY) && o.action === "enroll")
    throw new BoltError("mesh enroll: --ca-key signs the node's TLS certificate: give the store's TLS credentials too (--ca, --cert, --key)");
  const store = MeshStore.open(url, mesh, undefined, tls);
  try {
    switch (o.action) {
      case "init": {
        const m = await store.init(o.cidr ?? "100.64.0.0/10", { statusTtl: o.statusTtl });
        // bolt never turns auth on by itself: that locks out every client without a user.
        if (tls && (await store.authEnabled()) === false)
          o.err(
            `warning: auth is not enabled on ${url}: the mesh's roles exist but nothing enforces them (as root: etcdctl user add root --no-password; etcdctl user grant-role root root; etcdctl auth enable)\n`,
          );
        o.out(o.json ? `${JSON.stringify(m, null, 2)}\n` : `Created mesh "${mesh}" (${m.cidr4}, mesh_id ${m.mesh_id}) on ${url}.\n`);
        return EXIT.OK;
      }
      case "enroll": {
        const expiresAt = o.expires ? new Date(Date.now() + parseDuration(o.expires, "--expires")).toISOString() : undefined;
        const name = need();
        checkNodeName(name);
        // Signed before anything is written: a wrong CA key fails with the store untouched.
        const creds = tls ? await nodeCredentials(o, name, certDays(expiresAt)) : undefined;
        const file = o.outFile ? new BundleFile(o.outFile) : undefined;
        let rec: NodeRecord;
        let meta: MeshMeta;
        try {
          rec = await store.enroll(name, { tags: list(o.tags), routes: list(o.routes), exitNode: o.exitNode, autoApprove: o.autoApprove, expiresAt });
          meta = (await store.meta())!;
        } catch (e) {
          file?.discard();
          throw e;
        }
        // The enrollment bundle (stdout for `> NAME.boltkey`, or --out): where the store is and
        // who this node is; with TLS also the CA, the node's certificate and its key.
        const bundle = {
          v: 1,
          control_server: url,
          mesh,
          mesh_id: meta.mesh_id,
          node: rec.name,
          mesh_ip4: rec.mesh_ip4,
          ...(creds ? { ca: tls!.ca, cert: creds.cert, key: creds.key } : {}),
        };
        const text = `${JSON.stringify(bundle, null, 2)}\n`;
        if (file) file.write(text);
        else o.out(text);
        o.err(
          `Enrolled "${rec.name}" as ${rec.mesh_ip4} (${rec.state}${rec.state === "pending" ? `; \`bolt mesh approve ${rec.name}\` admits it` : ""})${creds ? `, etcd user "${rec.name}" with a client certificate for ${certDays(expiresAt)} days` : ""}${file ? `; bundle written to ${file.path} (0600)` : ""}.\n`,
        );
        if (creds && !file) o.err("note: this bundle holds the node's TLS key: keep it like a private key (--out FILE writes it with mode 0600).\n");
        return EXIT.OK;
      }
      case "approve":
        return report(o, await store.approve(need(), { publicKey: o.publicKey, routes: list(o.routes), exitNode: o.exitNode }), "approved");
      case "revoke":
        return report(o, await store.revoke(need()), "revoked (its address stays reserved)");
      case "expire": {
        const at = o.expires ? new Date(Date.now() + parseDuration(o.expires, "--expires")).toISOString() : new Date().toISOString();
        return report(o, await store.expire(need(), at), `expires ${at}`);
      }
      case "remove":
        await store.remove(need(), !!o.release);
        o.out(`Removed "${o.name}"${o.release ? " and released its address" : " (its address stays reserved; --release frees it)"}.\n`);
        return EXIT.OK;
      case "list": {
        const snap = await store.snapshot();
        const nodes = listed(snap);
        if (o.json) {
          o.out(
            `${JSON.stringify({ format_version: "1.0", mesh, mesh_id: snap.meta.mesh_id, revision: snap.revision, cidr4: snap.meta.cidr4, nodes: nodes.map(({ view: _view, ...n }) => n) }, null, 2)}\n`,
          );
          return EXIT.OK;
        }
        if (!snap.nodes.length) o.out(`Mesh "${mesh}" (${snap.meta.cidr4}) has no nodes yet.\n`);
        for (const n of nodes) o.out(`${listLine(n)}\n`);
        return EXIT.OK;
      }
      default:
        throw new BoltError(`mesh ${o.action}: unknown action`);
    }
  } finally {
    store.close();
  }
}

/**
 * A key as `mesh list` shows it: the first 8 characters of its base64 (48 bits), the prefix
 * `wg show` and `bolt mesh status` print in full, so an admin can compare it before approving.
 */
export const keyFingerprint = (key: string) => key.slice(0, 8);

type Listed = ReturnType<typeof listed>[number];

/**
 * Every node as `mesh list` reports it (MULTIHOST.md §2.4, §2.5): its identity record, whether
 * its status lease lives at this revision (online, with the endpoints it publishes), what it
 * asks for (its request: key, routes, exit offer; null before it asks) and what of that takes
 * effect — the routes and exit offer approved by the admin or the policy's autoApprovers, for a
 * node the hosts configure as a peer (approved, not expired, with a key); nothing otherwise.
 */
function listed(snap: MeshSnapshot) {
  const auto = autoApproversOf(snap);
  const admitted = new Set(admittedNodes(snap, "").map((a) => a.node.name));
  return snap.nodes.map((n) => {
    const req = snap.requests[n.name];
    const status = snap.status?.[n.name];
    const approvedRoutes = routesOf(snap, n, auto).map(formatCidr4);
    const exitApproved = exitOf(snap, n, auto);
    return {
      ...n,
      online: !!status,
      endpoints: status?.endpoints ?? [],
      requested: req ? { public_key: req.public_key, key_fingerprint: keyFingerprint(req.public_key), routes: req.routes, exit_node: req.exit_node } : null,
      effective: admitted.has(n.name) ? { routes: approvedRoutes, exit_node: exitApproved } : { routes: [], exit_node: false },
      // for the text line, not the JSON: which of what it asks for is approved (whatever its state)
      view: { routes: approvedRoutes, exit: exitApproved },
    };
  });
}

/**
 * One node, `tailscale status`-like: name, state, address, tags, routes, exit offer, expiry,
 * liveness and (pending, or asking with another key than the pinned one) the requested key's
 * fingerprint. Routes it asks for say "(approved)" or "(awaiting approval)"; before it asks
 * (no request yet) the routes and exit it may announce are shown as they were allowed.
 */
function listLine(n: Listed): string {
  const tags = n.tags.length ? n.tags.map((t) => `tag:${t}`).join(",") : "-";
  const req = n.requested;
  const approval = (ok: boolean) => (ok ? "(approved)" : "(awaiting approval)");
  const normal = (r: string) => {
    const c = parseCidr4(r);
    return c && !c.hostBits ? formatCidr4(c) : r;
  };
  const routes = req ? req.routes.map((r) => `${r} ${approval(n.view.routes.includes(normal(r)))}`).join(", ") || "-" : n.routes_allowed.join(",") || "-";
  const exit = req ? (req.exit_node ? `  exit-node ${approval(n.view.exit)}` : "") : n.exit_node_allowed ? "  exit-node" : "";
  const live = n.online ? `online${n.endpoints.length ? ` ${n.endpoints.join(",")}` : ""}` : "offline";
  const key =
    n.state === "pending"
      ? `  key=${req ? req.key_fingerprint : "none (no request yet)"}`
      : req && n.public_key && req.public_key !== n.public_key && n.state === "approved"
        ? `  key=${req.key_fingerprint} (requested; pinned ${keyFingerprint(n.public_key)})`
        : "";
  return `${n.name.padEnd(20)} ${n.state.padEnd(9)} ${n.mesh_ip4.padEnd(15)} ${tags}  routes ${routes}${exit}${n.expires_at ? `  expires ${n.expires_at}` : ""}  ${live}${key}`;
}

function report(o: MeshAdminOpts, rec: NodeRecord, what: string): number {
  o.out(o.json ? `${JSON.stringify(rec, null, 2)}\n` : `"${rec.name}" (${rec.mesh_ip4}) ${what}.\n`);
  return EXIT.OK;
}

/**
 * `bolt mesh policy set FILE | get`: the one policy every host applies. `set` loads the
 * Tailscale policy file (HuJSON, errors at file:line:col), checks every name against the
 * mesh's nodes, runs its tests against them offline — a failing test or an error writes
 * nothing — then writes it with compare-and-swap.
 */
export async function cmdMeshPolicy(o: MeshAdminOpts & { policyFile?: string }): Promise<number> {
  const url = o.controlServer ?? process.env.BOLT_CONTROL_SERVER;
  if (!url) throw new BoltError("mesh policy: give the store with --control-server etcd://HOST:PORT[,…] (or BOLT_CONTROL_SERVER)");
  const store = MeshStore.open(url, o.mesh ?? process.env.BOLT_MESH ?? "default", undefined, adminTlsFrom(o));
  try {
    const current = await store.policy();
    if (o.name === "get") {
      o.out(current.text ?? "// no policy set yet: every node reaches every node (no filter)\n");
      return EXIT.OK;
    }
    if (o.name !== "set" || !o.policyFile) throw new BoltError("mesh policy: `bolt mesh policy set -f FILE` or `bolt mesh policy get`");
    const full = resolve(o.policyFile);
    const diags: Diagnostic[] = [];
    const err = (message: string, source: SourcePos) => diags.push({ severity: "error", message, source });
    const policy = loadPolicyFile(full, full, { file: full, line: 1, col: 1 }, err, diags);
    const snap = await store.snapshot();
    const nodes: MeshNode[] = snap.nodes.filter((n) => n.state !== "revoked").map((n) => ({ hostname: n.name, address: parseIp4(n.mesh_ip4)!, tags: n.tags }));
    if (policy) {
      const aliases = { groups: policy.groups, hosts: policy.hosts };
      checkAcls(policy.acls, policy.tests, nodes, aliases, policy.tagOwners, err);
      if (!diags.some((d) => d.severity === "error") && nodes.length) {
        const mesh = { self: nodes[0]!, peers: nodes.slice(1), acls: policy.acls, aclTests: policy.tests, aliases } as unknown as MeshIntent;
        for (const f of runAclTests(mesh, mesh.self))
          err(
            `test: ${f.test.src} → ${f.target} (${f.test.proto}) is ${f.got === "accept" ? "accepted" : "denied"}, the test expects ${f.expected}`,
            f.test.source,
          );
      }
    }
    for (const d of diags) o.err(renderDiagnostics([d]));
    if (diags.some((d) => d.severity === "error")) return EXIT.ERROR;
    const text = readFileSync(full, "utf8");
    if (current.text === text) {
      o.out("The mesh already has this policy; nothing written.\n");
      return EXIT.OK;
    }
    await store.setPolicy(text, current.modRevision);
    o.out(`Policy set: ${policy!.acls.length} rule(s), ${policy!.tests.length} test(s) passing against ${nodes.length} node(s).\n`);
    return EXIT.OK;
  } finally {
    store.close();
  }
}
