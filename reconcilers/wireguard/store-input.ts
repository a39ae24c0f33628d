import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Diagnostic } from "../../src/base/diagnostics.js";
import { BoltError } from "../../src/base/diagnostics.js";
import { PARSED_FILES } from "../../src/config/parsed-cache.js";
import type { LoadedFile } from "../../src/config/load.js";
import { readKeyFile } from "./keys.js";
import { randomUUID } from "node:crypto";
import { formatCidr4 } from "../../src/core/ipv4.js";
import { MeshStore, admittedNodes } from "./store.js";
import { checkClientCert } from "./store-tls.js";
import type { StoreTls } from "./store-tls.js";
import { autoApproversOf, primaries, routesOf } from "./store-view.js";
import type { MeshSnapshot } from "./store.js";
import type { StoreView } from "./intent.js";

/**
 * Before the files are normalized: a mesh whose control_server is etcd:// is joined through
 * its bundle (`auth_key_file`, written by `bolt mesh enroll`). With `write` (apply) this host
 * first publishes its request (public key, endpoint, offers); then the mesh is read at one
 * revision and handed to the wireguard kind's intent as `external.wireguard`. A bundle for
 * another mesh, a readable bundle, another node's bundle, an unreachable store, a bundle
 * certificate that is expired or not from its CA, or a store that refuses this node (revoked:
 * its etcd user is gone) are one-line errors, and nothing is applied.
 */
interface Bundle {
  v: number;
  control_server: string;
  mesh: string;
  mesh_id: string;
  node: string;
  /** RBAC mode (`bolt mesh enroll` with TLS): PEM of the store's CA, this node's client certificate (CN = node) and its key */
  ca?: string;
  cert?: string;
  key?: string;
}

type Obj = Record<string, unknown>;

export interface StoreInputOptions {
  /** apply and watch: publish this host's request, and keep the snapshot for when the store is gone */
  write: boolean;
  /** where the last good snapshot is kept (the state dir, per target) */
  stateDir?: string;
  target?: string | null;
  /** the brake may be overridden (`--allow-destroy`) for a store that really lost most nodes */
  allowDestroy?: boolean;
  /** warnings for the caller to print (a stale snapshot) */
  warnings?: Diagnostic[];
  /**
   * The daemon's store sessions, kept open across passes (by store URL and mesh): its status
   * lease is kept alive by the client instead of granted again every pass.
   */
  sessions?: Map<string, MeshStore>;
  /** the daemon: a change under the mesh's prefix (an etcd watch event) enqueues a pass */
  onStoreChange?: () => void;
  /** the daemon's view of the store for /healthz: connected, or stale since when */
  storeState?: StoreState;
}

export interface StoreState {
  state?: "connected" | "stale";
  since?: string;
  revision?: string;
}

/** One process, one boot: a restart is visible in status (MULTIHOST.md §2.3 boot_id). */
const BOOT = { id: randomUUID(), at: new Date().toISOString() };

/**
 * Saved with the snapshot: which node carried each HA prefix when this host last applied, and
 * (for `bolt mesh status`, which reads it without the store) the mesh, this node and the target.
 */
type Saved = MeshSnapshot & { saved_at?: string; primaries?: Record<string, string>; mesh?: string; self?: string; target?: string };

/**
 * Every prefix announced (and approved) by more than one node this host sees — the admitted
 * ones and itself — with its primary (store-view.ts). The policy's auto-approvers are read
 * quietly here; the intent reads the policy again and reports its problems where they are.
 */
function choosePrimaries(s: MeshSnapshot, self: string, alive: Set<string> | undefined, previous: Record<string, string> | undefined): Record<string, string> {
  const auto = autoApproversOf(s);
  const me = s.nodes.find((n) => n.name === self && n.state === "approved");
  const by = new Map<string, string[]>();
  for (const n of [...admittedNodes(s, self).map((a) => a.node), ...(me ? [me] : [])])
    for (const r of routesOf(s, n, auto)) {
      const k = formatCidr4(r);
      by.set(k, [...(by.get(k) ?? []), n.name]);
    }
  for (const [k, names] of by) if (names.length < 2) by.delete(k);
  return primaries(by, alive, previous);
}

/**
 * The brake (MULTIHOST.md §2.8): store-driven changes are refused when the store holds another
 * mesh (a wiped or foreign etcd), is behind the snapshot this host already applied (a restored
 * backup), or would remove more than half of this host's store peers at once.
 */
export function brake(last: MeshSnapshot | undefined, next: MeshSnapshot, self: string, allowDestroy = false): string | undefined {
  if (!last) return undefined;
  if (last.meta.mesh_id !== next.meta.mesh_id)
    return `the store now holds mesh_id ${next.meta.mesh_id}, not ${last.meta.mesh_id} (a wiped or another store): its changes are refused, the peers stay`;
  if (BigInt(next.revision) < BigInt(last.revision))
    return `the store is at revision ${next.revision}, behind the ${last.revision} already applied here (a restored backup?): its changes are refused, the peers stay`;
  const before = admittedNodes(last, self).map((a) => a.node.name);
  const after = new Set(admittedNodes(next, self).map((a) => a.node.name));
  const gone = before.filter((n) => !after.has(n));
  if (!allowDestroy && before.length >= 2 && gone.length * 2 > before.length)
    return `the store would remove ${gone.length} of this host's ${before.length} store peers at once (${gone.join(", ")}): refused (--allow-destroy applies it)`;
  return undefined;
}

const snapshotFile = (o: StoreInputOptions, mesh: string) => (o.stateDir ? join(o.stateDir, `mesh-${mesh}-${o.target || "_host"}.json`) : undefined);

/** A snapshot this host saved, as `bolt mesh status` reads it (a local file, never the store). */
export interface SavedSnapshot {
  mesh: string;
  file: string;
  snapshot: Saved;
}

/**
 * The snapshots saved in `stateDir` for `target`, newest first. Mesh and netns names may both
 * hold "-", so a file is taken by the mesh and target it records (saveSnapshot), not by its
 * name; a file without them (saved by an older bolt) counts once the next pass saves it again.
 */
export function savedSnapshots(stateDir: string, target: string | null | undefined): SavedSnapshot[] {
  const t = target || "_host";
  let names: string[];
  try {
    names = readdirSync(stateDir).filter((n) => n.startsWith("mesh-") && n.endsWith(`-${t}.json`));
  } catch {
    return [];
  }
  const out: SavedSnapshot[] = [];
  for (const name of names) {
    const file = join(stateDir, name);
    try {
      const snapshot = JSON.parse(readFileSync(file, "utf8")) as Saved;
      if (snapshot.mesh && snapshot.target === t && snapshot.meta?.mesh_id) out.push({ mesh: snapshot.mesh, file, snapshot });
    } catch {
      // unreadable: left out
    }
  }
  const at = (x: SavedSnapshot) => Date.parse(x.snapshot.saved_at ?? "") || 0;
  return out.sort((a, b) => at(b) - at(a) || a.mesh.localeCompare(b.mesh));
}

function lastSnapshot(o: StoreInputOptions, mesh: string): Saved | undefined {
  const f = snapshotFile(o, mesh);
  try {
    return f ? (JSON.parse(readFileSync(f, "utf8")) as Saved) : undefined;
  } catch {
    return undefined;
  }
}

function saveSnapshot(o: StoreInputOptions, mesh: string, s: Saved): void {
  const f = snapshotFile(o, mesh);
  if (!f) return;
  mkdirSync(dirname(f), { recursive: true, mode: 0o700 });
  writeFileSync(`${f}.tmp`, JSON.stringify({ ...s, mesh, target: o.target || "_host", saved_at: new Date().toISOString() }), { mode: 0o600 });
  renameSync(`${f}.tmp`, f);
}

/**
 * Config files parsed again only when their stat changed: every plan asks whether its files
 * name an etcd store, and the warm daemon must not parse a 1000-network Boltfile for that each time.
 */
function parsedOnce(f: string): LoadedFile | undefined {
  try {
    return PARSED_FILES.load(f).lf;
  } catch {
    return undefined;
  }
}

export async function meshStoreInput(files: string[], o: StoreInputOptions): Promise<{ wireguard: StoreView } | undefined> {
  const write = o.write;
  for (const f of files) {
    const lf = parsedOnce(f);
    if (!lf) continue; // loadIntent reports it where it is
    const data =
      lf.kind === "mesh" ? ((lf.data.meshvpn as Obj | undefined) ?? lf.data) : lf.kind === "boltfile" ? (lf.data.meshvpn as Obj | undefined) : undefined;
    if (!data) continue;
    const gw = ((data.ghostwire as Obj | undefined) ?? data) as Obj;
    const cs = typeof gw.control_server === "string" ? gw.control_server : "";
    if (!cs.startsWith("etcd://")) continue;
    const node = (data.node ?? {}) as Obj;
    if (typeof gw.auth_key_file !== "string")
      throw new BoltError(`${f}: control_server ${cs} needs auth_key_file: the bundle \`bolt mesh enroll\` wrote for this node`);
    const bundlePath = resolve(dirname(f), gw.auth_key_file);
    const bundle = readBundle(bundlePath);
    if (String(node.hostname ?? "") !== bundle.node)
      throw new BoltError(`${bundlePath}: this bundle is node "${bundle.node}", but ${f} says hostname = "${String(node.hostname ?? "")}"`);
    const last = lastSnapshot(o, bundle.mesh);
    const sessionKey = `${cs} ${bundle.mesh}`;
    const store = o.sessions?.get(sessionKey) ?? MeshStore.open(cs, bundle.mesh, undefined, bundleTls(bundle));
    o.sessions?.set(sessionKey, store);
    try {
      let snapshot = await store.snapshot();
      if (write && snapshot.meta.mesh_id === bundle.mesh_id) {
        const key = typeof node.private_key_file === "string" ? readKeyFile(resolve(dirname(f), node.private_key_file), "private") : undefined;
        // The request compared with the one the snapshot shows (a pass whose request and status
        // are unchanged reads the store once and writes nothing); both in one transaction, so a
        // joining host wakes the others once; a request written is read back with the rest.
        const wrote = await store.publish(bundle.node, {
          ...(key?.ok && key.publicKey
            ? {
                request: {
                  value: {
                    public_key: key.publicKey,
                    hostname: bundle.node,
                    ...(typeof node.endpoint === "string" ? { endpoint: node.endpoint } : {}),
                    tags: ((node.tags ?? []) as unknown[]).map(String),
                    routes: ((node.advertise_routes ?? []) as unknown[]).map(String),
                    exit_node: node.exit_node === true,
                  },
                  seen: snapshot.requests[bundle.node] ?? null,
                },
              }
            : {}),
          status: {
            value: {
              endpoints: typeof node.endpoint === "string" ? [node.endpoint] : [],
              listen_port: typeof node.listen_port === "number" ? node.listen_port : snapshot.meta.listen_port,
              boot_id: BOOT.id,
              started_at: BOOT.at,
              ...(last?.policy ? { applied_policy_rev: last.policy.mod_revision } : {}),
            },
            ttl: snapshot.meta.status_ttl ?? 30,
            keep: !!o.sessions,
          },
        });
        if (wrote) snapshot = await store.snapshot();
      }
      // The brake first: a host that applied this mesh before says what changed underneath it.
      const stop = brake(last, snapshot, bundle.node, o.allowDestroy);
      if (stop) throw new BoltError(`control server ${cs}: brake: ${stop}`);
      if (snapshot.meta.mesh_id !== bundle.mesh_id)
        throw new BoltError(
          `${bundlePath}: the bundle is for mesh_id ${bundle.mesh_id}, but ${cs} holds mesh "${bundle.mesh}" with mesh_id ${snapshot.meta.mesh_id} (another or a re-created mesh): refusing it`,
        );
      // Liveness is what the status leases say now; the HA choice sticks to what was applied.
      const chosen = choosePrimaries(snapshot, bundle.node, new Set([bundle.node, ...Object.keys(snapshot.status ?? {})]), last?.primaries);
      if (write) saveSnapshot(o, bundle.mesh, { ...snapshot, primaries: chosen, self: bundle.node });
      if (o.onStoreChange) store.watchMesh(o.onStoreChange);
      if (o.storeState) Object.assign(o.storeState, { state: "connected", since: undefined, revision: snapshot.revision });
      return { wireguard: { snapshot, self: bundle.node, primaries: chosen } };
    } catch (e) {
      // The store is gone (not refused): the last snapshot this host applied, said loudly.
      if (last && e instanceof BoltError && /unreachable/.test(e.message)) {
        o.warnings?.push({
          severity: "warning",
          message: `mesh store: ${e.message}; using the snapshot of revision ${last.revision} saved ${last.saved_at ?? "earlier"} (stale)`,
        });
        if (o.storeState && o.storeState.state !== "stale")
          Object.assign(o.storeState, { state: "stale", since: new Date().toISOString(), revision: last.revision });
        // No liveness is known: every HA prefix stays where it was.
        return { wireguard: { snapshot: last, self: bundle.node, primaries: choosePrimaries(last, bundle.node, undefined, last.primaries) } };
      }
      throw e;
    } finally {
      if (!o.sessions) store.close();
    }
  }
  return undefined;
}

function readBundle(path: string): Bundle {
  let text: string;
  try {
    // Like the WireGuard keys: what identifies this node to the store is for root only.
    if (statSync(path).mode & 0o077) throw new BoltError(`${path}: the mesh bundle is readable by group or others; chmod 600 it`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof BoltError) throw e;
    throw new BoltError(`${path}: cannot read the mesh bundle (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let b: Bundle;
  try {
    b = JSON.parse(text) as Bundle;
    if (b.v !== 1 || !b.mesh || !b.mesh_id || !b.node) throw new Error("fields missing");
    const tls = [b.ca, b.cert, b.key].filter((x) => typeof x === "string").length;
    if (tls !== 0 && tls !== 3) throw new Error("ca, cert and key go together");
  } catch (e) {
    throw new BoltError(`${path}: not a mesh bundle from \`bolt mesh enroll\` (${(e as Error).message})`);
  }
  // Checked here, not left to the TLS handshake: a refused certificate reaches bolt only as
  // "no connection", which would read as an unreachable store.
  if (b.cert) {
    const cn = checkClientCert(path, { cert: b.cert, key: b.key!, issuer: b.ca! });
    if (cn !== b.node) throw new BoltError(`${path}: the TLS client certificate is for CN=${cn}, but the bundle is node "${b.node}"`);
  }
  return b;
}

/** The bundle's certificate makes every request run as this node (its etcd user, its role). */
function bundleTls(b: Bundle): StoreTls | undefined {
  return b.cert ? { ca: b.ca!, cert: b.cert, key: b.key!, user: b.node, as: "node" } : undefined;
}
