import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { BoltError, EXIT } from "../core/diagnostics.js";

import { LiveReader } from "../core/live-reader.js";
import { decodeAlias } from "../core/ownership.js";
import type { IpLink, IpRoute } from "../core/live-reader.js";
import { ProcessRunner } from "../exec/process-runner.js";
import { runAclTests } from "../../reconcilers/wireguard/acl.js";
import { wgDump } from "../../reconcilers/wireguard/index.js";
import { WIREGUARD } from "../../reconcilers/wireguard/intent.js";
import { fragment } from "../core/intent.js";
import { ROUTE_PROTO } from "../core/conventions.js";
import { admittedNodes } from "../../reconcilers/wireguard/store.js";
import { savedSnapshots } from "../../reconcilers/wireguard/store-input.js";
import { loadIntent } from "./config.js";
import { readState, target } from "./commands.js";
import type { GlobalOpts } from "./commands.js";

/** `bolt mesh test`: the file's [[acl_tests]] against its [[acls]], offline; exit 1 on a failure. */
export async function cmdMeshTest(o: GlobalOpts): Promise<number> {
  // plan/apply treat a failing acl_test as a config error; here it is the result (text or JSON).
  const intent = loadIntent(o.file, o.netnsPrefix, { offline: true, skipAclTests: true }).intent;
  const mesh = fragment(intent, WIREGUARD).mesh;
  if (!mesh) throw new BoltError("no mesh in these files: give a ghostwire.toml (or a Boltfile with [meshvpn]) with a [node] table");
  const failures = runAclTests(mesh, mesh.self);
  const total = mesh.aclTests.reduce((n, t) => n + t.accept.length + t.deny.length, 0);
  if (o.json)
    o.out(
      JSON.stringify(
        {
          tests: total,
          failures: failures.map((f) => ({ src: f.test.src, target: f.target, proto: f.test.proto, expected: f.expected, got: f.got, source: f.test.source })),
        },
        null,
        2,
      ) + "\n",
    );
  else {
    for (const f of failures)
      o.out(
        `FAIL ${f.test.source.file}:${f.test.source.line}:${f.test.source.col}: ${f.test.src} → ${f.target} (${f.test.proto}) is ${f.got === "accept" ? "accepted" : "denied"}, expected ${f.expected}\n`,
      );
    o.out(failures.length ? `${failures.length} of ${total} ACL assertion(s) fail.\n` : `All ${total} ACL assertion(s) pass.\n`);
  }
  return failures.length ? EXIT.ERROR : EXIT.OK;
}

const roamedFrom = (set: string | null, live: string): string | null => (set && live && set !== live ? set : null);

/**
 * The mesh store as this host last applied it: the newest snapshot saved in the state dir for
 * this target (store-input.ts), read from the file — status never contacts etcd. Its peers'
 * liveness is what their status leases said at that revision; null when no snapshot is saved.
 */
function storeSection(o: GlobalOpts, now: number) {
  const saved = savedSnapshots(o.stateDir, target(o))[0];
  if (!saved) return null;
  const s = saved.snapshot;
  const at = s.saved_at ? Date.parse(s.saved_at) : Number.NaN;
  const peers = admittedNodes(s, s.self ?? "", now).map((a) => a.node.name);
  const alive = new Set(Object.keys(s.status ?? {}));
  return {
    mesh: saved.mesh,
    mesh_id: s.meta.mesh_id,
    revision: s.revision,
    self: s.self ?? null,
    saved_at: s.saved_at ?? null,
    age_seconds: Number.isNaN(at) ? null : Math.max(0, Math.floor((now - at) / 1000)),
    online: peers.filter((n) => alive.has(n)),
    offline: peers.filter((n) => !alive.has(n)),
  };
}

/** `bolt mesh status`: every bolt WireGuard interface with its peers, read from `wg show … dump`. */
export async function cmdMeshStatus(o: GlobalOpts): Promise<number> {
  const runner = o.runner ?? new ProcessRunner();
  const io = new LiveReader(runner, o.netns ?? null);
  const [links, routes] = await Promise.all([io.ipJson<IpLink[]>(["-d", "link", "show"]), io.ipJson<IpRoute[]>(["-4", "route", "show", "table", "all"])]);
  const now = Math.floor(Date.now() / 1000);
  // The endpoint bolt last set for each peer (a lease "ENDPOINT@TIME"): a live one that differs is a roam.
  const leases = readState(o).leases;
  const configured = (ifname: string, pub: string) => leases.get(`wg-endpoint:${ifname}/${pub}`)?.replace(/@\d+$/, "") ?? null;
  const interfaces = [];
  for (const l of links.filter((x) => decodeAlias(x.ifalias)?.wg)) {
    const dump = await wgDump(io, l.ifname);
    interfaces.push({
      interface: l.ifname,
      // the kernel's WireGuard (a "wireguard" link) or wireguard-go serving a tun device
      implementation: l.linkinfo?.info_kind === "wireguard" ? "kernel" : "wireguard-go",
      public_key: dump?.publicKey ?? null,
      listen_port: dump?.listenPort ?? null,
      running: !!dump,
      peers: (dump?.peers ?? []).map((p) => ({
        public_key: p.publicKey,
        endpoint: p.endpoint || null,
        // set when the peer now speaks from elsewhere than where bolt pointed it (kept, not reset)
        roamed_from: roamedFrom(configured(l.ifname, p.publicKey), p.endpoint),
        allowed_ips: p.allowedIps,
        latest_handshake: p.latestHandshake || null,
        handshake_age_seconds: p.latestHandshake ? now - p.latestHandshake : null,
        rx_bytes: p.rx,
        tx_bytes: p.tx,
        persistent_keepalive: p.keepalive || null,
      })),
      routes: routes.filter((r) => r.dev === l.ifname && r.protocol === ROUTE_PROTO).map((r) => `${r.dst}${r.table ? ` table ${r.table}` : ""}`),
    });
  }
  const store = storeSection(o, Date.now());
  if (o.json) {
    o.out(JSON.stringify({ format_version: "1.0", target: { netns: o.netns ?? null }, interfaces, store }, null, 2) + "\n");
    return EXIT.OK;
  }
  if (!interfaces.length) o.out("bolt has no WireGuard interface here.\n");
  for (const i of interfaces) {
    o.out(
      `interface ${i.interface} (${i.implementation})${i.running ? "" : " (not running)"}: public key ${i.public_key ?? "-"}, port ${i.listen_port ?? "-"}\n`,
    );
    for (const p of i.peers) {
      const hs = p.handshake_age_seconds === null ? "never" : `${p.handshake_age_seconds}s ago`;
      o.out(
        `  peer ${p.public_key}\n    endpoint ${p.endpoint ?? "-"}${p.roamed_from ? ` (roamed; configured ${p.roamed_from})` : ""}  handshake ${hs}  rx ${p.rx_bytes} B  tx ${p.tx_bytes} B\n    allowed ips ${p.allowed_ips.join(", ") || "-"}\n`,
      );
    }
    if (i.routes.length) o.out(`  routes: ${i.routes.join(", ")}\n`);
  }
  if (store)
    o.out(
      `store: mesh "${store.mesh}" revision ${store.revision}, snapshot saved ${store.age_seconds === null ? "at an unknown time" : `${store.age_seconds} s ago`}; online ${store.online.join(", ") || "none"}; offline ${store.offline.join(", ") || "none"}\n`,
    );
  return EXIT.OK;
}

/**
 * `bolt keygen PATH`: a WireGuard key pair, PATH (mode 0600) and PATH.pub, like `wg genkey |
 * tee PATH | wg pubkey > PATH.pub` under umask 077. Refuses to overwrite.
 */
export async function cmdKeygen(o: GlobalOpts & { path: string; force?: boolean }): Promise<number> {
  const runner = o.runner ?? new ProcessRunner();
  if (existsSync(o.path) && !o.force) throw new BoltError(`${o.path} exists; refusing to overwrite a key (use --force)`);
  const gen = await runner.run(["wg", "genkey"]);
  if (gen.code !== 0) throw new BoltError(`wg genkey failed: ${gen.stderr.trim()}`);
  const priv = gen.stdout.trim();
  const pub = await runner.run(["wg", "pubkey"], priv + "\n");
  if (pub.code !== 0) throw new BoltError(`wg pubkey failed: ${pub.stderr.trim()}`);
  // Created with 0600 from the first byte: the key is never readable by others, even briefly.
  writeFileSync(o.path, priv + "\n", { mode: 0o600, flag: o.force ? "w" : "wx" });
  chmodSync(o.path, 0o600);
  writeFileSync(`${o.path}.pub`, pub.stdout.trim() + "\n", { mode: 0o644 });
  o.out(`${o.path} (private, 0600)\n${o.path}.pub: ${pub.stdout.trim()}\n`);
  return EXIT.OK;
}
