import { readFileSync } from "node:fs";
import { formatCidr4 } from "../../src/core/ipv4.js";
import { decodeAlias } from "../../src/core/ownership.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, PlanContext, Reconciler, Resource } from "../../src/core/resource.js";
import type { IpLink } from "../../src/core/live-reader.js";
import type { Ns } from "../../src/exec/runner.js";
import { pskDigest } from "../wireguard/dump.js";
import { wgDump } from "../wireguard/index.js";
import { WIREGUARD } from "../wireguard/intent.js";

/**
 * WireGuard peers, one resource each, changed with `wg set IF peer …` clauses that the apply
 * engine batches into one `wg set` per interface. Only the peers that differ are touched, so
 * the sessions of the others are never reset (what `wg syncconf` promises).
 */
export const wgPeerReconciler: Reconciler = {
  kind: "wg-peer",
  phases: { peer: { after: ["wireguard.conf"] } },
  uses: ["wireguard"],
  replaceOn: [],
  // A peer without a configured endpoint dials in: WireGuard learns (and follows) its address
  // from authenticated packets, so whatever the kernel has then is right, never drift.
  kernelChosen: ["endpoint"],

  desired(ctx) {
    const resources: Resource[] = [];
    for (const w of fragment(ctx.intent, WIREGUARD).interfaces) {
      for (const p of w.peers) {
        const id = `wg-peer:${w.ifname}/${p.publicKey}`;
        resources.push({
          kind: "wg-peer",
          name: `${w.ifname}/${p.publicKey}`,
          id,
          keys: [],
          spec: {
            // Sorted as parseWgDump sorts what `wg show dump` prints (both families, inet_ntop text).
            allowed_ips: [...p.allowedIps.map(formatCidr4), ...(p.allowedIps6 ?? [])].sort().join(","),
            endpoint: endpointOf(p.endpoint, ctx.live.get(id), ctx.leases.get(endpointLeaseKey(w.ifname, p.publicKey))),
            persistent_keepalive: p.keepalive ? String(p.keepalive) : "",
            preshared_key: p.pskFile ? pskOf(p.pskFile) : "",
          },
          data: { ifname: w.ifname, publicKey: p.publicKey, pskFile: p.pskFile, hostname: p.hostname, configuredEndpoint: p.endpoint },
          deps: [`wireguard:${w.ifname}`],
          owned: true,
          source: p.source,
          sensitive: ["preshared_key"],
        });
      }
    }
    return { resources, diagnostics: [] };
  },

  async read(io) {
    const links = await io.ipJson<IpLink[]>(["-d", "link", "show"]);
    const resources: Resource[] = [];
    for (const l of links.filter((x) => decodeAlias(x.ifalias)?.wg)) {
      const dump = await wgDump(io, l.ifname);
      for (const p of dump?.peers ?? []) {
        resources.push({
          kind: "wg-peer",
          name: `${l.ifname}/${p.publicKey}`,
          id: `wg-peer:${l.ifname}/${p.publicKey}`,
          keys: [],
          spec: {
            allowed_ips: p.allowedIps.join(","),
            endpoint: p.endpoint,
            persistent_keepalive: p.keepalive ? String(p.keepalive) : "",
            preshared_key: p.psk,
          },
          data: { ifname: l.ifname, publicKey: p.publicKey, latestHandshake: p.latestHandshake, rx: p.rx, tx: p.tx },
          deps: [`wireguard:${l.ifname}`],
          owned: true,
          sensitive: ["preshared_key"],
        });
      }
    }
    return { resources, foreign: new Map() };
  },

  render(change, ctx) {
    const ns = ctx.target;
    const r = change.after ?? change.before!;
    const ifname = String(r.data!.ifname);
    const pub = String(r.data!.publicKey);
    if (change.action === "delete")
      return [
        {
          ...clause(ns, ifname, pub, ["remove"]),
          phase: "peer",
          // A peer whose key changed (its allowed IPs go to a new peer): removed in the same
          // `wg set` that adds the new key, not in the destroy phase before it.
          ...(replacedByNewKey(change.before!, ctx) ? { destroy: false } : {}),
          undo: [
            clause(ns, ifname, pub, [
              ...settings(change.before!, ["allowed_ips", "endpoint", "persistent_keepalive"]),
              ...pskUndo(change.before!, ctx.leases, ifname, pub),
            ]),
          ],
        },
      ];
    if (change.action === "create")
      return [
        {
          // A new peer has no preshared key: only a configured one is set (no `preshared-key /dev/null`).
          ...clause(
            ns,
            ifname,
            pub,
            settings(change.after!, ["allowed_ips", "endpoint", "persistent_keepalive", ...(r.data?.pskFile ? ["preshared_key"] : [])]),
          ),
          phase: "peer",
          undo: [clause(ns, ifname, pub, ["remove"])],
        },
      ];
    const fields = change.changed;
    // `wg set` cannot clear an endpoint: undoing one given to a peer that dialled in means
    // removing the peer and adding it back as it was (its session restarts; its address is kept).
    if (fields.includes("endpoint") && !change.before!.spec.endpoint)
      return [
        {
          ...clause(ns, ifname, pub, settings(change.after!, fields)),
          phase: "peer",
          undo: [
            clause(ns, ifname, pub, ["remove"]),
            clause(ns, ifname, pub, [
              ...settings(change.before!, ["allowed_ips", "persistent_keepalive"]),
              ...pskUndo(change.before!, ctx.leases, ifname, pub),
            ]),
          ],
        },
      ];
    const undo = settings(
      change.before!,
      fields.filter((f) => f !== "preshared_key"),
    );
    const oldPsk = pskUndo(change.before!, ctx.leases, ifname, pub);
    if (fields.includes("preshared_key") && oldPsk.length && oldPsk[1] !== r.data?.pskFile) undo.push(...oldPsk);
    // A peer that had no preshared key gets it cleared again (wg's way: the all-zero key from /dev/null).
    else if (fields.includes("preshared_key") && !change.before!.spec.preshared_key) undo.push("preshared-key", "/dev/null");
    return [{ ...clause(ns, ifname, pub, settings(change.after!, fields)), phase: "peer", undo: undo.length ? [clause(ns, ifname, pub, undo)] : [] }];
  },

  // The preshared key file of each peer is remembered (its path, never its content): the live
  // peer only shows a digest, and undoing a peer's removal must put its key back. A configured
  // endpoint is remembered with the time it was set, so a later roam can be told from drift.
  commit(change, store, target) {
    const r = change.after ?? change.before!;
    const ifname = String(r.data!.ifname);
    const pub = String(r.data!.publicKey);
    const key = pskLeaseKey(ifname, pub);
    if (change.action !== "delete" && change.after?.data?.pskFile) store.setLease(target, "wg-psk", key, String(change.after.data.pskFile));
    else store.releaseLease(target, key);
    const configured = change.action !== "delete" ? change.after?.data?.configuredEndpoint : undefined;
    const epKey = endpointLeaseKey(ifname, pub);
    // Only an endpoint this apply wrote restarts the clock (a kept roam is not written).
    if (typeof configured === "string" && configured) {
      if (change.changed.includes("endpoint") && change.after!.spec.endpoint === configured)
        store.setLease(target, "wg-endpoint", epKey, `${configured}@${Math.floor(Date.now() / 1000)}`);
    } else store.releaseLease(target, epKey);
  },
};

/**
 * The live peer's interface stays and a peer this plan adds to it (a key not live) takes over
 * one of its allowed IPs: the same node under a new key (a rotation, MULTIHOST.md §2.4).
 */
function replacedByNewKey(before: Resource, ctx: PlanContext): boolean {
  const ifname = String(before.data!.ifname);
  const had = new Set((before.spec.allowed_ips ?? "").split(",").filter(Boolean));
  const w = fragment(ctx.intent, WIREGUARD).interfaces.find((x) => x.ifname === ifname);
  return !!w?.peers.some(
    (p) => !ctx.live.has(`wg-peer:${ifname}/${p.publicKey}`) && [...p.allowedIps.map(formatCidr4), ...(p.allowedIps6 ?? [])].some((a) => had.has(a)),
  );
}

const pskLeaseKey = (ifname: string, pub: string) => `wg-psk:${ifname}/${pub}`;
const endpointLeaseKey = (ifname: string, pub: string) => `wg-endpoint:${ifname}/${pub}`;

/**
 * Roaming, as WireGuard means it: a configured endpoint is where to start, not a constraint.
 * When the peer has since spoken from another address (NAT rebinding, a new port) — a handshake
 * newer than the time bolt set the endpoint — the learned endpoint is kept; resetting it would
 * break the tunnel until the peer speaks again. A changed `endpoint` in the config is applied.
 * No configured endpoint: "" (kernelChosen: whatever the peer dialled in from).
 */
function endpointOf(configured: string | undefined, live: Resource | undefined, lease: string | undefined): string {
  if (!configured) return "";
  const liveEp = live?.owned ? (live.spec.endpoint ?? "") : "";
  if (!lease || !liveEp || liveEp === configured) return configured;
  const at = lease.lastIndexOf("@");
  const [setTo, setAt] = [lease.slice(0, at), Number(lease.slice(at + 1))];
  const handshake = Number(live?.data?.latestHandshake ?? 0);
  return setTo === configured && handshake > setAt ? liveEp : configured;
}

/** `preshared-key FILE` that restores a live peer's key, when bolt set it from a file it remembers. */
function pskUndo(before: Resource, leases: Map<string, string>, ifname: string, pub: string): string[] {
  const file = before.spec.preshared_key ? leases.get(pskLeaseKey(ifname, pub)) : undefined;
  return file ? ["preshared-key", file] : [];
}

function pskOf(file: string): string {
  try {
    return pskDigest(readFileSync(file, "utf8"));
  } catch {
    return "(known on the target host)";
  }
}

function clause(ns: Ns, ifname: string, pub: string, rest: string[]): OpLine {
  return { tool: "wg", ns, args: [ifname, "peer", pub, ...rest] };
}

/** `wg set` words for the given fields. The preshared key is passed as its file, never inline. */
function settings(r: Resource, fields: string[]): string[] {
  const s = r.spec;
  const out: string[] = [];
  if (fields.includes("allowed_ips")) out.push("allowed-ips", s.allowed_ips ?? "");
  if (fields.includes("endpoint") && s.endpoint) out.push("endpoint", s.endpoint);
  if (fields.includes("persistent_keepalive")) out.push("persistent-keepalive", s.persistent_keepalive || "off");
  if (fields.includes("preshared_key")) out.push("preshared-key", r.data?.pskFile ? String(r.data.pskFile) : "/dev/null");
  return out;
}
